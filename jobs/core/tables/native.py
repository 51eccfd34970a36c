"""delta-spark's own ``format("delta")`` reader and writer (clusters: Databricks, EMR, --packages)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from jobs.core.tables.base import (
    CONFLICT_RETRIES,
    TXN_VERSION,
    ConcurrentWriteError,
    Merge,
    TableVersion,
    WriteMode,
    WriteResult,
    _history_row,
    _user_metadata,
    txn_app_id,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def _is_conflict(exc: BaseException) -> bool:
    """delta-spark's ConcurrentAppend/ConcurrentDeleteRead/... exceptions, whichever way they surface."""
    return "Concurrent" in type(exc).__name__ or "Concurrent" in str(exc).split("\n", 1)[0]


def _in_list(column: str, values: Sequence[Any]) -> str:
    if not values:
        return "false"
    quoted = ", ".join("'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'" for value in values)
    return f"{column} IN ({quoted})"


@contextlib.contextmanager
def _txn_confs(spark: SparkSession, run_id: str, tag: str, mode: str) -> Iterator[None]:
    """Delta's idempotent-DML settings for the next commit: txnAppId/txnVersion and the commit's
    userMetadata (the DataFrame writer takes them as options, MERGE as session settings)."""
    settings = {"spark.databricks.delta.write.txnAppId": txn_app_id(run_id, tag),
                "spark.databricks.delta.write.txnVersion": str(TXN_VERSION),
                "spark.databricks.delta.commitInfo.userMetadata": _user_metadata(run_id, tag, mode)}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key in settings:
            spark.conf.unset(key)


class NativeBackend:
    """delta-spark's own reader and writer; used when its connector is on the classpath."""

    name = "native"

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def _table(self, path: str) -> Any:
        from delta.tables import DeltaTable

        return DeltaTable.forPath(self.spark, path) if DeltaTable.isDeltaTable(self.spark, path) else None

    def read(self, path: str, version: int | None = None) -> DataFrame:
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(path)

    def version(self, path: str) -> int | None:
        table = self._table(path)
        if table is None:
            return None
        return int(table.history(1).select("version").first()[0])

    def write(self, df: DataFrame, path: str, *, mode: WriteMode, partition_by: Sequence[str],
              run_id: str, tag: str) -> WriteResult:
        before = self.version(path)
        writer = (
            df.write.format("delta")
            .option("txnAppId", txn_app_id(run_id, tag))
            .option("txnVersion", TXN_VERSION)
            .option("userMetadata", _user_metadata(run_id, tag, mode))
        )
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        if mode == "replace_partitions":
            writer = writer.mode("overwrite").option("partitionOverwriteMode", "dynamic")
        else:
            writer = writer.mode(mode)
        writer.save(path)
        after = self.version(path)
        skipped = after == before
        rows = None
        if not skipped:
            metrics = self._table(path).history(1).select("operationMetrics").first()[0] or {}
            rows = int(metrics["numOutputRows"]) if "numOutputRows" in metrics else None
        return WriteResult(path, int(after), skipped, 0, rows)

    def merge(self, df: DataFrame, path: str, *, merge: Merge, partition_by: Sequence[str], run_id: str,
              tag: str) -> WriteResult:
        """One Delta MERGE: replaced rows are updated from the source or deleted, absent keys inserted.
        Delta's own conflict detection fails a MERGE whose snapshot another writer changed; it is then
        planned again, like the embedded backend does."""
        from delta.tables import DeltaTable

        for _attempt in range(CONFLICT_RETRIES):
            if self._table(path) is None:
                try:
                    return self.write(df.dropDuplicates(list(merge.key)), path, mode="append",
                                      partition_by=partition_by, run_id=run_id, tag=tag)
                except Exception as exc:
                    if not _is_conflict(exc):
                        raise
                    continue
            table = DeltaTable.forPath(self.spark, path)
            if self._txn_committed(path, run_id, tag):
                return WriteResult(path, int(self.version(path) or 0), skipped=True)
            on = " AND ".join(f"t.`{column}` <=> s.`{column}`" for column in merge.key)
            builder = table.alias("t").merge(df.dropDuplicates(list(merge.key)).alias("s"), on)
            if merge.replace_column is not None:
                replaced = _in_list(f"t.`{merge.replace_column}`", merge.replace_values)
                builder = builder.whenMatchedUpdateAll(condition=replaced)
                builder = builder.whenNotMatchedBySourceDelete(condition=replaced)
            builder = builder.whenNotMatchedInsertAll()
            try:
                with _txn_confs(self.spark, run_id, tag, "merge"):
                    builder.execute()
            except Exception as exc:
                if not _is_conflict(exc):
                    raise
                continue
            metrics = table.history(1).select("operationMetrics").first()[0] or {}
            rows = int(metrics.get("numTargetRowsInserted", 0) or 0)
            return WriteResult(path, int(self.version(path) or 0), False, 0, rows)
        raise ConcurrentWriteError(f"{path}: other writers kept committing first ({CONFLICT_RETRIES} tries)")

    def clean_uncommitted(self, path: str) -> int:
        """Nothing to do here: delta-spark's uncommitted files are VACUUM's (``curate maintain``)."""
        return 0

    def _txn_committed(self, path: str, run_id: str, tag: str) -> bool:
        """Whether a commit of this run and tag is in the table's history (its userMetadata)."""
        return any(entry.run_id == run_id and entry.tag == tag for entry in self.history(path))

    def history(self, path: str) -> list[TableVersion]:
        table = self._table(path)
        if table is None:
            return []
        rows = table.history().select("version", "timestamp", "operation", "userMetadata").collect()
        return sorted(
            (
                _history_row(int(row.version), int(row.timestamp.replace(tzinfo=dt.timezone.utc).timestamp()
                                                   * 1000), row.operation, row.userMetadata, {})
                for row in rows
            ),
            key=lambda entry: entry.version,
        )


