"""Spark writes Parquet, delta-rs (the ``deltalake`` package) commits the Delta log: no jars beyond pyspark.

A write stages Parquet files, moves them into the table folder and commits one transaction with add
actions (size, partition values, numRecords/min/max/null-count stats from the Parquet footers) and, for
overwrites and partition replacement, remove actions. Reads list the snapshot's files with delta-rs and
hand them to Spark's Parquet reader.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from jobs.core import storage
from jobs.core.faults import crash_point
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

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
STAGING = "_staging"  # per-write staging folders inside a local table (never part of a snapshot)
STRING_STATS_MAX_CHARS = 32


def _json_stat(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return None
    if isinstance(value, float) and value != value:  # NaN is not a usable bound
        return None
    return value


def parquet_file_stats(local_path: str) -> dict[str, Any]:
    """Delta ``stats`` JSON for a data file from its Parquet footer (no data pages are read).

    min/max are kept for top-level numeric, date, timestamp and short string columns (long strings are
    left out rather than truncated, so a bound is never wrong); null counts for every top-level column.
    """
    import pyarrow.parquet as pq

    metadata = pq.read_metadata(local_path)
    arrow_schema = metadata.schema.to_arrow_schema()
    top_level = {name: index for index, name in enumerate(arrow_schema.names)}
    leaf_of: dict[str, int] = {}
    for leaf in range(metadata.num_columns):
        column_path = metadata.schema.column(leaf).path
        if column_path in top_level:
            leaf_of[column_path] = leaf

    min_values: dict[str, Any] = {}
    max_values: dict[str, Any] = {}
    null_count: dict[str, int] = {}
    for name in arrow_schema.names:
        leaf = leaf_of.get(name)
        if leaf is None:  # nested column: no top-level stats
            continue
        lows, highs, nulls, complete = [], [], 0, True
        for group in range(metadata.num_row_groups):
            chunk_stats = metadata.row_group(group).column(leaf).statistics
            if chunk_stats is None:
                complete = False
                break
            nulls += chunk_stats.null_count or 0
            if chunk_stats.has_min_max:
                lows.append(chunk_stats.min)
                highs.append(chunk_stats.max)
        if not complete:
            continue
        null_count[name] = nulls
        if not lows:
            continue
        low, high = _json_stat(min(lows)), _json_stat(max(highs))
        if isinstance(low, bool) or low is None or high is None:
            continue
        if isinstance(low, str) and (len(low) > STRING_STATS_MAX_CHARS or len(high) > STRING_STATS_MAX_CHARS):
            continue
        min_values[name], max_values[name] = low, high
    return {"numRecords": metadata.num_rows, "minValues": min_values, "maxValues": max_values,
            "nullCount": null_count}


def _partition_values(relative_path: str, partition_by: Sequence[str]) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for part in relative_path.split("/")[:-1]:
        key, sep, raw = part.partition("=")
        if sep and key in partition_by:
            value = unquote(raw)
            values[key] = None if value == HIVE_NULL else value
    missing = [column for column in partition_by if column not in values]
    if missing:
        raise TableError(f"data file {relative_path} lacks partition folders for {missing}")
    return values


def _add_actions(table: Any) -> dict[str, list[Any]]:
    import pyarrow as pa

    return pa.table(table.get_add_actions(flatten=True)).to_pydict()


@dataclass
class _StagedFile:
    relative_path: str  # physical, as Spark escaped it ("domain=a%3Ab/part-....parquet")
    local_path: str
    size: int
    partition_values: dict[str, str | None]
    stats: dict[str, Any]


def _delta_schema(df: DataFrame) -> Any:
    """The frame's schema as a Delta schema, every column nullable (as Spark's own Delta writer does)."""
    import pyarrow as pa
    from deltalake import Schema as DeltaSchema
    from pyspark.sql.pandas.types import to_arrow_schema

    return DeltaSchema.from_arrow(pa.schema([f.with_nullable(True) for f in to_arrow_schema(df.schema)]))


def _remove_staging(staging: str, local_table: bool) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    parent = os.path.dirname(staging)
    if local_table and os.path.isdir(parent) and not os.listdir(parent):
        with contextlib.suppress(OSError):  # another writer may have staged meanwhile
            os.rmdir(parent)


def _ever_added(uri: str, storage_options: Mapping[str, str]) -> set[str]:
    """Every data file path (relative, decoded) any commit or checkpoint of the log has added."""
    import pyarrow.parquet as pq

    log = storage.join(uri, "_delta_log")
    added: set[str] = set()
    if not storage.exists(log, storage_options):
        return added
    for info in storage.list_files(log, storage_options):
        if info.path.endswith(".json"):
            for line in storage.read_bytes(info.path, storage_options).splitlines():
                action = json.loads(line) if line.strip() else {}
                if "add" in action:
                    added.add(unquote(action["add"]["path"]))
        elif info.path.endswith(".parquet"):  # checkpoints
            with storage.open_input(info.path, storage_options) as handle:
                table = pq.read_table(handle, columns=["add"])
            added.update(unquote(row["path"]) for row in table.column("add").to_pylist() if row)
    return added


class _TableExists(Exception):
    """Creating a table found one created meanwhile by another writer."""


class EmbeddedBackend:
    """Spark writes Parquet; delta-rs commits the Delta log. Works with pyspark alone."""

    name = "embedded"

    def __init__(self, spark: SparkSession, storage_options: Mapping[str, str] | None = None,
                 cache_dir: str | None = None) -> None:
        self.spark = spark
        self.storage_options = dict(storage_options or {})
        self.cache_dir = cache_dir or os.path.join(tempfile.gettempdir(), "curate-s3-cache")

    # -- helpers ---------------------------------------------------------------------------------

    def _uri(self, path: str) -> str:
        return path if storage.is_s3(path) else os.path.abspath(path)

    def _open(self, path: str, version: int | None = None) -> Any:
        from deltalake import DeltaTable

        uri = self._uri(path)
        if not DeltaTable.is_deltatable(uri, storage_options=self.storage_options or None):
            return None
        return DeltaTable(uri, version=version, storage_options=self.storage_options or None)

    def version(self, path: str) -> int | None:
        table = self._open(path)
        return None if table is None else int(table.version())

    # -- read ------------------------------------------------------------------------------------

    def read(self, path: str, version: int | None = None) -> DataFrame:
        table = self._open_or_fail(path, version)
        root, relative_paths, spark_schema = self._snapshot(path, table)
        return self._read_files(root, relative_paths, spark_schema)

    def _open_or_fail(self, path: str, version: int | None = None) -> Any:
        try:
            table = self._open(path, version)
        except Exception as exc:
            raise TableError(f"cannot open Delta table {path} at version {version}: {exc}") from exc
        if table is None:
            raise TableError(f"no Delta table at {path}")
        return table

    def _snapshot(self, path: str, table: Any) -> tuple[str, list[str], Any]:
        """(local root to read from, the snapshot's data files relative to it, the Spark schema)."""
        import pyarrow as pa
        from pyspark.sql.pandas.types import from_arrow_schema

        spark_schema = from_arrow_schema(pa.schema(table.schema().to_arrow()))
        actions = _add_actions(table)
        if "deletionVector.storageType" in actions and any(actions["deletionVector.storageType"]):
            raise TableError(f"{path} uses deletion vectors; read it with the native backend")
        relative_paths = [unquote(p) for p in actions.get("path", [])]
        root = self._uri(path)
        if storage.is_s3(root) and relative_paths:
            root = self._mirror(root, relative_paths)
        return root, relative_paths, spark_schema

    def _read_files(self, root: str, relative_paths: Sequence[str], spark_schema: Any) -> DataFrame:
        if not relative_paths:
            return self.spark.createDataFrame([], spark_schema)
        files = [os.path.join(root, rel) for rel in relative_paths]
        frame = self.spark.read.schema(spark_schema).option("basePath", root).parquet(*files)
        return frame.select(*spark_schema.fieldNames())

    def _mirror(self, root_uri: str, relative_paths: list[str]) -> str:
        """Spark cannot read s3:// without S3A jars: keep a local copy of the snapshot's files."""
        bucket, prefix = storage.split_s3(root_uri)
        local_root = os.path.join(self.cache_dir, bucket, prefix)
        for rel in relative_paths:
            local = os.path.join(local_root, rel)
            if not os.path.exists(local):  # data files are immutable once committed
                storage.download(storage.join(root_uri, rel), local + ".part", self.storage_options)
                os.replace(local + ".part", local)
        return local_root

    # -- write -----------------------------------------------------------------------------------

    def write(self, df: DataFrame, path: str, *, mode: WriteMode, partition_by: Sequence[str],
              run_id: str, tag: str) -> WriteResult:
        table = self._open(path)
        if table is not None:
            if table.transaction_version(txn_app_id(run_id, tag)) is not None:
                return WriteResult(path, int(table.version()), skipped=True)
            existing_partitions = list(table.metadata().partition_columns)
            if mode != "overwrite" and existing_partitions != list(partition_by):
                raise TableError(
                    f"{path} is partitioned by {existing_partitions}, the write asks for {list(partition_by)}"
                )
        # A blind append may land on any later version; anything that removes files must not (it would
        # leave a concurrent writer's rows in place beside its own): no commit retries for those.
        return self._transact(path, table, df, partition_by, mode, run_id, tag,
                              commit_retries=None if mode == "append" else 0)

    def merge(self, df: DataFrame, path: str, *, merge: Merge, partition_by: Sequence[str], run_id: str,
              tag: str) -> WriteResult:
        """Keyed insert (see :class:`Merge`), planned on one snapshot and committed on exactly the next
        version; when another writer got there first, planned again on the newer snapshot."""
        from pyspark.sql import functions as F

        key = list(merge.key)
        for _attempt in range(CONFLICT_RETRIES):
            table = self._open(path)
            if table is None:
                try:
                    return self._transact(path, None, df.dropDuplicates(key), partition_by, "overwrite",
                                          run_id, tag, commit_retries=0)
                except ConcurrentWriteError:
                    continue
            if table.transaction_version(txn_app_id(run_id, tag)) is not None:
                return WriteResult(path, int(table.version()), skipped=True)
            root, relative_paths, spark_schema = self._snapshot(path, table)
            current = self._read_files(root, relative_paths, spark_schema)
            doomed: list[str] = []
            survivors = None
            if merge.replace_column is not None:
                values = list(merge.replace_values)
                replaced = F.coalesce(F.col(merge.replace_column).isin(values), F.lit(False))
                doomed = self._files_where(current, replaced, root, relative_paths)
                survivors = self._read_files(root, doomed, spark_schema).where(~replaced)
                current = current.where(~replaced)
            rows = df.join(current.select(*key), key, "left_anti").dropDuplicates(key)
            rows = rows.select(*spark_schema.fieldNames())
            carried = 0  # rows of rewritten data files that stay: not inserted by this write
            if survivors is not None:
                carried = survivors.count() if doomed else 0
                rows = rows.unionByName(survivors)
            try:
                result = self._transact(path, table, rows, partition_by, "append", run_id, tag,
                                        commit_retries=0, removed=doomed)
            except ConcurrentWriteError:
                continue
            return replace(result, rows_added=(result.rows_added or 0) - carried)
        raise ConcurrentWriteError(f"{path}: other writers kept committing first ({CONFLICT_RETRIES} tries); "
                                   "is another run writing to this output root?")

    def _files_where(self, frame: DataFrame, condition: Any, root: str,
                     relative_paths: Sequence[str]) -> list[str]:
        """The snapshot's data files (relative paths) holding a row that meets ``condition``."""
        from pyspark.sql import functions as F

        by_location = {os.path.normpath(os.path.join(root, rel)): rel for rel in relative_paths}
        found = frame.where(condition).select(F.input_file_name().alias("file")).distinct().collect()
        doomed = []
        for row in found:
            location = unquote(row["file"])
            location = location.removeprefix("file://").removeprefix("file:")
            rel = by_location.get(os.path.normpath(location))
            if rel is None:
                raise TableError(f"cannot map data file {row['file']} back to the table at {root}")
            doomed.append(rel)
        return sorted(doomed)

    def _transact(self, path: str, table: Any, df: DataFrame, partition_by: Sequence[str], mode: WriteMode,
                  run_id: str, tag: str, commit_retries: int | None,
                  removed: Sequence[str] = ()) -> WriteResult:
        """Stage ``df`` as Parquet, move the files into the table and commit them (with removes of the
        ``removed`` files) in one transaction; nothing is visible before the commit. A change that adds
        no row and removes no file is not committed."""
        from deltalake.exceptions import CommitFailedError
        from deltalake.transaction import CommitProperties, Transaction

        uri = self._uri(path)
        local_table = not storage.is_s3(uri)
        token = f"{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:12]}"
        staging = (os.path.join(uri, STAGING, token) if local_table
                   else os.path.join(tempfile.gettempdir(), "curate-staging", token))
        moved: list[str] = []
        try:
            staged = self._stage(df, staging, partition_by)
            rows = sum(int(item.stats["numRecords"]) for item in staged)
            if table is not None and mode != "overwrite" and rows == 0 and not removed:
                return WriteResult(path, int(table.version()), False, 0, 0)
            for item in staged:
                target = os.path.join(uri, item.relative_path) if local_table else storage.join(
                    uri, item.relative_path)
                self._place(item.local_path, target, local_table)
                moved.append(target)
            properties = CommitProperties(
                custom_metadata={"userMetadata": _user_metadata(run_id, tag, mode)},
                app_transactions=[Transaction(txn_app_id(run_id, tag), TXN_VERSION)],
                max_commit_retries=commit_retries,
            )
            actions = self._actions(table, staged, mode) + self._removals_of(table, removed)
            crash_point(f"commit:{os.path.basename(uri.rstrip('/'))}:before")
            self._commit(table, uri, actions, "overwrite" if mode == "overwrite" else "append",
                         _delta_schema(df), list(partition_by), properties)
            crash_point(f"commit:{os.path.basename(uri.rstrip('/'))}:after")
        except (CommitFailedError, _TableExists) as exc:
            self._discard(moved)
            raise ConcurrentWriteError(f"{path}: another writer committed first ({exc})") from exc
        except BaseException:
            self._discard(moved)
            raise
        finally:
            _remove_staging(staging, local_table)
        new_version = self.version(path)
        return WriteResult(path, int(new_version if new_version is not None else 0), False, len(staged), rows)

    def _stage(self, df: DataFrame, staging: str, partition_by: Sequence[str]) -> list[_StagedFile]:
        """Spark writes the frame as Parquet into ``staging``; the files with their sizes and stats."""
        writer = df.write.mode("overwrite")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.parquet(staging)
        return self._collect_staged(staging, partition_by)

    def _actions(self, table: Any, staged: list[_StagedFile], mode: WriteMode) -> list[Any]:
        """Add actions for the staged files; remove actions for the partitions a replace rewrites."""
        from deltalake.transaction import AddAction, RemoveAction

        now_ms = int(time.time() * 1000)
        actions: list[Any] = [
            AddAction(
                path=item.relative_path,  # delta-rs percent-encodes it in the log
                size=item.size,
                partition_values=item.partition_values,
                modification_time=now_ms,
                data_change=True,
                stats=json.dumps(item.stats, separators=(",", ":")),
            )
            for item in staged
        ]
        if mode == "replace_partitions" and table is not None:
            replaced = {tuple(sorted(item.partition_values.items())) for item in staged}
            actions += self._removals_for(table, replaced, now_ms, RemoveAction)
        return actions

    def _collect_staged(self, staging: str, partition_by: Sequence[str]) -> list[_StagedFile]:
        staged = []
        for folder, _dirs, names in os.walk(staging):
            for name in sorted(names):
                if not name.endswith(".parquet") or name.startswith((".", "_")):
                    continue
                local_path = os.path.join(folder, name)
                relative = os.path.relpath(local_path, staging).replace(os.sep, "/")
                staged.append(
                    _StagedFile(relative, local_path, os.path.getsize(local_path),
                                _partition_values(relative, partition_by), parquet_file_stats(local_path))
                )
        return sorted(staged, key=lambda item: item.relative_path)

    def _place(self, local_path: str, target: str, local_table: bool) -> None:
        if local_table:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(local_path, target)
        else:
            storage.upload(local_path, target, self.storage_options)

    def _discard(self, written: list[str]) -> None:
        for target in written:
            with contextlib.suppress(Exception):  # best effort: uncommitted files are invisible anyway
                storage.delete(target, self.storage_options)

    @staticmethod
    def _removals_of(table: Any, relative_paths: Sequence[str]) -> list[Any]:
        """Remove actions for these data files of the table's current snapshot."""
        from deltalake.transaction import RemoveAction

        if not relative_paths:
            return []
        wanted = set(relative_paths)
        current = _add_actions(table)
        columns = list(table.metadata().partition_columns)
        now_ms = int(time.time() * 1000)
        removals = []
        for index, raw in enumerate(current.get("path", [])):
            if unquote(raw) in wanted:
                values = {column: current[f"partition.{column}"][index] for column in columns}
                removals.append(RemoveAction(
                    path=unquote(raw), data_change=True, deletion_timestamp=now_ms,
                    size=int(current["size_bytes"][index]),
                    partition_values={k: (None if v is None else str(v)) for k, v in values.items()}))
        return removals

    @staticmethod
    def _removals_for(table: Any, replaced: set[tuple], now_ms: int, remove_action: Any) -> list[Any]:
        current = _add_actions(table)
        columns = list(table.metadata().partition_columns)
        removals = []
        for index, path in enumerate(current.get("path", [])):
            values = {column: current[f"partition.{column}"][index] for column in columns}
            key = tuple(sorted((column, None if value is None else str(value))
                               for column, value in values.items()))
            if key in replaced:
                removals.append(
                    remove_action(
                        path=unquote(path),
                        data_change=True,
                        deletion_timestamp=now_ms,
                        size=int(current["size_bytes"][index]),
                        partition_values={k: (None if v is None else str(v)) for k, v in values.items()},
                    )
                )
        return removals

    def _commit(self, table: Any, uri: str, actions: list[Any], mode: str, schema: Any,
                partition_by: list[str], properties: Any) -> None:
        """The single point where a new version becomes visible (tests inject failures here)."""
        from deltalake.transaction import create_table_with_add_actions

        if table is None:
            try:
                create_table_with_add_actions(uri, schema, actions, mode="error",
                                              partition_by=partition_by or None,
                                              storage_options=self.storage_options or None,
                                              commit_properties=properties)
            except Exception as exc:  # two writers creating the same table: the second one loses
                from deltalake import DeltaTable

                if DeltaTable.is_deltatable(uri, storage_options=self.storage_options or None):
                    raise _TableExists(str(exc)) from exc
                raise
        else:
            table.create_write_transaction(actions, mode, schema, partition_by=partition_by or None,
                                           commit_properties=properties)

    # -- clean-up ----------------------------------------------------------------------------------

    def clean_uncommitted(self, path: str) -> int:
        """Delete staging folders and data files that no commit of the log ever added: what a write killed
        between moving its files into place and committing leaves behind."""
        uri = self._uri(path)
        removed = 0
        if not storage.is_s3(uri):
            staging = os.path.join(uri, STAGING)
            if os.path.isdir(staging):
                removed += sum(len(names) for _, _, names in os.walk(staging))
                shutil.rmtree(staging, ignore_errors=True)
        if not storage.exists(uri, self.storage_options):
            return removed
        referenced = _ever_added(uri, self.storage_options)
        for info in storage.list_files(uri, self.storage_options):
            relative = info.path[len(uri):].lstrip("/")
            if (relative.endswith(".parquet") and relative not in referenced
                    and not relative.startswith(("_delta_log/", STAGING + "/"))):
                storage.delete(info.path, self.storage_options)
                removed += 1
        return removed

    # -- maintenance -------------------------------------------------------------------------------

    def maintain(self, path: str, *, retention_hours: float, run_id: str) -> Maintenance:
        """delta-rs's compaction (bin-packing small files, one commit) then a full VACUUM: every file that
        no version younger than ``retention_hours`` references, as Delta's own VACUUM does."""
        from deltalake.transaction import CommitProperties

        table = self._open_or_fail(path)
        properties = CommitProperties(custom_metadata={"userMetadata": _user_metadata(run_id, "maintain",
                                                                                      "optimize")})
        metrics = table.optimize.compact(commit_properties=properties)
        table = self._open_or_fail(path)
        vacuumed = table.vacuum(retention_hours=int(retention_hours), dry_run=False,
                                enforce_retention_duration=False, full=True)
        return Maintenance(path, files_compacted=int(metrics.get("numFilesRemoved", 0)),
                           files_written=int(metrics.get("numFilesAdded", 0)), files_vacuumed=len(vacuumed),
                           version=int(self._open_or_fail(path).version()))

    # -- history -----------------------------------------------------------------------------------

    def history(self, path: str) -> list[TableVersion]:
        table = self._open(path)
        if table is None:
            return []
        rows = []
        for commit in table.history():
            extra = {k: v for k, v in commit.items()
                     if k not in ("version", "timestamp", "operation", "userMetadata")}
            rows.append(_history_row(int(commit["version"]), int(commit.get("timestamp") or 0),
                                     str(commit.get("operation", "")), commit.get("userMetadata"), extra))
        return sorted(rows, key=lambda entry: entry.version)


