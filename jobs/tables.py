"""The one Delta table layer: read (optionally at a version), write (overwrite / append / replace
partitions), history. Every job goes through :class:`TableStore`.

Two backends produce the same standard Delta tables:

* ``native``: ``format("delta")`` through the delta-spark connector (clusters: Databricks, EMR, --packages).
* ``embedded``: Spark writes Parquet into a staging folder, the files are moved into the table folder and
  the ``deltalake`` package (delta-rs) commits one transaction with add/remove actions carrying sizes,
  partition values and column stats. Reads list the snapshot's files with delta-rs and hand them to
  Spark's Parquet reader. No jars beyond pyspark's own.

Atomicity: nothing is visible until the single commit; a failure before it leaves the previous version
as it was (files already moved are deleted again, and even if that clean-up cannot run they are not in
the log, so no reader sees them). Idempotence: every write records a Delta ``txn`` action
``(appId = curate/<run_id>/<tag>, version = 1)``; a retried write of the same run and tag finds it and
commits nothing.
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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import unquote

from jobs.config import TableSettings
from udfs import storage

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

WriteMode = Literal["overwrite", "append", "replace_partitions"]
WRITE_MODES: tuple[str, ...] = ("overwrite", "append", "replace_partitions")
TXN_VERSION = 1
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
STRING_STATS_MAX_CHARS = 32


class TableError(Exception):
    """A table cannot be read or written as asked (message says which table and why)."""


@dataclass(frozen=True)
class WriteResult:
    table: str
    version: int
    skipped: bool  # True when this run's write was already committed (retry)
    files_added: int = 0
    rows_added: int | None = None


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

    def history(self, path: str) -> list[TableVersion]: ...

    def version(self, path: str) -> int | None: ...


# --------------------------------------------------------------------------------------------- native


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


# ------------------------------------------------------------------------------------------- embedded


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
        from pyspark.sql.pandas.types import from_arrow_schema

        try:
            table = self._open(path, version)
        except Exception as exc:
            raise TableError(f"cannot open Delta table {path} at version {version}: {exc}") from exc
        if table is None:
            raise TableError(f"no Delta table at {path}")
        arrow_schema = table.schema().to_arrow()
        import pyarrow as pa

        spark_schema = from_arrow_schema(pa.schema(arrow_schema))
        actions = _add_actions(table)
        if "deletionVector.storageType" in actions and any(actions["deletionVector.storageType"]):
            raise TableError(f"{path} uses deletion vectors; read it with the native backend")
        relative_paths = [unquote(p) for p in actions.get("path", [])]
        if not relative_paths:
            return self.spark.createDataFrame([], spark_schema)
        root = self._uri(path)
        if storage.is_s3(root):
            root = self._mirror(root, relative_paths)
        files = [os.path.join(root, rel) for rel in relative_paths]
        frame = (
            self.spark.read.schema(spark_schema)
            .option("basePath", root)
            .parquet(*files)
        )
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
        from deltalake import Schema as DeltaSchema
        from deltalake.transaction import (
            AddAction,
            CommitProperties,
            RemoveAction,
            Transaction,
            create_table_with_add_actions,
        )
        from pyspark.sql.pandas.types import to_arrow_schema

        uri = self._uri(path)
        app_id = txn_app_id(run_id, tag)
        table = self._open(path)
        if table is not None:
            if table.transaction_version(app_id) is not None:
                return WriteResult(path, int(table.version()), skipped=True)
            existing_partitions = list(table.metadata().partition_columns)
            if mode != "overwrite" and existing_partitions != list(partition_by):
                raise TableError(
                    f"{path} is partitioned by {existing_partitions}, the write asks for {list(partition_by)}"
                )

        arrow_schema = to_arrow_schema(df.schema)
        import pyarrow as pa

        arrow_schema = pa.schema([f.with_nullable(True) for f in arrow_schema])
        delta_schema = DeltaSchema.from_arrow(arrow_schema)

        token = f"{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:12]}"
        local_table = not storage.is_s3(uri)
        staging = (os.path.join(uri, "_staging", token) if local_table
                   else os.path.join(tempfile.gettempdir(), "curate-staging", token))
        moved: list[str] = []
        try:
            writer = df.write.mode("overwrite")
            if partition_by:
                writer = writer.partitionBy(*partition_by)
            writer.parquet(staging)
            staged = self._collect_staged(staging, partition_by)
            for item in staged:
                target = storage.join(uri, item.relative_path) if not local_table else os.path.join(
                    uri, item.relative_path)
                self._place(item.local_path, target, local_table)
                moved.append(target)

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
            commit_mode = "overwrite" if mode == "overwrite" else "append"
            if mode == "replace_partitions" and table is not None:
                replaced = {tuple(sorted(item.partition_values.items())) for item in staged}
                actions += self._removals_for(table, replaced, now_ms, RemoveAction)
            properties = CommitProperties(
                custom_metadata={"userMetadata": _user_metadata(run_id, tag, mode)},
                app_transactions=[Transaction(app_id, TXN_VERSION)],
            )
            self._commit(table, uri, actions, commit_mode, delta_schema, list(partition_by), properties,
                         create_table_with_add_actions)
        except BaseException:
            self._discard(moved)
            raise
        finally:
            if local_table:
                shutil.rmtree(staging, ignore_errors=True)
                parent = os.path.dirname(staging)
                if os.path.isdir(parent) and not os.listdir(parent):
                    os.rmdir(parent)
            else:
                shutil.rmtree(staging, ignore_errors=True)

        rows = sum(int(item.stats["numRecords"]) for item in staged)
        new_version = self.version(path)
        return WriteResult(path, int(new_version if new_version is not None else 0), False, len(staged), rows)

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
                partition_by: list[str], properties: Any, create_table: Any) -> None:
        """The single point where a new version becomes visible (tests inject failures here)."""
        if table is None:
            create_table(uri, schema, actions, mode="error", partition_by=partition_by or None,
                         storage_options=self.storage_options or None, commit_properties=properties)
        else:
            table.create_write_transaction(actions, mode, schema, partition_by=partition_by or None,
                                           commit_properties=properties)

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


# ---------------------------------------------------------------------------------------- the store


def choose_backend(spark: SparkSession, settings: TableSettings,
                   storage_options: Mapping[str, str] | None = None) -> DeltaBackend:
    from jobs.spark import delta_connector_available

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

    def history(self, name: str) -> list[TableVersion]:
        return self.backend.history(self.path(name))


def open_store(spark: SparkSession, root: str, settings: TableSettings,
               storage_options: Mapping[str, str] | None = None) -> TableStore:
    return TableStore(spark, root, choose_backend(spark, settings, storage_options))


def table_uri(root: str, name: str) -> str:
    """Where a table named in the config lives: a name under ``<root>/tables``, or a path/URI as given."""
    if "://" in name or os.path.isabs(name):
        return name
    return storage.join(root, "tables", name)


def peek_table(root: str, name: str,
               storage_options: Mapping[str, str] | None = None) -> tuple[int, int | None] | None:
    """(version, rows) from the Delta log alone, no Spark: rows add up the files' numRecords statistics
    (None when a writer left them out). None when there is no table."""
    import pyarrow as pa
    from deltalake import DeltaTable

    uri = table_uri(root, name)
    uri = uri if storage.is_s3(uri) else os.path.abspath(uri)
    options = dict(storage_options or {}) or None
    if not DeltaTable.is_deltatable(uri, storage_options=options):
        return None
    table = DeltaTable(uri, storage_options=options)
    actions = pa.table(table.get_add_actions(flatten=True))
    rows = None
    if "num_records" in actions.column_names and actions.num_rows:
        counts = actions.column("num_records").to_pylist()
        rows = None if any(count is None for count in counts) else int(sum(counts))
    elif not actions.num_rows:
        rows = 0
    return int(table.version()), rows


def read_rows(root: str, name: str, storage_options: Mapping[str, str] | None = None,
              columns: Sequence[str] | None = None, equals: Mapping[str, Any] | None = None
              ) -> list[dict[str, Any]]:
    """Rows of a table read with delta-rs alone (no Spark), optionally where ``column == value``: for
    small answers (the ledger, one document's decisions). [] when the table does not exist.

    Scans single-threaded: Arrow's scan threads can still be unwinding at interpreter exit and abort
    the process ("terminate called without an active exception", apache/arrow#34314)."""
    import pyarrow.dataset as ds
    from deltalake import DeltaTable

    uri = table_uri(root, name)
    uri = uri if storage.is_s3(uri) else os.path.abspath(uri)
    options = dict(storage_options or {}) or None
    if not DeltaTable.is_deltatable(uri, storage_options=options):
        return []
    condition = None
    for column, value in (equals or {}).items():
        term = ds.field(column) == value
        condition = term if condition is None else condition & term
    dataset = DeltaTable(uri, storage_options=options).to_pyarrow_dataset()
    return dataset.to_table(columns=list(columns) if columns else None, filter=condition,
                            use_threads=False).to_pylist()
