"""The one config loader: YAML file + ``--set key.path=value`` overrides, validated by pydantic.

Every problem (unknown key, wrong type, missing input) becomes a single :class:`ConfigError` whose
message names the file and the dotted key; the CLI prints it and exits with code 2.

Rule thresholds, text normalisations and fastText hyper-parameters have one home: the frozen dataclasses
in ``udfs/``. Their settings models here are generated from those dataclasses (:func:`settings_from`), so
a default changes in one place; ``defaults_table()`` renders the README's table from the same source.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from jobs.core import redaction, storage
from udfs.blocklists import FlaggedWordRules, UrlBlocklistRules
from udfs.classifier import ClassifierNormalization, FastTextParams
from udfs.decontamination import DecontaminationRules
from udfs.fasttext_models import DEFAULT_LID_MODEL
from udfs.heuristics import C4Settings, FineWebThresholds, GopherQualityThresholds, GopherRepetitionThresholds
from udfs.minhash import MinHashSpec
from udfs.mix import check_meta_template
from udfs.normalize import TextNormalization
from udfs.pii import PiiRules
from udfs.quality import LanguageRules, rule_names

DEFAULT_STAGES = ("ingest", "dedup", "quality", "mix")
ClassifierKind = Literal["quality", "topic", "toxicity"]
# Run ids, run names and table names become path segments under output.root: no separators, no "..".
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def check_name(value: str, what: str) -> str:
    """``value`` if it is a safe single path segment, else ValueError saying why."""
    if not NAME_PATTERN.match(value) or ".." in value:
        raise ValueError(f"{what} {value!r} must be letters, digits, '.', '_' or '-' (no '/' and no '..')")
    return value


def is_location(name: str) -> bool:
    """A table given as a full URI or absolute path rather than a name under ``<output.root>/tables``."""
    return "://" in name or name.startswith("/")


class ConfigError(Exception):
    """A user-facing configuration problem; the message is the whole story (no traceback)."""

    def __init__(self, message: str, *, key: str | None = None, source: str | None = None) -> None:
        self.key = key
        self.source = source
        where = ", ".join(part for part in (source and f"in {source}", key and f"key '{key}'") if part)
        super().__init__(f"config error ({where}): {message}" if where else f"config error: {message}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class FromDefaults(_Strict):
    """Settings whose fields and defaults come from a ``udfs`` dataclass (see :func:`settings_from`)."""

    defaults_class: ClassVar[type]
    excluded: ClassVar[tuple[str, ...]] = ()

    def build(self) -> Any:
        """The ``udfs`` dataclass these settings describe (extra switches such as ``enabled`` left out)."""
        names = {item.name for item in dataclasses.fields(self.defaults_class)} - set(self.excluded)
        return self.defaults_class(**{name: getattr(self, name) for name in names})


def settings_from(defaults: type, *, exclude: Iterable[str] = (),
                  bounds: Mapping[str, Mapping[str, Any]] | None = None,
                  **extra: Any) -> type[FromDefaults]:
    """A strict settings model with one field per field of the dataclass ``defaults`` (same type, same
    default), value bounds from ``bounds`` and extra fields given as ``name=(type, default)``."""
    hints = typing.get_type_hints(defaults)
    fields: dict[str, Any] = dict(extra)
    excluded = tuple(exclude)
    for item in dataclasses.fields(defaults):
        if item.name in excluded:
            continue
        limits = dict((bounds or {}).get(item.name, {}))
        if item.default is not dataclasses.MISSING:
            fields[item.name] = (hints[item.name], Field(default=item.default, **limits))
        else:
            fields[item.name] = (hints[item.name], Field(default_factory=item.default_factory, **limits))
    model = create_model(f"{defaults.__name__}Settings", __base__=FromDefaults, **fields)
    model.defaults_class = defaults
    model.excluded = excluded
    return model


class LockSettings(_Strict):
    """One run at a time per output.root: a second run waits this long, then fails (exit 4)."""

    wait_seconds: float = Field(default=0.0, ge=0)
    lease_seconds: float = Field(default=600.0, ge=10)  # S3 leases: renewed every third of this


class RunSettings(_Strict):
    """Which stages ``curate run`` executes, in order (names from the runner's registry)."""

    name: str = "curate"
    stages: list[str] = Field(default_factory=lambda: list(DEFAULT_STAGES), min_length=1)
    lock: LockSettings = Field(default_factory=lambda: LockSettings())

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return check_name(value, "run name")


class SparkSettings(_Strict):
    """Used to build the session; under spark-submit the submitted master wins."""

    master: str = "local[*]"
    app_name: str = "curate"
    log_level: Literal["ERROR", "WARN", "INFO", "DEBUG"] = "WARN"
    driver_memory: str = "auto"  # auto: half the machine's RAM (embedded session only); or "8g", ...
    # JVM packages for the embedded session (spark-submit brings its own --packages): "auto" = delta-spark
    # matching the delta-spark Python package + hadoop-aws matching pyspark's Hadoop; [] = none.
    packages: Literal["auto"] | list[str] = "auto"
    jar_cache: str = "~/.cache/curate/jars"  # Ivy cache and resolved-jar manifests, on local disk
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)


class FieldMapping(_Strict):
    """Where each bronze column comes from in the input records (JSONL keys / Parquet columns)."""

    text: str = "text"
    url: str | None = "url"
    id: str | None = "id"
    crawl_time: str | None = None


class InputSettings(_Strict):
    paths: list[str] = Field(min_length=1)
    format: Literal["auto", "jsonl", "parquet", "warc"] = "auto"
    source: str = Field(default="web", min_length=1)
    fields: FieldMapping = Field(default_factory=FieldMapping)
    storage_options: dict[str, str] = Field(default_factory=dict)

    @field_validator("paths", mode="before")
    @classmethod
    def _one_path_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class OutputSettings(_Strict):
    root: str = Field(min_length=1)
    storage_options: dict[str, str] = Field(default_factory=dict)


class TableSettings(_Strict):
    """``auto`` picks ``native`` when the delta-spark connector is on the JVM classpath, else ``embedded``."""

    backend: Literal["auto", "native", "embedded"] = "auto"
    bronze: str = "bronze"
    quarantine: str = "quarantine"
    deduped: str = "deduped"
    duplicates: str = "duplicates"
    dedup_exact_index: str = "dedup_exact_index"
    dedup_band_index: str = "dedup_band_index"
    dedup_signature_index: str = "dedup_signature_index"
    quality_scores: str = "quality_scores"
    filtered: str = "filtered"
    mixture: str = "mixture"
    mix_manifest: str = "mix_manifest"
    run_ledger: str = "run_ledger"
    ingested_files: str = "ingested_files"
    decisions: str = "decisions"

    def names(self) -> dict[str, str]:
        """Every table the pipeline writes: field -> its name (or location)."""
        return {field: value for field, value in self.model_dump().items() if field != "backend"}

    @model_validator(mode="after")
    def _safe_and_distinct(self) -> TableSettings:
        names = self.names()
        for field, value in names.items():
            if not is_location(value):
                check_name(value, f"table name tables.{field}")
        seen: dict[str, str] = {}
        for field, value in names.items():
            if value in seen:
                raise ValueError(f"tables.{field} and tables.{seen[value]} are both {value!r}; "
                                 "each table needs its own name")
            seen[value] = field
        return self


class IngestSettings(_Strict):
    """``incremental``: read only input files the ledger has not seen (path, size, etag) and append."""

    mode: Literal["overwrite", "append"] = "overwrite"
    incremental: bool = False
    max_text_bytes: int = Field(default=1_000_000, gt=0)
    # A JSONL line or WARC block above this is quarantined unread; null: 6 x max_text_bytes + 64 KiB.
    max_record_bytes: int | None = Field(default=None, gt=0)
    batch_rows: int = Field(default=2048, gt=0)
    raw_preview_chars: int = Field(default=500, ge=0)
    html_main_content: bool = True
    allow_empty_output: bool = False  # false: reading records and keeping none fails the stage


NormalizationSettings = settings_from(TextNormalization)


class ExactDedupSettings(_Strict):
    enabled: bool = True
    normalization: NormalizationSettings = Field(default_factory=NormalizationSettings)  # type: ignore[valid-type]


class MinHashSettings(settings_from(MinHashSpec, exclude=("normalization",),  # type: ignore[misc]
                                    bounds={"num_perm": {"gt": 0, "le": 1024}, "ngram": {"ge": 1},
                                            "max_shingles": {"gt": 0}})):
    enabled: bool = True
    normalization: NormalizationSettings = Field(default_factory=NormalizationSettings)  # type: ignore[valid-type]
    jaccard_threshold: float = Field(default=0.8, gt=0, lt=1)
    bands: int | None = Field(default=None, gt=0)
    rows: int | None = Field(default=None, gt=0)
    # Recall-leaning by default (14 bands x 8 rows at 0.8 with 112 permutations, as datatrove uses):
    # candidate pairs are verified by estimated Jaccard, which removes the extra false positives.
    false_positive_weight: float = Field(default=0.05, ge=0)
    false_negative_weight: float = Field(default=0.95, ge=0)
    verify: bool = True
    # An edge is dropped when its estimated Jaccard lies more than this many standard errors
    # (sqrt(t(1-t)/num_perm)) below the threshold t; 0 drops every estimate below t.
    verify_margin_sigmas: float = Field(default=2.0, ge=0)

    def build(self) -> MinHashSpec:
        return MinHashSpec(num_perm=self.num_perm, seed=self.seed, ngram=self.ngram, unit=self.unit,
                           hash_mode=self.hash_mode, max_shingles=self.max_shingles,
                           normalization=self.normalization.build())

    @model_validator(mode="after")
    def _bands_and_rows_together(self) -> MinHashSettings:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both bands and rows, or neither (then they follow jaccard_threshold)")
        if self.bands is not None and self.rows is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands*rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self


class ComponentsSettings(_Strict):
    """Connected components: in the driver (scipy) up to ``driver_max_edges``, else large/small-star."""

    driver_max_edges: int = Field(default=2_000_000, ge=0)
    # Each round reads the previous edges several times, so an uncut plan grows exponentially: cut often.
    checkpoint_every: int = Field(default=1, gt=0)
    checkpoint_dir: str | None = None  # reliable checkpoints (cluster); local checkpoints when unset
    max_rounds: int = Field(default=100, gt=0)


class DedupSettings(_Strict):
    keep: Literal["lowest_doc_id", "earliest_crawl", "highest_quality"] = "lowest_doc_id"
    quality_column: str = "quality_score"
    incremental: bool = False
    exact: ExactDedupSettings = Field(default_factory=ExactDedupSettings)
    minhash: MinHashSettings = Field(default_factory=MinHashSettings)
    components: ComponentsSettings = Field(default_factory=ComponentsSettings)


class LanguageSettings(settings_from(LanguageRules,  # type: ignore[misc]
                                     bounds={"min_score": {"ge": 0, "le": 1}})):
    """fastText language ID; ``keep`` empty keeps every language."""

    enabled: bool = True
    model: str = DEFAULT_LID_MODEL  # the packaged model, a local path or s3://
    model_sha256: str | None = None


class GopherQualitySettings(settings_from(GopherQualityThresholds)):  # type: ignore[misc]
    enabled: bool = True


class GopherRepetitionSettings(settings_from(GopherRepetitionThresholds)):  # type: ignore[misc]
    enabled: bool = True


class C4RuleSettings(settings_from(C4Settings)):  # type: ignore[misc]
    """``filter`` drops documents by C4's document rules; ``remove_lines`` also removes failing lines."""

    mode: Literal["off", "filter", "remove_lines"] = "off"


class FineWebSettings(settings_from(FineWebThresholds)):  # type: ignore[misc]
    enabled: bool = True


class TextNormalizationSettings(settings_from(ClassifierNormalization, exclude=("version",),  # type: ignore[misc]
                                              bounds={"max_chars": {"gt": 0}})):
    """How text is prepared for a fastText classifier (recorded in the model card at training)."""

    def as_normalization(self) -> ClassifierNormalization:
        return self.build()


class ParetoSettings(_Strict):
    """GPT-3-style sampling: keep a page when a Pareto(alpha) draw exceeds 1 - score.

    The draw comes from a hash of doc_id and seed, so it is the same on every run and partitioning."""

    enabled: bool = False
    alpha: float = Field(default=9.0, gt=0)
    seed: int = 0


class _ClassifierScoring(_Strict):
    enabled: bool = False
    model: str | None = None  # null: <output.root>/models/<quality|topic>.bin, where training writes
    model_sha256: str | None = None
    # Only for a model without a card (trained elsewhere); a card's normalisation wins.
    normalization: TextNormalizationSettings = Field(default_factory=TextNormalizationSettings)


class QualityClassifierSettings(_ClassifierScoring):
    """fastText quality classifier; its score is the probability of ``positive_label``.

    Thresholds apply, in this order, to documents that pass every earlier rule: ``min_score``, then
    ``keep_top_percent`` (cut-off from percentile_approx, globally or per ``group_by`` value), then Pareto."""

    positive_label: str = "hq"  # used only for a model without a card (the card's label wins)
    min_score: float | None = Field(default=None, ge=0, le=1)
    keep_top_percent: float | None = Field(default=None, gt=0, le=100)
    group_by: Literal["lang", "topic", "source", "domain"] | None = None
    percentile_accuracy: int = Field(default=10_000, gt=0)
    pareto: ParetoSettings = Field(default_factory=ParetoSettings)


class TopicClassifierSettings(_ClassifierScoring):
    """fastText topic (domain) classifier; its label feeds the mix stage. Never drops a document."""

    min_score: float = Field(default=0.0, ge=0, le=1)  # below it the topic is 'unknown'


class ToxicityClassifierSettings(_ClassifierScoring):
    """fastText toxicity classifier (``curate train-toxicity``); its score is P(``positive_label``)."""

    positive_label: str = "toxic"  # used only for a model without a card (the card's label wins)
    max_score: float | None = Field(default=0.5, ge=0, le=1)  # drop above this (null: score only)


# Thresholds a language may override (quality.languages.<lang>.thresholds), by rule family.
LANGUAGE_THRESHOLDS = {
    "gopher_quality": [f.name for f in dataclasses.fields(GopherQualityThresholds)],
    "gopher_repetition": [f.name for f in dataclasses.fields(GopherRepetitionThresholds)
                          if f.type in ("float", float)],
    "fineweb": [f.name for f in dataclasses.fields(FineWebThresholds)],
}


class LanguageRuleSettings(_Strict):
    """How the rules read one language; unset fields keep the built-in rule set (udfs/languages.py)."""

    segmentation: Literal["whitespace", "characters"] | None = None
    stop_words: list[str] | None = None  # null: stopwordsiso's list (English: Gopher's eight)
    skip_rules: list[str] = Field(default_factory=list)  # drop reasons never applied to this language
    thresholds: dict[str, float] = Field(default_factory=dict)  # e.g. {min_doc_words: 100}

    @model_validator(mode="after")
    def _known_names(self) -> LanguageRuleSettings:
        known = sorted(name for names in LANGUAGE_THRESHOLDS.values() for name in names)
        unknown = sorted(set(self.thresholds) - set(known))
        if unknown:
            raise ValueError(f"unknown threshold(s) {unknown}; known: {known}")
        unknown_rules = sorted(set(self.skip_rules) - set(rule_names()))
        if unknown_rules:
            raise ValueError(f"unknown rule(s) {unknown_rules}; known: {rule_names()}")
        return self


class BenchmarkSource(_Strict):
    """One benchmark (e.g. MMLU's test split as JSONL): its items' text is the ``text_fields`` joined."""

    name: str = Field(min_length=1)
    paths: list[str] = Field(min_length=1)  # globs, local or s3://
    format: Literal["jsonl", "parquet"] = "jsonl"
    text_fields: list[str] = Field(default_factory=lambda: ["question", "choices", "answer"], min_length=1)
    id_field: str | None = None  # null: the row number


class DecontaminationSettings(settings_from(DecontaminationRules,  # type: ignore[misc]
                                            bounds={"ngram": {"ge": 3}, "min_matching_ngrams": {"ge": 1},
                                                    "min_item_fraction": {"ge": 0, "le": 1}})):
    """Benchmark decontamination: word n-grams of the benchmark items, checked in every document."""

    enabled: bool = False
    mode: Literal["drop", "remove"] = "drop"
    benchmarks: list[BenchmarkSource] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_benchmarks(self) -> DecontaminationSettings:
        if self.enabled and not self.benchmarks:
            raise ValueError("enabled needs benchmarks: [{name, paths, text_fields}]")
        names = [benchmark.name for benchmark in self.benchmarks]
        if len(set(names)) != len(names):
            raise ValueError(f"benchmark names must be unique: {names}")
        return self


class PiiSettings(settings_from(PiiRules, bounds={"max_pii_per_1k_chars": {"gt": 0}})):  # type: ignore[misc]
    """PII masking: matches are replaced by typed placeholders in the kept text; counts go to the scores."""

    enabled: bool = False


class BlocklistSource(_Strict):
    """A UT1-style folder (``<category>/domains``, ``<category>/urls``) or one list file of ``category``."""

    path: str = Field(min_length=1)  # local or s3://
    category: str | None = None  # for a single file (null: the file name without extension)


class UrlBlocklistSettings(settings_from(UrlBlocklistRules)):  # type: ignore[misc]
    """URL and domain blocklists (user-supplied data); a blocked document's reason: url_blocked:<category>."""

    enabled: bool = False
    lists: list[BlocklistSource] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_lists(self) -> UrlBlocklistSettings:
        if self.enabled and not self.lists and not self.banned_substrings:
            raise ValueError("enabled needs lists (UT1-style folders or files) or banned_substrings")
        return self


class FlaggedWordSettings(settings_from(FlaggedWordRules,  # type: ignore[misc]
                                        bounds={"max_fraction": {"ge": 0, "le": 1}})):
    """C4-style word lists per language (files of one word per line); the fraction of flagged words."""

    enabled: bool = False
    lists: dict[str, str] = Field(default_factory=dict)  # language (or "default") -> file, local or s3://

    @model_validator(mode="after")
    def _has_lists(self) -> FlaggedWordSettings:
        if self.enabled and not self.lists:
            raise ValueError("enabled needs lists: {language: path}")
        return self


class QualitySettings(_Strict):
    incremental: bool = False  # score only deduped documents no earlier run scored, and append
    allow_empty_output: bool = False  # false: scoring documents and keeping none fails the stage
    language: LanguageSettings = Field(default_factory=LanguageSettings)
    gopher_quality: GopherQualitySettings = Field(default_factory=GopherQualitySettings)
    gopher_repetition: GopherRepetitionSettings = Field(default_factory=GopherRepetitionSettings)
    c4: C4RuleSettings = Field(default_factory=C4RuleSettings)
    fineweb: FineWebSettings = Field(default_factory=FineWebSettings)
    classifier: QualityClassifierSettings = Field(default_factory=QualityClassifierSettings)
    topic_classifier: TopicClassifierSettings = Field(default_factory=TopicClassifierSettings)
    toxicity_classifier: ToxicityClassifierSettings = Field(default_factory=ToxicityClassifierSettings)
    # Per-language rule sets (quality rules beyond English); languages not listed get the built-in set.
    languages: dict[str, LanguageRuleSettings] = Field(default_factory=dict)
    default_language: str = "en"  # whose rules read documents when language ID is off
    decontamination: DecontaminationSettings = Field(default_factory=DecontaminationSettings)
    pii: PiiSettings = Field(default_factory=PiiSettings)
    url_blocklist: UrlBlocklistSettings = Field(default_factory=UrlBlocklistSettings)
    flagged_words: FlaggedWordSettings = Field(default_factory=FlaggedWordSettings)

    @model_validator(mode="after")
    def _group_by_needs_its_column(self) -> QualitySettings:
        if self.classifier.group_by == "topic" and not self.topic_classifier.enabled:
            raise ValueError("classifier.group_by 'topic' needs topic_classifier.enabled")
        if self.classifier.group_by == "lang" and not self.language.enabled:
            raise ValueError("classifier.group_by 'lang' needs language.enabled")
        return self


class TrainingSource(_Strict):
    """Documents for training: a Delta table (name under output.root, path or URI) or JSONL/Parquet files."""

    table: str | None = None
    paths: list[str] = Field(default_factory=list)
    format: Literal["jsonl", "parquet"] = "jsonl"
    text_field: str = "text"
    label_field: str | None = None
    where: str | None = None  # a Spark SQL filter on the source's columns, e.g. "quality = 'good'"

    @model_validator(mode="after")
    def _one_kind(self) -> TrainingSource:
        if (self.table is None) == (not self.paths):
            raise ValueError("give either 'table' or 'paths'")
        return self


class FastTextSettings(settings_from(  # type: ignore[misc]
        FastTextParams,
        # Smaller hash tables made this fastText build diverge ("Encountered NaN") at any learning rate.
        bounds={"epoch": {"gt": 0}, "lr": {"gt": 0}, "word_ngrams": {"ge": 1}, "dim": {"gt": 0},
                "min_count": {"ge": 1}, "bucket": {"ge": 100_000}, "thread": {"gt": 0}})):
    """Supervised fastText hyper-parameters; ``thread: 1`` = reproducible model."""

    def as_params(self) -> FastTextParams:
        return self.build()


class _ClassifierTraining(_Strict):
    """What training a quality or a topic classifier have in common."""

    holdout_fraction: float = Field(default=0.1, gt=0, lt=1)
    seed: int = 13
    model: str | None = None  # null: <output.root>/models/<quality|topic>.bin
    normalization: TextNormalizationSettings = Field(default_factory=TextNormalizationSettings)
    fasttext: FastTextSettings = Field(default_factory=FastTextSettings)


class QualityTrainingSettings(_ClassifierTraining):
    """Positives: reference-quality text; negatives: a deterministic sample of the bronze table."""

    positives: TrainingSource | None = None
    negatives_table: str = "bronze"
    positive_label: str = "hq"
    negative_label: str = "cc"
    max_per_class: int = Field(default=20_000, gt=0)
    # A model whose held-out ROC-AUC is below this is not saved and the stage fails (null: no floor). The
    # negatives are a sample of the crawl, good pages included, so hq-vs-cc AUC is modest by design (the
    # demo's is 0.64); 0.5 is chance, and a model near it ranks pages at random.
    min_holdout_roc_auc: float | None = Field(default=0.55, ge=0, le=1)


class TopicTrainingSettings(_ClassifierTraining):
    """Labelled documents (``label_field`` of the source), at most ``max_per_label`` of each label."""

    documents: TrainingSource | None = None
    max_per_label: int = Field(default=5_000, gt=0)
    # A model whose held-out accuracy is below this is not saved and the stage fails (null: no floor).
    min_holdout_accuracy: float | None = Field(default=0.5, ge=0, le=1)


class ToxicityTrainingSettings(_ClassifierTraining):
    """Labelled documents (``label_field``): ``positive_label`` against every other label, balanced."""

    documents: TrainingSource | None = None
    # Also negatives: as many documents again sampled from this table (e.g. bronze), so the classifier sees
    # the crawl's own clean pages, not only labelled comments (null: labelled documents only).
    negatives_table: str | None = None
    positive_label: str = "toxic"
    negative_label: str = "clean"  # every other label is read as this one
    max_per_class: int = Field(default=20_000, gt=0)
    # A model whose held-out ROC-AUC is below this is not saved and the stage fails (null: no floor).
    min_holdout_roc_auc: float | None = Field(default=0.8, ge=0, le=1)


class TrainSettings(_Strict):
    quality: QualityTrainingSettings = Field(default_factory=QualityTrainingSettings)
    topic: TopicTrainingSettings = Field(default_factory=TopicTrainingSettings)
    toxicity: ToxicityTrainingSettings = Field(default_factory=ToxicityTrainingSettings)


class DomainRule(_Strict):
    """A document belongs to ``name`` when its source is in ``sources`` or its URL host matches one of
    ``hosts`` (shell-style globs, e.g. ``*.wikipedia.org``); the first matching rule wins."""

    name: str = Field(min_length=1)
    sources: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)


class DomainSettings(_Strict):
    """``column`` (e.g. ``topic``, the topic classifier's label) names the domain directly; else ``rules``."""

    column: str | None = None
    rules: list[DomainRule] = Field(default_factory=list)
    default: str = "other"


class TokenSettings(_Strict):
    tokenizer: str | None = None  # a Hugging Face tokenizers JSON (local or s3://): exact counts
    chars_per_token: float = Field(default=4.0, gt=0)  # the estimate without a tokenizer: ceil(chars / this)


class WeightSettings(_Strict):
    """explicit: ``values``; temperature: p ~ tokens^(1/temperature); unimax: uniform budget with the
    epoch cap, smallest domains first; file: a DoReMi/RegMix JSON of domain -> weight."""

    mode: Literal["explicit", "temperature", "unimax", "file"] = "temperature"
    values: dict[str, float] = Field(default_factory=dict)
    temperature: float = Field(default=1.0, gt=0)
    file: str | None = None

    @model_validator(mode="after")
    def _mode_has_its_input(self) -> WeightSettings:
        if self.mode == "explicit" and not self.values:
            raise ValueError("mode 'explicit' needs values: {domain: weight}")
        if self.mode == "file" and not self.file:
            raise ValueError("mode 'file' needs file")
        return self


class PhaseSettings(_Strict):
    """Phases run in the order listed: the export keeps that order (``phase=<name>/`` folders, shard numbers
    rising through the schedule)."""

    name: str = Field(default="main", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    fraction: float = Field(default=1.0, gt=0, le=1)  # share of mix.total_tokens
    weights: WeightSettings = Field(default_factory=WeightSettings)


class MecoSettings(_Strict):
    """Metadata conditioning then cooldown (MeCo, Gao et al. 2025): the first ``conditioned_share`` of the
    export's document tokens, in trainer order, start with a metadata line; the rest, and every row of a
    ``cooldown_phases`` phase, are plain text."""

    enabled: bool = False
    template: str = "URL: {host}\n\n"  # {host} (the URL's host, the paper's choice) or {url} (the full URL)
    conditioned_share: float = Field(default=0.9, ge=0, le=1)  # of all document tokens, from the start
    cooldown_phases: list[str] = Field(default_factory=list)  # phases never conditioned, e.g. [anneal]

    @field_validator("template")
    @classmethod
    def _known_fields(cls, template: str) -> str:
        check_meta_template(template)
        return template


class TokenizedExportSettings(_Strict):
    """Whole documents as token ids (``mix.tokens.tokenizer``), EOS after each: per shard a flat
    ``.tokens.npy`` (uint16, or uint32 past 65,536 ids) and ``.offsets.npy`` (int64, rows + 1)."""

    enabled: bool = False
    eos_token: str | None = None  # null: the first of <|endoftext|>, </s>, <|end_of_text|>, <eos>, [EOS]


class ExportSettings(_Strict):
    """Training-ready shards, phase by phase in schedule order (``phase=<name>/shard-NNNNN``), shuffled
    within a phase by the seeded hash, ``shard_docs`` rows per shard (about); ``index.json`` lists them."""

    enabled: bool = False
    path: str | None = None  # null: <output.root>/export/<run_id>
    format: Literal["parquet", "jsonl"] = "parquet"
    shard_docs: int = Field(default=10_000, gt=0)
    meco: MecoSettings = Field(default_factory=MecoSettings)
    tokenized: TokenizedExportSettings = Field(default_factory=TokenizedExportSettings)
    # Dataset decomposition: cut each document into chunks of 2^k tokens, one folder per length.
    decompose: bool = False
    min_chunk_log2: int = Field(default=6, ge=0, le=20)
    max_chunk_log2: int = Field(default=13, ge=0, le=24)

    @model_validator(mode="after")
    def _chunk_range(self) -> ExportSettings:
        if self.min_chunk_log2 > self.max_chunk_log2:
            raise ValueError("min_chunk_log2 must not exceed max_chunk_log2")
        return self


class MixSettings(_Strict):
    input_table: str = "filtered"
    seed: int = 1234
    domains: DomainSettings = Field(default_factory=DomainSettings)
    tokens: TokenSettings = Field(default_factory=TokenSettings)
    total_tokens: float | None = Field(default=None, gt=0)  # null: the tokens available in the input
    # Copies of a document over the whole schedule (all phases): at most ceil(max_epochs), and a domain's
    # tokens over all phases at most max_epochs times what it has.
    max_epochs: float = Field(default=4.0, gt=0)
    max_epochs_by_domain: dict[str, float] = Field(default_factory=dict)  # per-domain caps over max_epochs
    allow_infeasible: bool = False  # true: a target above the epoch cap is capped and flagged, not an error
    allow_unknown_domains: bool = False  # true: weights may name domains the input lacks (a warning)
    phases: list[PhaseSettings] = Field(default_factory=lambda: [PhaseSettings()], min_length=1)
    export: ExportSettings = Field(default_factory=ExportSettings)

    @model_validator(mode="after")
    def _phases_add_up(self) -> MixSettings:
        names = [phase.name for phase in self.phases]
        if len(set(names)) != len(names):
            raise ValueError(f"phase names must be unique: {names}")
        total = sum(phase.fraction for phase in self.phases)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"phase fractions must add up to 1 (they add up to {total:g})")
        unknown = sorted(set(self.export.meco.cooldown_phases) - set(names))
        if unknown:
            raise ValueError(f"export.meco.cooldown_phases names no phase: {unknown} (phases: {names})")
        bad = {domain: cap for domain, cap in self.max_epochs_by_domain.items() if not cap > 0}
        if bad:
            raise ValueError(f"max_epochs_by_domain must be > 0: {bad}")
        if self.export.tokenized.enabled and not self.tokens.tokenizer:
            raise ValueError("export.tokenized needs mix.tokens.tokenizer (a tokenizers JSON)")
        return self

    def epoch_caps(self, domains: Iterable[str]) -> dict[str, float]:
        """The cap over the whole schedule of each domain."""
        return {domain: self.max_epochs_by_domain.get(domain, self.max_epochs) for domain in domains}


class MaintainSettings(_Strict):
    """``curate maintain``: compaction of small files, then VACUUM of files no version within the
    reproducibility window needs (Delta's own default window: 7 days)."""

    retention_hours: float = Field(default=168.0, ge=0)  # versions younger than this stay readable
    tables: list[str] | None = None  # null: every table of ``tables`` that exists


class Config(_Strict):
    run: RunSettings = Field(default_factory=RunSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    input: InputSettings
    output: OutputSettings
    tables: TableSettings = Field(default_factory=TableSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    dedup: DedupSettings = Field(default_factory=DedupSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    mix: MixSettings = Field(default_factory=MixSettings)
    maintain: MaintainSettings = Field(default_factory=MaintainSettings)

    # Not part of the YAML: where the config came from, for error messages.
    _source: str = "<memory>"

    @property
    def source(self) -> str:
        return self._source

    def config_hash(self) -> str:
        """Stable hash of the effective settings (credentials masked), recorded with every run."""
        canonical = json.dumps(self.redacted(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def secrets(self) -> list[str]:
        """Credential values in the storage options and Spark settings (never written anywhere)."""
        return [*redaction.secret_values(self.input.storage_options),
                *redaction.secret_values(self.output.storage_options),
                *redaction.secret_values(self.spark.conf)]

    def redacted(self) -> dict[str, Any]:
        """The settings as JSON-ready data with every credential masked: what config.json holds."""
        data = self.model_dump(mode="json")
        for section, key in (("input", "storage_options"), ("output", "storage_options"), ("spark", "conf")):
            data[section][key] = redaction.masked(data[section][key])
        return data

    def classifier(self, kind: ClassifierKind) -> QualityClassifierSettings | TopicClassifierSettings | \
            ToxicityClassifierSettings:
        """The scoring settings of the ``kind`` classifier."""
        return {"quality": self.quality.classifier, "topic": self.quality.topic_classifier,
                "toxicity": self.quality.toxicity_classifier}[kind]

    def model_uri(self, kind: ClassifierKind) -> str:
        """Where the ``kind`` classifier is read from at scoring time."""
        return self.classifier(kind).model or default_model_uri(self.output.root, kind)

    def training_output(self, kind: ClassifierKind) -> str:
        configured = getattr(self.train, kind).model
        return configured or default_model_uri(self.output.root, kind)


def default_model_uri(root: str, kind: str) -> str:
    return storage.join(root, "models", f"{kind}.bin")


def parse_override(assignment: str) -> tuple[str, Any]:
    """``a.b=3`` -> ("a.b", 3); the value is read as a YAML scalar/list so types survive."""
    key, sep, raw = assignment.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set expects key.path=value, got {assignment!r}", source="--set")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse value {raw!r}: {exc}", key=key, source="--set") from None
    return key, value


# Free-form maps whose own keys contain dots (``spark.conf.spark.sql.shuffle.partitions=8``).
DOTTED_KEY_MAPS = ("spark.conf", "input.storage_options", "output.storage_options")


def _key_parts(key: str) -> list[str]:
    for prefix in DOTTED_KEY_MAPS:
        if key.startswith(prefix + ".") and len(key) > len(prefix) + 1:
            return [*prefix.split("."), key[len(prefix) + 1 :]]
    return key.split(".")


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Set each ``key.path=value``; a numeric part indexes a list (``mix.phases.0.fraction=0.8``)."""
    for assignment in overrides:
        key, value = parse_override(assignment)
        node: Any = data
        parts = _key_parts(key)
        for depth, part in enumerate(parts):
            prefix = ".".join(parts[: depth + 1])
            last = depth == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"'{prefix}': no item {part} in a list of {len(node)}", key=key,
                                      source="--set")
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
                continue
            if not isinstance(node, dict):
                raise ConfigError(f"'{'.'.join(parts[:depth])}' is a value, not a section", key=key,
                                  source="--set")
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
    return data


def _describe(errors: list[Mapping[str, Any]], source: str) -> ConfigError:
    messages = []
    first_key = None
    for error in errors:
        key = ".".join(str(part) for part in error["loc"])
        first_key = first_key or key
        if error["type"] == "extra_forbidden":
            messages.append(f"'{key}': unknown key")
        elif error["type"] == "missing":
            messages.append(f"'{key}': required key is missing")
        else:
            got = error.get("input")
            shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
            messages.append(f"'{key}': {error['msg']}{shown}")
    return ConfigError("; ".join(messages), key=first_key if len(errors) == 1 else None, source=source)


def validate_config(data: Mapping[str, Any], source: str = "<memory>") -> Config:
    try:
        config = Config.model_validate(dict(data))
    except ValidationError as exc:
        raise _describe(exc.errors(), source) from None
    config._source = source
    redaction.register(config.secrets())
    return config


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Read (local path or s3:// with the default AWS settings), override and validate; the only way
    jobs get their settings."""
    source = str(path)
    try:  # a local file, or s3:// (so cluster steps can point at a config next to the data)
        if not storage.exists(source):
            raise ConfigError("file not found", source=source)
        text = storage.read_bytes(source).decode("utf-8")
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"cannot read: {exc}", source=source) from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=source) from None
    if not isinstance(data, dict):
        raise ConfigError("top level must be a mapping of sections", source=source)
    overrides = list(overrides)
    data = apply_overrides(data, overrides)
    label = source + (" with --set overrides" if overrides else "")
    return validate_config(data, label)


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_shown(item)}" for key, item in value.items()) + "}"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def defaults_table() -> str:
    """The markdown table of every setting whose default lives in a ``udfs`` dataclass (docs/configuration.md
    embeds it; a test fails when the two differ). Regenerate: ``python -m jobs.core.config``."""
    rows = ["| key | default | defined in |", "| --- | --- | --- |"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            annotation = info.annotation
            if not isinstance(annotation, type) or not issubclass(annotation, BaseModel):
                continue
            key = f"{prefix}{name}"
            if issubclass(annotation, FromDefaults):
                source = annotation.defaults_class
                for item in dataclasses.fields(source):
                    if item.name in annotation.excluded:
                        continue
                    default = annotation.model_fields[item.name].get_default(call_default_factory=True)
                    rows.append(f"| `{key}.{item.name}` | `{_shown(default)}` | "
                                f"`{source.__module__}.{source.__name__}` |")
            walk(annotation, key + ".")

    walk(Config, "")
    return "\n".join(rows)


if __name__ == "__main__":
    print(defaults_table())
