"""Quality and safety: score first, filter later. Every signal lands in the scores table, so thresholds
can be re-tuned with a cheap SQL pass; the filtered table keeps the documents that pass every enabled rule,
with benchmark spans removed and PII masked if so configured.

    deduped --(URL blocklist, language ID, benchmark decontamination, Gopher quality/repetition, C4, FineWeb,
               flagged words, PII masking: one Arrow pass, each document read with its language's rules)
            --(fastText toxicity, quality score and topic label in pandas UDFs)
            --(toxicity threshold; quality thresholds: absolute, top-k% via percentile_approx, Pareto)-->
      quality_scores (doc_id, all signals and scores, drop_reason) and filtered (kept documents + scores)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from jobs.core import audit, models, reference_data
from jobs.core.config import Config, ConfigError
from jobs.core.errors import PolicyError
from jobs.core.hashing import unit_uniform
from jobs.core.increment import undecided
from jobs.core.lineage import Stored
from jobs.core.pandas_udfs import label_udf, score_udf
from jobs.core.stage import Stage, StageContext, StageResult
from udfs import fasttext_models
from udfs.languages import rule_set
from udfs.pii import PII_TYPES
from udfs.quality import QualityRules, output_schema, quality_features

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

HISTOGRAM_BINS = 10


def quality_rules(config: Config) -> QualityRules:
    """The enabled rules with their thresholds (each threshold's default lives in its udfs dataclass) and
    the user's lists, read once here on the driver."""
    settings = config.quality
    languages = {lang: rule_set(lang, rules.segmentation,
                                None if rules.stop_words is None else frozenset(rules.stop_words),
                                frozenset(rules.skip_rules), rules.thresholds)
                 for lang, rules in settings.languages.items()}
    return QualityRules(
        language=settings.language.build() if settings.language.enabled else None,
        gopher_quality=settings.gopher_quality.build() if settings.gopher_quality.enabled else None,
        gopher_repetition=settings.gopher_repetition.build() if settings.gopher_repetition.enabled else None,
        c4=settings.c4.build() if settings.c4.mode != "off" else None,
        c4_remove_lines=settings.c4.mode == "remove_lines",
        fineweb=settings.fineweb.build() if settings.fineweb.enabled else None,
        languages=languages,
        default_language=settings.default_language,
        url_blocklist=reference_data.url_blocklist(config) if settings.url_blocklist.enabled else None,
        decontamination=settings.decontamination.build() if settings.decontamination.enabled else None,
        flagged_words=settings.flagged_words.build() if settings.flagged_words.enabled else None,
        word_lists=reference_data.word_lists(config) if settings.flagged_words.enabled else {},
        pii=settings.pii.build() if settings.pii.enabled else None,
    )


def language_model(config: Config) -> Any:
    """The language-ID model, resolved (fetched once from s3:// if need be) and loaded once per process."""
    language = config.quality.language
    return models.load(language.model, config.output.storage_options, language.model_sha256)


def check(ctx: StageContext) -> None:
    """A missing or unreadable model fails here, before any Spark work starts (a classifier trained by
    an earlier stage of the same run is checked when that stage has written it)."""
    config, earlier = ctx.config, ctx.earlier
    quality = config.quality
    wanted = [kind for kind, enabled in (("language", quality.language.enabled),
                                         ("quality", quality.classifier.enabled),
                                         ("topic", quality.topic_classifier.enabled),
                                         ("toxicity", quality.toxicity_classifier.enabled))
              if enabled and f"train_{kind}" not in earlier]
    for kind in wanted:
        if kind == "language":
            try:
                models.verify(quality.language.model, config.output.storage_options,
                              quality.language.model_sha256)
            except (fasttext_models.ModelError, ValueError) as exc:
                raise ConfigError(str(exc), key="quality.language.model", source=config.source) from None
        else:
            models.check_classifier(config, kind)
    quality_rules(config)  # the user's lists and word files are read (and refused) before Spark work
    reference_data.check_benchmarks(config)


def _histogram(frame: Any, column: str) -> dict[str, int]:
    from pyspark.sql import functions as F

    bins = F.least(F.floor(F.col(column) * HISTOGRAM_BINS), F.lit(HISTOGRAM_BINS - 1)).alias("bin")
    rows = frame.where(F.col(column).isNotNull()).groupBy(bins).count().collect()
    ordered = sorted(rows, key=lambda row: row["bin"])
    return {f"{row['bin'] / HISTOGRAM_BINS:.1f}": int(row["count"]) for row in ordered}


CLASSIFIER_COLUMNS = ("quality_score", "topic", "topic_score", "toxicity_score")


def _with_classifiers(docs: DataFrame, config: Config) -> DataFrame:
    """doc_id, text and the classifier columns (pandas UDFs; each worker loads each model once)."""
    from pyspark.sql import functions as F

    columns: list[Column] = [F.col("doc_id"), F.col("text")]
    if config.quality.classifier.enabled:
        columns.append(score_udf(models.scoring_model(config, "quality"))("text").alias("quality_score"))
    if config.quality.topic_classifier.enabled:
        columns.append(label_udf(models.scoring_model(config, "topic"))("text").alias("_topic"))
    if config.quality.toxicity_classifier.enabled:
        columns.append(score_udf(models.scoring_model(config, "toxicity"))("text").alias("toxicity_score"))
    if config.quality.classifier.group_by in ("source", "domain"):
        columns.append(F.col(config.quality.classifier.group_by))
    if config.quality.url_blocklist.enabled and "url" in docs.columns:
        columns.append(F.col("url"))
    selected = docs.select(*columns)
    if "_topic" not in selected.columns:
        return selected
    floor = config.quality.topic_classifier.min_score
    return (selected.withColumn("topic", F.when(F.col("_topic.score") >= floor, F.col("_topic.label"))
                                .otherwise(F.lit("unknown")))
            .withColumn("topic_score", F.col("_topic.score")).drop("_topic"))


def _classifier_reasons(scores: DataFrame, config: Config) -> DataFrame:
    """Apply the classifier thresholds, in order, to documents no earlier rule dropped: toxicity (a
    safety rule) first, then the quality thresholds."""
    from pyspark.sql import functions as F

    undecided = F.col("drop_reason").isNull()
    toxicity = config.quality.toxicity_classifier
    if toxicity.enabled and toxicity.max_score is not None:
        scores = scores.withColumn("drop_reason", F.when(
            undecided & (F.col("toxicity_score") > toxicity.max_score), F.lit("toxicity_high"))
            .otherwise(F.col("drop_reason")))
    settings = config.quality.classifier
    if not settings.enabled:
        return scores
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


def _safety_details(scores: DataFrame, rules: QualityRules, index: Any) -> dict[str, Any]:
    """PII matches masked per type (in kept documents) and documents touched per benchmark."""
    from pyspark.sql import functions as F

    details: dict[str, Any] = {}
    if rules.pii is not None:
        kept = scores.where(F.col("drop_reason").isNull())
        row = kept.agg(*[F.sum(f"pii_{kind}").alias(kind) for kind in PII_TYPES],
                       F.sum(F.when(sum(F.col(f"pii_{kind}") for kind in PII_TYPES) > 0, 1).otherwise(0))
                       .alias("documents")).first()
        details["pii_masked"] = {kind: int(row[kind] or 0) for kind in PII_TYPES}
        details["pii_masked"]["documents"] = int(row["documents"] or 0)
    if rules.decontamination is not None:
        touched = (scores.where(F.col("decon_benchmark").isNotNull()).groupBy("decon_benchmark")
                   .agg(F.count("*").alias("documents"), F.countDistinct("decon_item").alias("items"))
                   .collect())
        details["decontamination"] = {
            "mode": rules.decontamination.mode, "ngram": rules.decontamination.ngram,
            "items_indexed": len(index.item_ids), "items_too_short": index.skipped_items,
            "benchmarks": {row["decon_benchmark"]: {"documents": int(row["documents"]),
                                                    "items": int(row["items"])} for row in touched}}
    return details


def _scored(docs: DataFrame, config: Config, rules: QualityRules, index: Any) -> DataFrame:
    """Every signal and the rule-based drop reason of each document: one Arrow pass per batch, after the
    classifier columns (``index``: the broadcast benchmark index, or None)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    scored = _with_classifiers(docs, config)
    passed_through = [field for field in scored.schema.fields if field.name not in ("doc_id", "text", "url")]
    schema = from_arrow_schema(output_schema(rules))
    for field in passed_through:
        schema = schema.add(field)

    def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        model = language_model(config) if rules.language is not None else None
        benchmarks = index.value if index is not None else None
        for batch in batches:
            features = quality_features(batch, rules, model, benchmarks)
            for field in passed_through:
                features = features.append_column(field.name, batch.column(field.name))
            yield features

    return scored.mapInArrow(score, schema)


def _details(scores: DataFrame, config: Config, rules: QualityRules, index: Any) -> dict[str, Any]:
    """What the run's stats show beside the drop counts: histograms, languages, topics, cut-offs, safety."""
    from pyspark.sql import functions as F

    histograms = {name: _histogram(scores, name)
                  for name in ("lang_score", "quality_score", "topic_score", "toxicity_score",
                               "flagged_word_fraction") if name in scores.columns}
    counts = {name: {row[name]: int(row["count"]) for row in scores.groupBy(name).count().collect()}
              for name in ("lang", "topic") if name in scores.columns}
    cutoffs = ({str(row[0]): row[1] for row in scores.select(
        config.quality.classifier.group_by or F.lit("all"), "quality_cutoff").distinct().collect()}
        if "quality_cutoff" in scores.columns else {})
    return {"histograms": histograms, "languages": counts.get("lang", {}), "topics": counts.get("topic", {}),
            "quality_cutoffs": cutoffs, **_safety_details(scores, rules, index)}


def run(ctx: StageContext) -> StageResult:
    from pyspark.sql import functions as F

    config, store, tables, run_id = ctx.config, ctx.store, ctx.tables, ctx.run_id
    rules = quality_rules(config)
    rows = docs = store.read(tables.deduped)
    incremental = config.quality.incremental
    if incremental and store.exists(tables.quality_scores):
        rows, docs = undecided(rows, [store.read(tables.quality_scores)], run_id)
    index = reference_data.benchmark_index(config) if rules.decontamination is not None else None
    shared = ctx.spark.sparkContext.broadcast(index) if index is not None else None
    stored = Stored()
    try:  # stored once: every read below (counts, writes, details) scans the result, scoring runs once
        base = stored(_scored(docs, config, rules, shared), on_disk=True)
        scores = stored(_classifier_reasons(base, config).withColumn("run_id", F.lit(run_id)), on_disk=True)
        by_reason = {row["drop_reason"]: int(row["count"])
                     for row in scores.groupBy("drop_reason").count().collect()}
        if sum(by_reason.values()) and not by_reason.get(None) and not config.quality.allow_empty_output:
            reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(by_reason.items(), key=str))
            raise PolicyError(f"scored {sum(by_reason.values())} documents and kept none ({reasons}); "
                              "quality.allow_empty_output: true accepts this")
        extra = [name for name in ("lang", "lang_score", *CLASSIFIER_COLUMNS) if name in scores.columns]
        kept = (rows.join(scores.where(F.col("drop_reason").isNull())
                          .select("doc_id", "cleaned_text", *extra), "doc_id")
                .withColumn("text", F.coalesce("cleaned_text", "text")).drop("cleaned_text")
                .withColumn("n_chars", F.length("text")))
        written = {
            tables.quality_scores: ctx.save(scores.drop("cleaned_text"), tables.quality_scores,
                                            key=["doc_id"], incremental=incremental),
            tables.filtered: ctx.save(kept, tables.filtered, key=["doc_id"], incremental=incremental),
        }
        shown = [F.concat(F.lit("lang="), F.col("lang"))] if "lang" in scores.columns else []
        shown += [F.format_string(f"{name}=%.3f", name) for name in ("lang_score", "quality_score",
                                                                       "toxicity_score")
                  if name in scores.columns]
        decision = F.when(F.col("drop_reason").isNull(), F.lit("kept")).otherwise(F.lit("dropped"))
        written[tables.decisions] = audit.record(ctx, audit.decisions(
            scores, "quality", decision, F.col("drop_reason"), F.concat_ws(" ", *shown), run_id), "quality")
        judged = rows.join(scores.select("doc_id"), "doc_id", "left_semi")
        chars_in = judged.agg(F.sum("n_chars")).first()[0] or 0
        chars_out = kept.agg(F.sum("n_chars")).first()[0] or 0
        details = _details(scores, config, rules, index)
    finally:
        stored.release()
        if shared is not None:
            shared.unpersist()

    kept_docs = by_reason.pop(None, 0)
    return StageResult(
        stage="quality",
        docs_in=kept_docs + sum(by_reason.values()),
        docs_out=kept_docs,
        chars_in=int(chars_in),
        chars_out=int(chars_out),
        drops=dict(sorted(by_reason.items(), key=lambda item: -item[1])),
        tables={name: result.version for name, result in written.items()},
        details=details,
    )


STAGE = Stage("quality", check, run, reads=lambda config: [config.tables.deduped])
