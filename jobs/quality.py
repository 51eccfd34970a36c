"""Quality: score first, filter later. Every signal lands in the scores table, so thresholds can be
re-tuned with a cheap SQL pass; the filtered table keeps the documents that pass every enabled rule.

    deduped --(language ID, Gopher quality/repetition, C4, FineWeb in one Arrow pass)-->
      quality_scores (doc_id, all signals, drop_reason) and filtered (kept documents + lang, lang_score)

    spark-submit jobs/quality.py --config conf/cluster.yaml
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __name__ == "__main__" and not __package__:  # spark-submit jobs/quality.py from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa

from jobs.config import Config, ConfigError
from jobs.stats import StageResult
from jobs.tables import open_store
from udfs import fasttext_models
from udfs.heuristics import C4Settings, FineWebThresholds, GopherQualityThresholds, GopherRepetitionThresholds
from udfs.quality import LanguageRules, QualityRules, output_schema, quality_features

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

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


def check(config: Config) -> None:
    """A missing or unreadable model fails here, before any Spark work starts."""
    language = config.quality.language
    if not language.enabled:
        return
    try:
        local = fasttext_models.resolve_model(language.model, config.output.storage_options,
                                              expected_sha256=language.model_sha256)
        fasttext_models.load_model(local)
    except fasttext_models.ModelError as exc:
        raise ConfigError(str(exc), key="quality.language.model", source=config.source) from None


def _histogram(frame: Any, column: str) -> dict[str, int]:
    from pyspark.sql import functions as F

    bins = F.least(F.floor(F.col(column) * HISTOGRAM_BINS), F.lit(HISTOGRAM_BINS - 1)).alias("bin")
    rows = frame.where(F.col(column).isNotNull()).groupBy(bins).count().collect()
    ordered = sorted(rows, key=lambda row: row["bin"])
    return {f"{row['bin'] / HISTOGRAM_BINS:.1f}": int(row["count"]) for row in ordered}


def run(spark: SparkSession, config: Config, run_id: str) -> StageResult:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    started = time.monotonic()
    tables = config.tables
    store = open_store(spark, config.output.root, tables, config.output.storage_options)
    rules = quality_rules(config)
    schema = output_schema(rules)

    def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield quality_features(batch, rules)

    docs = store.read(tables.deduped)
    scores = (docs.select("doc_id", "text").mapInArrow(score, from_arrow_schema(schema))
              .withColumn("run_id", F.lit(run_id)).persist(StorageLevel.MEMORY_AND_DISK))
    try:
        by_reason = {row["drop_reason"]: int(row["count"])
                     for row in scores.groupBy("drop_reason").count().collect()}
        extra = [name for name in ("lang", "lang_score") if name in scores.columns]
        kept = (docs.join(scores.where(F.col("drop_reason").isNull())
                          .select("doc_id", "cleaned_text", *extra), "doc_id")
                .withColumn("text", F.coalesce("cleaned_text", "text")).drop("cleaned_text")
                .withColumn("n_chars", F.length("text")))
        written = {
            tables.quality_scores: store.write(scores.drop("cleaned_text"), tables.quality_scores,
                                               mode="overwrite", run_id=run_id),
            tables.filtered: store.write(kept, tables.filtered, mode="overwrite", run_id=run_id),
        }
        chars_in = docs.agg(F.sum("n_chars")).first()[0] or 0
        chars_out = store.read(tables.filtered).agg(F.sum("n_chars")).first()[0] or 0
        histograms = ({"lang_score": _histogram(scores, "lang_score")}
                      if "lang_score" in scores.columns else {})
        languages = ({row["lang"]: int(row["count"]) for row in scores.groupBy("lang").count().collect()}
                     if "lang" in scores.columns else {})
    finally:
        scores.unpersist()

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
        details={"histograms": histograms, "languages": languages},
    )


def main(argv: list[str] | None = None) -> int:
    from jobs.cli import stage_main

    return stage_main("quality", argv)


if __name__ == "__main__":
    sys.exit(main())
