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
    Maintenance,
    Merge,
    TableError,
    TableVersion,
    WriteMode,
    WriteResult,
    _history_row,
    _user_metadata,
    txn_app_id,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


# delta-spark's DeltaConcurrentModificationException family (optimistic-concurrency conflicts).
CONFLICT_MARKERS = ("Concurrent", "MetadataChangedException", "ProtocolChangedException")


def _is_conflict(exc: BaseException) -> bool:
    """A Delta commit conflict, whether it surfaces as delta's Python exception or as a Py4JJavaError."""
    first_lines = f"{type(exc).__name__} {' '.join(str(exc).splitlines()[:2])}"
    return any(marker in first_lines for marker in CONFLICT_MARKERS)


def _in_list(column: str, values: Sequence[Any]) -> str:
    if not values:
        return "false"
    quoted = ", ".join("'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'" for value in values)
    return f"{column} IN ({quoted})"


@contextlib.contextmanager
def _txn_confs(spark: SparkSession, run_id: str, tag: str, mode: str,
               idempotent: bool = True) -> Iterator[None]:
    """Delta's idempotent-DML settings for the next commit: txnAppId/txnVersion and the commit's
    userMetadata (the DataFrame writer takes them as options, MERGE and OPTIMIZE as session settings)."""
    settings = {"spark.databricks.delta.commitInfo.userMetadata": _user_metadata(run_id, tag, mode)}
    if idempotent:
        settings["spark.databricks.delta.write.txnAppId"] = txn_app_id(run_id, tag)
        settings["spark.databricks.delta.write.txnVersion"] = str(TXN_VERSION)
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
        if self._table(path) is None:
            raise TableError(f"no Delta table at {path}")
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(path)

    def version(self, path: str) -> int | None:
        table = self._table(path)
        if table is None:
            return None
        return int(table.history(1).select("version").first()[0])

    def _partition_columns(self, path: str) -> list[str]:
        return list(self.spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()["partitionColumns"])

    def write(self, df: DataFrame, path: str, *, mode: WriteMode, partition_by: Sequence[str],
              run_id: str, tag: str) -> WriteResult:
        before = self.version(path)
        if before is not None and mode != "overwrite":
            existing_partitions = self._partition_columns(path)
            if existing_partitions != list(partition_by):
                raise TableError(
                    f"{path} is partitioned by {existing_partitions}, the write asks for {list(partition_by)}"
                )
        writer = self._writer(df, partition_by, run_id, tag, mode)
        if mode == "replace_partitions":
            writer = writer.mode("overwrite").option("partitionOverwriteMode", "dynamic")
        else:
            writer = writer.mode(mode)
        if mode == "overwrite":
            writer = writer.option("overwriteSchema", "true")
        try:
            writer.save(path)
        except Exception as exc:
            if _is_conflict(exc):  # an overwrite never lands beside a concurrent writer's rows
                raise ConcurrentWriteError(f"{path}: another writer committed first "
                                           f"({str(exc).splitlines()[0][:200]})") from exc
            raise
        after = self.version(path)
        skipped = after == before
        rows = None
        if not skipped:
            metrics = self._last_metrics(path)
            rows = int(metrics["numOutputRows"]) if "numOutputRows" in metrics else None
        return WriteResult(path, int(after), skipped, 0, rows)

    @staticmethod
    def _writer(df: DataFrame, partition_by: Sequence[str], run_id: str, tag: str, mode: str) -> Any:
        """A Delta writer that records this run's txn (idempotent retries) and userMetadata."""
        writer = (df.write.format("delta").option("txnAppId", txn_app_id(run_id, tag))
                  .option("txnVersion", TXN_VERSION)
                  .option("userMetadata", _user_metadata(run_id, tag, mode)))
        return writer.partitionBy(*partition_by) if partition_by else writer

    def _last_metrics(self, path: str) -> dict[str, str]:
        """operationMetrics of the table's latest commit."""
        return self._table(path).history(1).select("operationMetrics").first()[0] or {}

    def merge(self, df: DataFrame, path: str, *, merge: Merge, partition_by: Sequence[str], run_id: str,
              tag: str) -> WriteResult:
        """One Delta MERGE: replaced rows are updated from the source or deleted, absent keys inserted.
        Delta's own conflict detection fails a MERGE whose snapshot another writer changed; it is then
        planned again, like the embedded backend does."""
        from delta.tables import DeltaTable

        for _attempt in range(CONFLICT_RETRIES):
            if self._table(path) is None:
                try:  # create it; a writer that created it meanwhile makes this fail, and we re-plan
                    return self._create(df.dropDuplicates(list(merge.key)), path, partition_by, run_id, tag)
                except Exception as exc:
                    if not (_is_conflict(exc) or self._table(path) is not None):
                        raise
                    continue
            table = DeltaTable.forPath(self.spark, path)
            if self._txn_committed(path, run_id, tag):
                return WriteResult(path, int(self.version(path) or 0), skipped=True)
            source = df.dropDuplicates(list(merge.key))
            if merge.replace_column is None and self._nothing_new(source, table.toDF(), merge.key):
                return WriteResult(path, int(self.version(path) or 0), False, 0, 0)  # no empty commit
            on = " AND ".join(f"t.`{column}` <=> s.`{column}`" for column in merge.key)
            builder = table.alias("t").merge(source.alias("s"), on)
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
            rows = int(self._last_metrics(path).get("numTargetRowsInserted", 0) or 0)
            return WriteResult(path, int(self.version(path) or 0), False, 0, rows)
        raise ConcurrentWriteError(f"{path}: other writers kept committing first ({CONFLICT_RETRIES} tries)")

    def _create(self, df: DataFrame, path: str, partition_by: Sequence[str], run_id: str,
                tag: str) -> WriteResult:
        """A new table, never a blind append: mode ``error`` fails if another writer created it first."""
        self._writer(df, partition_by, run_id, tag, "merge").mode("error").save(path)
        rows = int(self._last_metrics(path).get("numOutputRows", 0))
        return WriteResult(path, int(self.version(path) or 0), False, 0, rows)

    @staticmethod
    def _nothing_new(source: DataFrame, target: DataFrame, key: Sequence[str]) -> bool:
        """Whether every source key is in the target already (compared null-safely, as the MERGE does)."""
        condition = [source[column].eqNullSafe(target[column]) for column in key]
        return source.join(target, condition, "left_anti").isEmpty()

    def clean_uncommitted(self, path: str) -> int:
        """Nothing to do here: delta-spark's uncommitted files are VACUUM's (``curate maintain``)."""
        return 0

    def maintain(self, path: str, *, retention_hours: float, run_id: str) -> Maintenance:
        """OPTIMIZE (bin-packing small files) then VACUUM of files unreferenced for ``retention_hours``."""
        from delta.tables import DeltaTable

        table = DeltaTable.forPath(self.spark, path)
        with _txn_confs(self.spark, run_id, "maintain", "optimize", idempotent=False):
            metrics = table.optimize().executeCompaction().first()["metrics"]
        files_before = self._data_files_stored(path)
        # Delta refuses a retention under its default 7 days unless told this is deliberate.
        check = "spark.databricks.delta.retentionDurationCheck.enabled"
        previous = self.spark.conf.get(check, "true")
        self.spark.conf.set(check, "false")
        try:
            table.vacuum(retention_hours)
        finally:
            self.spark.conf.set(check, previous)
        return Maintenance(path, files_compacted=int(metrics["numFilesRemoved"]),
                           files_written=int(metrics["numFilesAdded"]),
                           files_vacuumed=files_before - self._data_files_stored(path),
                           version=int(self.version(path) or 0))

    def _data_files_stored(self, path: str) -> int:
        """Data files under the table folder (any filesystem Hadoop reaches: file, s3a, ...)."""
        jvm = self.spark.sparkContext._jvm  # type: ignore[attr-defined]
        folder = jvm.org.apache.hadoop.fs.Path(path)
        hadoop = self.spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
        files = folder.getFileSystem(hadoop).listFiles(folder, True)
        count = 0
        while files.hasNext():
            name = files.next().getPath().toString()
            count += name.endswith(".parquet") and "/_delta_log/" not in name
        return count

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


