"""Quality: score first, filter later. Every signal lands in the scores table, so thresholds can be
re-tuned with a cheap SQL pass; the filtered table keeps the documents that pass every enabled rule.

    deduped --(language ID, Gopher quality/repetition, C4, FineWeb in one Arrow pass)
            --(fastText quality score and topic label in pandas UDFs)
            --(classifier thresholds: absolute, top-k% via percentile_approx, Pareto sampling)-->
      quality_scores (doc_id, all signals and scores, drop_reason) and filtered (kept documents + scores)

    spark-submit jobs/quality.py --config conf/cluster.yaml
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __name__ == "__main__" and not __package__:  # spark-submit jobs/quality.py from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa

from jobs import audit
from jobs.config import Config, ConfigError
from jobs.hashing import unit_uniform
from jobs.stats import StageResult
from jobs.tables import open_store
from udfs import fasttext_models
from udfs.classifier import ScoringModel, label_udf, read_card, score_udf
from udfs.heuristics import C4Settings, FineWebThresholds, GopherQualityThresholds, GopherRepetitionThresholds
from udfs.quality import LanguageRules, QualityRules, output_schema, quality_features

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

HISTOGRAM_BINS = 10


def quality_rules(config: Config) -> QualityRules:
    settings = config.quality
    language = settings.language
    repetition = settings.gopher_repetition
    return QualityRules(
        language=LanguageRules(model=language.model, model_sha256=language.model_sha256,
                               keep=tuple(language.keep), min_score=language.min_score,
                               min_score_by_language=dict(language.min_score_by_language),
                               storage_options=dict(config.output.storage_options))
        if language.enabled else None,
        gopher_quality=GopherQualityThresholds(**settings.gopher_quality.model_dump(exclude={"enabled"}))
        if settings.gopher_quality.enabled else None,
        gopher_repetition=GopherRepetitionThresholds(
            max_dup_para_frac=repetition.max_dup_para_frac,
            max_dup_para_char_frac=repetition.max_dup_para_char_frac,
            max_dup_line_frac=repetition.max_dup_line_frac,
            max_dup_line_char_frac=repetition.max_dup_line_char_frac,
            max_top_ngram_char_frac=tuple(sorted(repetition.max_top_ngram_char_frac.items())),
            max_dup_ngram_char_frac=tuple(sorted(repetition.max_dup_ngram_char_frac.items())),
        ) if repetition.enabled else None,
        c4=C4Settings(min_sentences=settings.c4.min_sentences,
                      min_words_per_line=settings.c4.min_words_per_line,
                      max_word_length=settings.c4.max_word_length) if settings.c4.mode != "off" else None,
        c4_remove_lines=settings.c4.mode == "remove_lines",
        fineweb=FineWebThresholds(**settings.fineweb.model_dump(exclude={"enabled"}))
        if settings.fineweb.enabled else None,
    )


def scoring_model(config: Config, kind: str) -> ScoringModel:
    """The classifier as configured, with the normalisation and label its card recorded at training
    (a model trained elsewhere has no card: the config's normalisation and positive label apply)."""
    settings = config.quality.classifier if kind == "quality" else config.quality.topic_classifier
    uri = config.model_uri(kind)  # type: ignore[arg-type]
    options = dict(config.output.storage_options)
    card = read_card(uri, options)
    if card is not None:
        if card.kind != kind:
            raise fasttext_models.ModelError(f"{uri} is a {card.kind} classifier, not a {kind} classifier")
        normalization = card.text_normalization
        positive_label = card.positive_label
    else:
        normalization = settings.normalization.as_normalization()
        positive_label = config.quality.classifier.positive_label if kind == "quality" else None
    return ScoringModel(uri=uri, normalization=normalization, positive_label=positive_label,
                        sha256=settings.model_sha256, storage_options=options)


def check(config: Config, earlier: Sequence[str] = ()) -> None:
    """A missing or unreadable model fails here, before any Spark work starts (a classifier trained by
    an earlier stage of the same run is checked when that stage has written it)."""
    quality = config.quality
    wanted = [kind for kind, enabled in (("language", quality.language.enabled),
                                         ("quality", quality.classifier.enabled),
                                         ("topic", quality.topic_classifier.enabled))
              if enabled and f"train_{kind}" not in earlier]
    for kind in wanted:
        try:
            if kind == "language":
                local = fasttext_models.resolve_model(quality.language.model, config.output.storage_options,
                                                      expected_sha256=quality.language.model_sha256)
                fasttext_models.load_model(local)
            else:
                scoring_model(config, kind).load()
        except (fasttext_models.ModelError, ValueError) as exc:
            key = {"language": "quality.language.model", "quality": "quality.classifier.model",
                   "topic": "quality.topic_classifier.model"}[kind]
            hint = ("" if kind == "language"
                    else f" (train it with: curate train-{kind} --config {config.source})")
            raise ConfigError(f"{exc}{hint}", key=key, source=config.source) from None


def _histogram(frame: Any, column: str) -> dict[str, int]:
    from pyspark.sql import functions as F

    bins = F.least(F.floor(F.col(column) * HISTOGRAM_BINS), F.lit(HISTOGRAM_BINS - 1)).alias("bin")
    rows = frame.where(F.col(column).isNotNull()).groupBy(bins).count().collect()
    ordered = sorted(rows, key=lambda row: row["bin"])
    return {f"{row['bin'] / HISTOGRAM_BINS:.1f}": int(row["count"]) for row in ordered}


CLASSIFIER_COLUMNS = ("quality_score", "topic", "topic_score")


def _with_classifiers(docs: DataFrame, config: Config) -> DataFrame:
    """doc_id, text and the classifier columns (pandas UDFs; each worker loads each model once)."""
    from pyspark.sql import functions as F

    columns: list[Column] = [F.col("doc_id"), F.col("text")]
    if config.quality.classifier.enabled:
        columns.append(score_udf(scoring_model(config, "quality"))("text").alias("quality_score"))
    if config.quality.topic_classifier.enabled:
        columns.append(label_udf(scoring_model(config, "topic"))("text").alias("_topic"))
    if config.quality.classifier.group_by in ("source", "domain"):
        columns.append(F.col(config.quality.classifier.group_by))
    selected = docs.select(*columns)
    if "_topic" not in selected.columns:
        return selected
    floor = config.quality.topic_classifier.min_score
    return (selected.withColumn("topic", F.when(F.col("_topic.score") >= floor, F.col("_topic.label"))
                                .otherwise(F.lit("unknown")))
            .withColumn("topic_score", F.col("_topic.score")).drop("_topic"))


def _classifier_reasons(scores: DataFrame, config: Config) -> DataFrame:
    """Apply the classifier thresholds, in order, to documents no earlier rule dropped."""
    from pyspark.sql import functions as F

    settings = config.quality.classifier
    if not settings.enabled:
        return scores
    undecided = F.col("drop_reason").isNull()
    if settings.min_score is not None:
        scores = scores.withColumn("drop_reason", F.when(
            undecided & (F.col("quality_score") < settings.min_score), F.lit("quality_score_low"))
            .otherwise(F.col("drop_reason")))
    if settings.keep_top_percent is not None and settings.keep_top_percent < 100:
        group = settings.group_by
        cutoff = F.percentile_approx("quality_score", 1 - settings.keep_top_percent / 100,
                                     settings.percentile_accuracy).alias("quality_cutoff")
        candidates = scores.where(undecided)
        if group:
            cutoffs = candidates.groupBy(F.col(group).alias("_group")).agg(cutoff)
            scores = scores.join(F.broadcast(cutoffs), scores[group].eqNullSafe(cutoffs["_group"]), "left")
            scores = scores.drop("_group")
        else:
            scores = scores.crossJoin(F.broadcast(candidates.agg(cutoff)))
        scores = scores.withColumn("drop_reason", F.when(
            undecided & (F.col("quality_score") < F.col("quality_cutoff")),
            F.lit("quality_below_top_percent"))
            .otherwise(F.col("drop_reason")))
    if settings.pareto.enabled:
        draw = F.pow(1 - unit_uniform(settings.pareto.seed, "doc_id"), -1 / settings.pareto.alpha) - 1
        scores = scores.withColumn("drop_reason", F.when(
            undecided & (draw <= 1 - F.col("quality_score")), F.lit("quality_pareto_sampled_out"))
            .otherwise(F.col("drop_reason")))
    return scores


def run(spark: SparkSession, config: Config, run_id: str) -> StageResult:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    started = time.monotonic()
    tables = config.tables
    store = open_store(spark, config.output.root, tables, config.output.storage_options)
    rules = quality_rules(config)
    docs = store.read(tables.deduped)
    incremental = config.quality.incremental
    if incremental and store.exists(tables.quality_scores):  # a retried run scores its own documents again
        scored_before = store.read(tables.quality_scores)
        docs = docs.join(scored_before.where(scored_before.run_id != run_id).select("doc_id"), "doc_id",
                         "left_anti")
    mode = "append" if incremental else "overwrite"
    scored = _with_classifiers(docs, config)
    passed_through = [field for field in scored.schema.fields if field.name not in ("doc_id", "text")]
    schema = from_arrow_schema(output_schema(rules))
    for field in passed_through:
        schema = schema.add(field)

    def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            features = quality_features(batch, rules)
            for field in passed_through:
                features = features.append_column(field.name, batch.column(field.name))
            yield features

    base = scored.mapInArrow(score, schema).persist(StorageLevel.MEMORY_AND_DISK)
    scores = (_classifier_reasons(base, config).withColumn("run_id", F.lit(run_id))
              .persist(StorageLevel.MEMORY_AND_DISK))
    try:
        by_reason = {row["drop_reason"]: int(row["count"])
                     for row in scores.groupBy("drop_reason").count().collect()}
        extra = [name for name in ("lang", "lang_score", *CLASSIFIER_COLUMNS) if name in scores.columns]
        kept = (docs.join(scores.where(F.col("drop_reason").isNull())
                          .select("doc_id", "cleaned_text", *extra), "doc_id")
                .withColumn("text", F.coalesce("cleaned_text", "text")).drop("cleaned_text")
                .withColumn("n_chars", F.length("text")))
        written = {
            tables.quality_scores: store.write(scores.drop("cleaned_text"), tables.quality_scores,
                                               mode=mode, run_id=run_id),
            tables.filtered: store.write(kept, tables.filtered, mode=mode, run_id=run_id),
        }
        shown = [F.concat(F.lit("lang="), F.col("lang"))] if "lang" in scores.columns else []
        shown += [F.format_string(f"{name}=%.3f", name) for name in ("lang_score", "quality_score")
                  if name in scores.columns]
        decision = F.when(F.col("drop_reason").isNull(), F.lit("kept")).otherwise(F.lit("dropped"))
        written[tables.decisions] = audit.record(store, config, audit.decisions(
            scores, "quality", decision, F.col("drop_reason"), F.concat_ws(" ", *shown), run_id),
            run_id, "quality")
        chars_in = docs.agg(F.sum("n_chars")).first()[0] or 0
        chars_out = kept.agg(F.sum("n_chars")).first()[0] or 0
        histograms = {name: _histogram(scores, name)
                      for name in ("lang_score", "quality_score", "topic_score") if name in scores.columns}
        counts = {name: {row[name]: int(row["count"]) for row in scores.groupBy(name).count().collect()}
                  for name in ("lang", "topic") if name in scores.columns}
        cutoffs = ({str(row[0]): row[1] for row in scores.select(
            config.quality.classifier.group_by or F.lit("all"), "quality_cutoff").distinct().collect()}
            if "quality_cutoff" in scores.columns else {})
    finally:
        scores.unpersist()
        base.unpersist()

    kept_docs = by_reason.pop(None, 0)
    return StageResult(
        stage="quality",
        docs_in=kept_docs + sum(by_reason.values()),
        docs_out=kept_docs,
        chars_in=int(chars_in),
        chars_out=int(chars_out),
        drops=dict(sorted(by_reason.items(), key=lambda item: -item[1])),
        seconds=round(time.monotonic() - started, 2),
        tables={name: result.version for name, result in written.items()},
        details={"histograms": histograms, "languages": counts.get("lang", {}),
                 "topics": counts.get("topic", {}), "quality_cutoffs": cutoffs},
    )


def main(argv: list[str] | None = None) -> int:
    from jobs.cli import stage_main

    return stage_main("quality", argv)


if __name__ == "__main__":
    sys.exit(main())
