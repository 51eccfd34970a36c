"""Named tables under ``<output.root>/tables`` on the backend the session supports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from jobs.core.config import TableSettings
from jobs.core.tables.base import (
    WRITE_MODES,
    DeltaBackend,
    Maintenance,
    Merge,
    TableError,
    TableVersion,
    WriteMode,
    WriteResult,
    table_uri,
)
from jobs.core.tables.embedded import EmbeddedBackend
from jobs.core.tables.native import NativeBackend

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def choose_backend(spark: SparkSession, settings: TableSettings,
                   storage_options: Mapping[str, str] | None = None) -> DeltaBackend:
    from jobs.core.spark import delta_connector_available

    wanted = settings.backend
    if wanted == "auto":
        wanted = "native" if delta_connector_available(spark) else "embedded"
    if wanted == "native":
        if not delta_connector_available(spark):
            raise TableError(
                "tables.backend is 'native' but the delta-spark connector is not on the classpath "
                "(spark-submit --packages io.delta:delta-spark_2.13:4.0.0 or use backend 'embedded')"
            )
        return NativeBackend(spark)
    return EmbeddedBackend(spark, storage_options)


class TableStore:
    """Named tables under ``<output.root>/tables``; full URIs are accepted as names too."""

    def __init__(self, spark: SparkSession, root: str, backend: DeltaBackend) -> None:
        self.spark = spark
        self.root = root
        self.backend = backend

    def path(self, name: str) -> str:
        return table_uri(self.root, name)

    def exists(self, name: str) -> bool:
        return self.backend.version(self.path(name)) is not None

    def version(self, name: str) -> int | None:
        return self.backend.version(self.path(name))

    def read(self, name: str, version: int | None = None) -> DataFrame:
        return self.backend.read(self.path(name), version)

    def write(self, df: DataFrame, name: str, *, mode: WriteMode, run_id: str,
              partition_by: Sequence[str] = (), tag: str | None = None) -> WriteResult:
        if mode not in WRITE_MODES:
            raise TableError(f"unknown write mode {mode!r}; expected one of {WRITE_MODES}")
        if mode == "replace_partitions" and not partition_by:
            raise TableError(f"replace_partitions on {name} needs partition columns")
        return self.backend.write(df, self.path(name), mode=mode, partition_by=list(partition_by),
                                  run_id=run_id, tag=tag or name)

    def merge(self, df: DataFrame, name: str, *, key: Sequence[str], run_id: str,
              replace: tuple[str, Sequence[Any]] | None = None, partition_by: Sequence[str] = (),
              tag: str | None = None) -> WriteResult:
        """Insert the rows whose ``key`` the table lacks (after deleting the rows whose column ``replace[0]``
        is in ``replace[1]``), atomically: see :class:`Merge`. Idempotent per (run, tag) like ``write``."""
        column, values = replace if replace is not None else (None, ())
        spec = Merge(tuple(key), column, tuple(values))
        return self.backend.merge(df, self.path(name), merge=spec, partition_by=list(partition_by),
                                  run_id=run_id, tag=tag or name)

    def clean_uncommitted(self, names: Sequence[str]) -> int:
        """Remove files that writes killed before their commit left in these tables (call it only while
        holding the run lock: a live writer's staged files look the same). Returns how many."""
        return sum(self.backend.clean_uncommitted(self.path(name)) for name in dict.fromkeys(names))

    def maintain(self, name: str, *, retention_hours: float, run_id: str) -> Maintenance:
        return self.backend.maintain(self.path(name), retention_hours=retention_hours, run_id=run_id)

    def history(self, name: str) -> list[TableVersion]:
        return self.backend.history(self.path(name))


def open_store(spark: SparkSession, root: str, settings: TableSettings,
               storage_options: Mapping[str, str] | None = None) -> TableStore:
    return TableStore(spark, root, choose_backend(spark, settings, storage_options))



