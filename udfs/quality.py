"""One Arrow batch in, every quality and safety signal out.

``drop_reason`` is the first failing rule in this order: URL blocklist (``url_blocked:<category>``),
language (``lang_not_kept``, ``lang_low_score``), benchmark decontamination (``decontaminated:<benchmark>``),
Gopher quality rules, Gopher repetition rules, C4 document rules, FineWeb rules, flagged words
(``flagged_words``), PII density (``pii_density``). Each rule reads a document with its language's rule set
(udfs/languages.py). All signals are returned whatever the reason, so thresholds can be re-tuned with SQL.

The kept text is the input text after, in order: C4 line removal, removal of spans copied from benchmarks,
PII masking (``cleaned_text``; null where nothing changed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from udfs import fasttext_models
from udfs.blocklists import FlaggedWordRules, UrlBlocklist, flagged_word_fractions, url_block_reasons
from udfs.decontamination import (
    REASON_PREFIX,
    BenchmarkIndex,
    DecontaminationRules,
    build_index,
    find_contamination,
)
from udfs.heuristics import (
    C4_DOCUMENT_RULES,
    FINEWEB_RULES,
    GOPHER_QUALITY_RULES,
    C4Settings,
    FineWebThresholds,
    GopherQualityThresholds,
    GopherRepetitionThresholds,
    c4_clean,
    fineweb_checks,
    fineweb_signals,
    first_failing,
    gopher_quality_checks,
    gopher_quality_signals,
    gopher_repetition_checks,
    gopher_repetition_signals,
    repetition_rule_names,
)
from udfs.languages import LanguageGroups, LanguageRuleSet, group_rows, segment_words
from udfs.pii import PiiRules, mask_pii


def rule_names() -> list[str]:
    """Every rule a language may skip (quality.languages.<lang>.skip_rules)."""
    return [*GOPHER_QUALITY_RULES, *repetition_rule_names(), *C4_DOCUMENT_RULES, *FINEWEB_RULES,
            "flagged_words"]


@dataclass(frozen=True)
class LanguageRules:
    """Which languages stay, and how sure language ID must be (per language where given)."""

    keep: tuple[str, ...] = ("en",)  # empty keeps every language
    min_score: float = 0.65
    min_score_by_language: Mapping[str, float] = field(default_factory=dict)


class _ProbeModel:
    """Stands in for the language-ID model when only the output schema is asked for."""

    def predict(self, texts: list[str], k: int = 1) -> tuple[list[list[str]], list[list[float]]]:
        return [["__label__en"] for _ in texts], [[1.0] for _ in texts]


@dataclass(frozen=True)
class QualityRules:
    language: LanguageRules | None = field(default_factory=LanguageRules)
    gopher_quality: GopherQualityThresholds | None = field(default_factory=GopherQualityThresholds)
    gopher_repetition: GopherRepetitionThresholds | None = field(default_factory=GopherRepetitionThresholds)
    c4: C4Settings | None = None
    c4_remove_lines: bool = False
    fineweb: FineWebThresholds | None = field(default_factory=FineWebThresholds)
    languages: Mapping[str, LanguageRuleSet] = field(default_factory=dict)  # configured rule sets
    default_language: str = "en"  # rules for documents without a language ID
    url_blocklist: UrlBlocklist | None = None
    decontamination: DecontaminationRules | None = None  # with the benchmark index given to quality_features
    flagged_words: FlaggedWordRules | None = None
    word_lists: Mapping[str, frozenset[str]] = field(default_factory=dict)
    pii: PiiRules | None = None


def language_reasons(langs: list[str], scores: np.ndarray, rules: LanguageRules) -> list[str | None]:
    reasons: list[str | None] = []
    for lang, score in zip(langs, scores, strict=True):
        if rules.keep and lang not in rules.keep:
            reasons.append("lang_not_kept")
        elif score < rules.min_score_by_language.get(lang, rules.min_score):
            reasons.append("lang_low_score")
        else:
            reasons.append(None)
    return reasons


def _by_language(signals: pa.Table, checks: Callable[[pa.Table, Any], list[tuple[str, np.ndarray]]],
                 limits: Any, groups: LanguageGroups) -> list[str | None]:
    """First failing rule per document, each read with its language's thresholds and skipped rules
    (one pass per language present in the batch)."""
    names = {item.name for item in dataclasses.fields(limits)}
    reasons = np.full(signals.num_rows, None, dtype=object)
    for group, rule_set in enumerate(groups.rule_sets):
        rows = groups.rows(group)
        if not len(rows):
            continue
        changes = {name: type(getattr(limits, name))(value)
                   for name, value in rule_set.overrides.items() if name in names}
        chosen = dataclasses.replace(limits, **changes) if changes else limits
        part = signals if len(rows) == signals.num_rows else signals.take(pa.array(rows))
        applied = [(rule, failed) for rule, failed in checks(part, chosen) if rule not in rule_set.skip_rules]
        reasons[rows] = np.asarray(first_failing(applied, len(rows)).to_pylist(), dtype=object)
    return reasons.tolist()


def _skipping(reasons: list[str | None], groups: LanguageGroups) -> list[str | None]:
    """Reasons with those the row's language skips cleared (for rules decided before grouping)."""
    return [None if reason is not None and reason in groups.rule_sets[group].skip_rules else reason
            for reason, group in zip(reasons, groups.group_of_row, strict=True)]


def _first(reason_lists: list[list[str | None]], size: int) -> list[str | None]:
    result: list[str | None] = [None] * size
    for reasons in reason_lists:
        result = [current or reason for current, reason in zip(result, reasons, strict=True)]
    return result


def quality_features(batch: pa.RecordBatch, rules: QualityRules, language_model: Any = None,
                     benchmark_index: BenchmarkIndex | None = None) -> pa.RecordBatch:
    """Signals and the first failing rule for each document of ``batch`` (columns doc_id, text[, url]).

    ``language_model`` is the loaded fastText language-ID model, needed when ``rules.language`` is set;
    ``benchmark_index`` the benchmark n-grams, needed when ``rules.decontamination`` is set."""
    texts = batch.column("text")
    size = len(texts)
    columns: dict[str, pa.Array] = {"doc_id": batch.column("doc_id")}
    reason_lists: list[list[str | None]] = []

    if rules.url_blocklist is not None:
        urls = (batch.column("url") if "url" in batch.schema.names
                else pa.nulls(size, type=pa.string()))
        reason_lists.append(url_block_reasons(urls, rules.url_blocklist).to_pylist())

    langs = None
    if rules.language is not None:
        if language_model is None:
            raise ValueError("language rules need the language-ID model")
        predicted, scores = fasttext_models.predict_top(language_model, texts.fill_null("").to_pylist())
        langs = pa.array(predicted, type=pa.string())
        columns["lang"] = langs
        columns["lang_score"] = pa.array(scores, type=pa.float64())
        reason_lists.append(language_reasons(predicted, scores, rules.language))
    groups = group_rows(langs, size, rules.languages, rules.default_language)

    cleaned = None
    if rules.c4 is not None:
        cleaned, c4_signals = c4_clean(texts, rules.c4)
        for name in ("c4_lines", "c4_lines_kept", "c4_sentences"):
            columns[name] = c4_signals.column(name).combine_chunks()
    scored_texts = cleaned if (cleaned is not None and rules.c4_remove_lines) else texts
    kept_texts = scored_texts

    if rules.decontamination is not None:
        if benchmark_index is None:
            raise ValueError("decontamination needs the benchmark index")
        kept_texts, decontamination = find_contamination(kept_texts, benchmark_index, rules.decontamination)
        columns.update({name: decontamination.column(name).combine_chunks()
                        for name in decontamination.column_names if name != "decon_reason"})
        # Remove mode: a document that was nothing but benchmark text is dropped, not kept empty.
        emptied = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(kept_texts)), 0), False)
        benchmark = decontamination.column("decon_benchmark")
        emptied_reason = pc.if_else(pc.and_(emptied, pc.is_valid(benchmark)),
                                    pc.binary_join_element_wise(REASON_PREFIX, benchmark, ""),
                                    pa.scalar(None, pa.string()))
        reason_lists.append(pc.coalesce(decontamination.column("decon_reason"), emptied_reason).to_pylist())

    word_texts = segment_words(scored_texts.fill_null(""), groups.by_character())
    if rules.gopher_quality is not None:
        signals = gopher_quality_signals(scored_texts, word_texts, [r.stop_words for r in groups.rule_sets],
                                         groups.group_of_row)
        columns.update({name: signals.column(name).combine_chunks() for name in signals.column_names})
        reason_lists.append(_by_language(signals, gopher_quality_checks, rules.gopher_quality, groups))
    if rules.gopher_repetition is not None:
        signals = gopher_repetition_signals(scored_texts, word_texts)
        columns.update({name: signals.column(name).combine_chunks() for name in signals.column_names})
        reason_lists.append(_by_language(signals, gopher_repetition_checks, rules.gopher_repetition, groups))
    if rules.c4 is not None:
        reason_lists.append(_skipping(c4_signals.column("c4_reason").to_pylist(), groups))
    if rules.fineweb is not None:
        signals = fineweb_signals(scored_texts, rules.fineweb.short_line_length, word_texts)
        columns.update({name: signals.column(name).combine_chunks() for name in signals.column_names})
        reason_lists.append(_by_language(signals, fineweb_checks, rules.fineweb, groups))
    if rules.flagged_words is not None:
        flagged = flagged_word_fractions(scored_texts, langs, rules.word_lists, rules.flagged_words)
        columns["flagged_words"] = flagged.column("flagged_words").combine_chunks()
        columns["flagged_word_fraction"] = flagged.column("flagged_word_fraction").combine_chunks()
        reason_lists.append(_skipping(flagged.column("flagged_reason").to_pylist(), groups))
    if rules.pii is not None:
        kept_texts, pii = mask_pii(kept_texts, rules.pii)
        columns.update({name: pii.column(name).combine_chunks() for name in pii.column_names
                        if name != "pii_reason"})
        reason_lists.append(pii.column("pii_reason").to_pylist())

    columns["drop_reason"] = pa.array(_first(reason_lists, size), type=pa.string())
    changed = pc.fill_null(pc.not_equal(kept_texts, texts), False) if kept_texts is not texts else None
    columns["cleaned_text"] = (pa.nulls(size, type=pa.string()) if changed is None
                               else pc.if_else(changed, kept_texts, pa.scalar(None, pa.string())))
    return pa.RecordBatch.from_pydict(columns)


def output_schema(rules: QualityRules) -> pa.Schema:
    """The schema :func:`quality_features` produces for these rules (asked of a one-row batch)."""
    probe = pa.RecordBatch.from_pydict({"doc_id": pa.array(["probe"]),
                                        "text": pa.array(["The probe text is here."]),
                                        "url": pa.array(["https://probe.example/"])})
    index = None
    if rules.decontamination is not None:
        empty = pa.table({"benchmark": pa.array([], pa.string()), "item_id": pa.array([], pa.string()),
                          "text": pa.array([], pa.string())})
        index = build_index(empty, rules.decontamination.ngram)
    return quality_features(probe, rules, _ProbeModel(), index).schema
