"""delta-spark's own ``format("delta")`` reader and writer (clusters: Databricks, EMR, --packages)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobs.core.tables.base import (
    TXN_VERSION,
    TableVersion,
    WriteMode,
    WriteResult,
    _history_row,
    _user_metadata,
    txn_app_id,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


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


