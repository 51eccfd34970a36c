"""Ingest: raw files -> bronze Delta table (+ quarantine table for malformed records).

One Spark task per input file reads it with the readers in :mod:`udfs.readers` (``mapInArrow``), so
compressed files stream and every record is accounted for: ``records == bronze + quarantine``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from jobs.core import audit, storage
from jobs.core.config import Config, ConfigError
from jobs.core.errors import PolicyError
from jobs.core.ledger import unseen_files
from jobs.core.stage import Stage, StageContext, StageResult
from udfs.readers import RECORD_SCHEMA, InputFile, ReaderSettings, detect_format, read_file

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

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


def _read_records(ctx: StageContext, files: list[InputFile]) -> DataFrame:
    """One Spark task per file (largest first, so the long tasks start early) reading every record."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    settings = reader_settings(ctx.config)
    opener = functools.partial(storage.open_input, storage_options=dict(ctx.config.input.storage_options))

    def read_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for row in batch.to_pylist():
                yield from read_file(InputFile(**row), settings, opener)

    ordered = sorted(files, key=lambda f: (-f.size, f.path))
    rows = [(f.path, f.relative_path, f.format, f.size) for f in ordered]
    file_frame = ctx.spark.createDataFrame(ctx.spark.sparkContext.parallelize(rows, numSlices=len(rows)),
                                           "path string, relative_path string, format string, size long")
    return (file_frame.mapInArrow(read_partition, from_arrow_schema(RECORD_SCHEMA))
            .withColumn("run_id", F.lit(ctx.run_id)))


def _signatures(frame: DataFrame, what: str) -> DataFrame:
    """(input_file, doc_id, what the record became: its content hash, or its quarantine reason)."""
    from pyspark.sql import functions as F

    return frame.select("input_file", "doc_id", F.coalesce(F.col(what), F.lit("")).alias("signature"))


def changed_files(ctx: StageContext, records: DataFrame, paths: list[str]) -> tuple[list[str], list[str]]:
    """(files whose records differ from what bronze and quarantine hold for them (new files included),
    doc ids in bronze that those files no longer give with the same content). A touched file whose bytes
    are the same is not changed: its documents are already there, once."""
    from pyspark.sql import functions as F

    store, tables = ctx.store, ctx.tables
    new = records.select("input_file", "doc_id",
                         F.coalesce("content_hash", "reason", F.lit("")).alias("signature"))
    olds = [_signatures(store.read(name).where(F.col("input_file").isin(paths)), column)
            for name, column in ((tables.bronze, "content_hash"), (tables.quarantine, "reason"))
            if store.exists(name)]
    if not olds:
        return paths, []
    old = olds[0] if len(olds) == 1 else olds[0].unionByName(olds[1])
    keys = ["input_file", "doc_id", "signature"]
    differing = (new.withColumn("_new", F.lit(True))
                 .join(old.withColumn("_old", F.lit(True)), keys, "full_outer")
                 .where(F.col("_new").isNull() | F.col("_old").isNull()))
    changed = sorted({row["input_file"] for row in differing.select("input_file").distinct().collect()})
    retracted = []
    if changed and store.exists(tables.bronze):
        gone = (differing.where(F.col("_new").isNull() & F.col("input_file").isin(changed))
                .join(store.read(tables.bronze).select("doc_id"), "doc_id"))
        retracted = sorted({row["doc_id"] for row in gone.select("doc_id").distinct().collect()})
    return changed, retracted


# Per-document tables downstream of bronze, and the columns that point at a bronze document.
DOWNSTREAM = (("deduped", ("doc_id",)), ("duplicates", ("doc_id", "keeper_doc_id")),
              ("dedup_exact_index", ("doc_id",)), ("dedup_band_index", ("doc_id",)),
              ("dedup_signature_index", ("doc_id",)), ("quality_scores", ("doc_id",)),
              ("filtered", ("doc_id",)))


def retract(ctx: StageContext, doc_ids: list[str]) -> None:
    """Take documents whose content changed out of every downstream table (and duplicates that point at
    them as keeper), so the next incremental dedup and quality judge them again. Done before bronze is
    replaced, and idempotent, so a crash in between is repaired by the retry."""
    if not doc_ids:
        return
    store = ctx.store
    for field, columns in DOWNSTREAM:
        name = getattr(ctx.tables, field)
        if not store.exists(name):
            continue
        empty = ctx.spark.createDataFrame([], store.read(name).schema)
        for column in columns:
            store.merge(empty, name, key=["doc_id"], run_id=ctx.run_id, replace=(column, doc_ids),
                        tag=f"retract-{column}")


def _refuse_empty(ctx: StageContext, counts: dict[str | None, tuple[int, int]], records: DataFrame,
                  files: list[InputFile]) -> None:
    """Fail loud when the stage read records and kept none (unless ingest.allow_empty_output)."""
    from pyspark.sql import functions as F

    read = sum(docs for docs, _ in counts.values())
    if not read or counts.get(None, (0, 0))[0] or ctx.config.ingest.allow_empty_output:
        return
    unreadable = records.where(F.col("reason") == "unreadable_file").select("input_file", "detail")
    broken = unreadable.limit(1).collect()
    if broken and unreadable.select("input_file").distinct().count() == len(files):
        raise PolicyError(f"every one of the {len(files)} input files was unreadable (e.g. "
                          f"{broken[0]['input_file']}: {broken[0]['detail']}); check input.format "
                          "(ingest.allow_empty_output: true accepts this)")
    reasons = ", ".join(f"{reason} {docs}" for reason, (docs, _) in sorted(counts.items(), key=str))
    raise PolicyError(f"read {read} records from {len(files)} files and kept none ({reasons}); "
                      "ingest.allow_empty_output: true accepts this")


def run(ctx: StageContext) -> StageResult:
    """Long because it is the stage's outline: pick files, read, refuse empty, write by policy, record."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    config, store, tables, run_id = ctx.config, ctx.store, ctx.tables, ctx.run_id
    files = resolve_inputs(config)
    keyed = config.ingest.incremental or config.ingest.mode == "append"
    seen_before = 0
    if config.ingest.incremental:  # a retried run re-reads its own files; their writes are then skipped
        seen_before = len(files)
        files = unseen_files(files, ctx.ledger.ingested_files(), run_id)
        seen_before -= len(files)
    details: dict[str, Any] = {"files": len(files), "files_seen_before": seen_before,
                               "input_bytes": sum(f.size for f in files)}
    if not files:
        return StageResult(stage="ingest", docs_in=0, docs_out=0, details=details)
    records = _read_records(ctx, files).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        paths = [f.path for f in files]
        changed, retracted = changed_files(ctx, records, paths) if keyed else (paths, [])
        details.update(files_unchanged=len(paths) - len(changed), retracted_docs=len(retracted))
        records = records.where(F.col("input_file").isin(changed))
        counts = {row["reason"]: (int(row["docs"]), int(row["chars"] or 0)) for row in
                  records.groupBy("reason").agg(F.count(F.lit(1)).alias("docs"),
                                                F.sum("n_chars").alias("chars")).collect()}
        _refuse_empty(ctx, counts, records, [f for f in files if f.path in changed])
        bronze_rows = records.where(F.col("reason").isNull()).select(*BRONZE_COLUMNS)
        quarantine_rows = records.where(F.col("reason").isNotNull()).select(*QUARANTINE_COLUMNS)
        if keyed:
            retract(ctx, retracted)
            replace = ("input_file", changed)
            bronze = store.merge(bronze_rows, tables.bronze, key=["doc_id"], run_id=run_id, replace=replace)
            quarantine = store.merge(quarantine_rows, tables.quarantine, key=["doc_id"], run_id=run_id,
                                     replace=replace)
        else:
            bronze = store.write(bronze_rows, tables.bronze, mode="overwrite", run_id=run_id)
            quarantine = store.write(quarantine_rows, tables.quarantine, mode="overwrite", run_id=run_id)
        decisions = audit.record(ctx, audit.decisions(
            store.read(tables.quarantine).where(F.col("run_id") == run_id), "ingest", "quarantined",
            F.col("reason"), F.concat_ws(" ", F.col("detail"), F.col("input_file"),
                                         F.col("input_position").cast("string")), run_id), "ingest")
        unreadable = {row["input_file"] for row in records.where(F.col("reason") == "unreadable_file")
                      .select("input_file").distinct().collect()}
    finally:
        records.unpersist()
    if config.ingest.incremental:  # after bronze and quarantine: a crash before this re-reads the files
        readable = [(f.path, f.size, f.etag) for f in files if f.path not in unreadable]
        ctx.ledger.record_files(readable, run_id)
    kept_docs, kept_chars = counts.pop(None, (0, 0))
    drops = {reason: docs for reason, (docs, _chars) in counts.items()}
    added = kept_docs if bronze.rows_added is None or bronze.skipped else bronze.rows_added
    if added < kept_docs:  # the same doc_id reached through another path: kept once
        drops["already_in_bronze"] = kept_docs - added
    details.update(bronze_skipped=bronze.skipped, unreadable_files=len(unreadable))
    return StageResult(
        stage="ingest", docs_in=kept_docs + sum(docs for docs, _ in counts.values()),
        docs_out=added, chars_in=kept_chars, chars_out=kept_chars, drops=drops,
        tables={tables.bronze: bronze.version, tables.quarantine: quarantine.version,
                tables.decisions: decisions.version},
        details=details,
    )


STAGE = Stage("ingest", check, run)
