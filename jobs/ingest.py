"""Ingest: raw files -> bronze Delta table (+ quarantine table for malformed records).

One Spark task per input file reads it with the readers in :mod:`udfs.readers` (``mapInArrow``), so
compressed files stream and every record is accounted for: ``records == bronze + quarantine``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pyarrow as pa

from jobs.core import audit, storage
from jobs.core.config import Config, ConfigError
from jobs.core.ledger import unseen_files
from jobs.core.stage import Stage, StageContext, StageResult
from udfs.readers import RECORD_SCHEMA, InputFile, ReaderSettings, detect_format, read_file

BRONZE_COLUMNS = ["doc_id", "source", "source_id", "url", "domain", "text", "n_chars", "n_words",
                  "crawl_time", "content_hash", "input_file", "input_position", "run_id"]
QUARANTINE_COLUMNS = ["doc_id", "source", "source_id", "url", "input_file", "input_position", "reason",
                      "detail", "raw_preview", "run_id"]


def resolve_inputs(config: Config) -> list[InputFile]:
    """Expand ``input.paths``; a pattern that matches nothing is a config error, not an empty run."""
    found: dict[str, InputFile] = {}
    by_relative: dict[str, str] = {}
    for pattern in config.input.paths:
        matches = storage.list_files(pattern, config.input.storage_options)
        if not matches:
            raise ConfigError(f"no input files match {pattern!r}", key="input.paths", source=config.source)
        for info in matches:
            try:
                fmt = detect_format(info.path) if config.input.format == "auto" else config.input.format
            except ValueError as exc:
                raise ConfigError(str(exc), key="input.format", source=config.source) from None
            other = by_relative.get(info.relative_path)
            if other is not None and other != info.path:
                raise ConfigError(
                    f"{other} and {info.path} have the same path ({info.relative_path}) relative to their "
                    "pattern roots, so their doc ids would collide; give them one common root",
                    key="input.paths", source=config.source)
            by_relative[info.relative_path] = info.path
            found[info.path] = InputFile(info.path, info.relative_path, fmt, info.size, info.etag)
    return list(found.values())


def check(ctx: StageContext) -> None:
    """Fail fast (before Spark starts) when the inputs are missing or ambiguous."""
    resolve_inputs(ctx.config)


def reader_settings(config: Config) -> ReaderSettings:
    fields = config.input.fields
    return ReaderSettings(
        source=config.input.source,
        text_field=fields.text,
        url_field=fields.url,
        id_field=fields.id,
        crawl_time_field=fields.crawl_time,
        max_text_bytes=config.ingest.max_text_bytes,
        max_record_bytes=config.ingest.max_record_bytes,
        batch_rows=config.ingest.batch_rows,
        raw_preview_chars=config.ingest.raw_preview_chars,
        html_main_content=config.ingest.html_main_content,
    )


def run(ctx: StageContext) -> StageResult:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    config, store, tables, run_id = ctx.config, ctx.store, ctx.tables, ctx.run_id
    files = resolve_inputs(config)
    settings = reader_settings(config)
    opener = functools.partial(storage.open_input, storage_options=dict(config.input.storage_options))
    mode = "append" if config.ingest.incremental else config.ingest.mode
    seen_before = 0
    if config.ingest.incremental:  # a retried run re-reads its own files; their writes are then skipped
        seen_before = len(files)
        files = unseen_files(files, ctx.ledger.ingested_files(), run_id)
        seen_before -= len(files)

    def read_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for row in batch.to_pylist():
                yield from read_file(InputFile(**row), settings, opener)

    # Largest files first so the long tasks start early; one task per file.
    ordered = sorted(files, key=lambda f: (-f.size, f.path))
    rows = [(f.path, f.relative_path, f.format, f.size) for f in ordered]
    if not rows:
        return StageResult(stage="ingest", docs_in=0, docs_out=0,
                           details={"files": 0, "files_seen_before": seen_before, "input_bytes": 0})
    file_frame = ctx.spark.createDataFrame(
        ctx.spark.sparkContext.parallelize(rows, numSlices=max(1, len(rows))),
        "path string, relative_path string, format string, size long",
    )
    records = (
        file_frame.mapInArrow(read_partition, from_arrow_schema(RECORD_SCHEMA))
        .withColumn("run_id", F.lit(run_id))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        counts = {
            row["reason"]: (int(row["docs"]), int(row["chars"] or 0))
            for row in records.groupBy("reason")
            .agg(F.count(F.lit(1)).alias("docs"), F.sum("n_chars").alias("chars"))
            .collect()
        }
        bronze = store.write(records.where(F.col("reason").isNull()).select(*BRONZE_COLUMNS),
                             tables.bronze, mode=mode, run_id=run_id)
        quarantine = store.write(records.where(F.col("reason").isNotNull()).select(*QUARANTINE_COLUMNS),
                                 tables.quarantine, mode=mode, run_id=run_id)
        decisions = audit.record(ctx, audit.decisions(
            store.read(tables.quarantine).where(F.col("run_id") == run_id), "ingest", "quarantined",
            F.col("reason"), F.concat_ws(" ", F.col("detail"), F.col("input_file"),
                                         F.col("input_position").cast("string")), run_id), "ingest")
    finally:
        records.unpersist()
    if config.ingest.incremental:  # after bronze and quarantine: a crash before this re-reads the files
        ctx.ledger.record_files([(f.path, f.size, f.etag) for f in files], run_id)

    kept_docs, kept_chars = counts.pop(None, (0, 0))
    drops = {reason: docs for reason, (docs, _chars) in counts.items()}
    return StageResult(
        stage="ingest",
        docs_in=kept_docs + sum(drops.values()),
        docs_out=kept_docs,
        chars_in=kept_chars,
        chars_out=kept_chars,
        drops=drops,
        tables={tables.bronze: bronze.version, tables.quarantine: quarantine.version,
                tables.decisions: decisions.version},
        details={"files": len(files), "files_seen_before": seen_before, "bronze_skipped": bronze.skipped,
                 "input_bytes": sum(f.size for f in files)},
    )


STAGE = Stage("ingest", check, run)
