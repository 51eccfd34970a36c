"""Spark-free reads straight from a table's Delta log (delta-rs): the dry run, explain, report, the ledger
before Spark starts."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from jobs.core import storage
from jobs.core.tables.base import table_uri


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

