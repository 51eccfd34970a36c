"""What every Delta backend promises: the write modes, results, history rows and the txn id recipe."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from jobs.core import storage

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

WriteMode = Literal["overwrite", "append", "replace_partitions"]
WRITE_MODES: tuple[str, ...] = ("overwrite", "append", "replace_partitions")
TXN_VERSION = 1


CONFLICT_RETRIES = 5  # a keyed write re-plans on a newer snapshot this often before it gives up


class TableError(Exception):
    """A table cannot be read or written as asked (message says which table and why)."""


class ConcurrentWriteError(TableError):
    """Another writer committed to the table first, and re-planning did not get through either."""


@dataclass(frozen=True)
class Merge:
    """A keyed write: rows whose ``replace_column`` is in ``replace_values`` are deleted, then every source
    row whose ``key`` is not among the surviving rows is inserted, in one commit. So a retried or a
    concurrent write can never add a key twice, and re-reading an input replaces what it gave before."""

    key: tuple[str, ...]
    replace_column: str | None = None
    replace_values: tuple[Any, ...] = ()


@dataclass(frozen=True)
class WriteResult:
    table: str
    version: int
    skipped: bool  # True when this run's write was already committed (retry)
    files_added: int = 0
    rows_added: int | None = None


@dataclass(frozen=True)
class Maintenance:
    """What one table's maintenance did: small files compacted into fewer, unreferenced files deleted."""

    table: str
    files_compacted: int
    files_written: int
    files_vacuumed: int
    version: int


@dataclass(frozen=True)
class TableVersion:
    version: int
    timestamp: dt.datetime
    operation: str
    run_id: str | None
    tag: str | None
    metadata: dict[str, Any] = field(default_factory=dict)


def txn_app_id(run_id: str, tag: str) -> str:
    return f"curate/{run_id}/{tag}"


def _user_metadata(run_id: str, tag: str, mode: str) -> str:
    return json.dumps({"run_id": run_id, "tag": tag, "mode": mode}, sort_keys=True)


def _history_row(version: int, timestamp_ms: int, operation: str, user_metadata: str | None,
                 extra: dict[str, Any]) -> TableVersion:
    parsed: dict[str, Any] = {}
    if user_metadata:
        try:
            parsed = json.loads(user_metadata)
        except ValueError:
            parsed = {}
    return TableVersion(
        version=version,
        timestamp=dt.datetime.fromtimestamp(timestamp_ms / 1000, tz=dt.timezone.utc),
        operation=operation,
        run_id=parsed.get("run_id"),
        tag=parsed.get("tag"),
        metadata=extra,
    )


class DeltaBackend(Protocol):
    name: str

    def read(self, path: str, version: int | None = None) -> DataFrame: ...

    def write(self, df: DataFrame, path: str, *, mode: WriteMode, partition_by: Sequence[str],
              run_id: str, tag: str) -> WriteResult: ...

    def merge(self, df: DataFrame, path: str, *, merge: Merge, partition_by: Sequence[str], run_id: str,
              tag: str) -> WriteResult: ...

    def clean_uncommitted(self, path: str) -> int: ...

    def maintain(self, path: str, *, retention_hours: float, run_id: str) -> Maintenance: ...

    def history(self, path: str) -> list[TableVersion]: ...

    def version(self, path: str) -> int | None: ...


def table_uri(root: str, name: str) -> str:
    """Where a table named in the config lives: a name under ``<root>/tables``, or a path/URI as given.
    Local paths are made absolute: delta-spark's ``delta.`path``` SQL only takes absolute ones."""
    if "://" in name or os.path.isabs(name):
        return name
    if "://" not in root:
        root = os.path.abspath(root)
    return storage.join(root, "tables", name)
