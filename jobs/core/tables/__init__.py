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

from jobs.core.tables.base import (
    WRITE_MODES,
    ConcurrentWriteError,
    DeltaBackend,
    Maintenance,
    Merge,
    TableError,
    TableVersion,
    WriteMode,
    WriteResult,
    table_uri,
    txn_app_id,
)
from jobs.core.tables.embedded import EmbeddedBackend, parquet_file_stats
from jobs.core.tables.log import peek_table, read_rows
from jobs.core.tables.native import NativeBackend
from jobs.core.tables.store import TableStore, choose_backend, open_store

__all__ = [
    "WRITE_MODES",
    "ConcurrentWriteError",
    "DeltaBackend",
    "EmbeddedBackend",
    "Maintenance",
    "Merge",
    "NativeBackend",
    "TableError",
    "TableStore",
    "TableVersion",
    "WriteMode",
    "WriteResult",
    "choose_backend",
    "open_store",
    "parquet_file_stats",
    "peek_table",
    "read_rows",
    "table_uri",
    "txn_app_id",
]
