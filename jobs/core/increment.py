"""What an incremental stage has to judge: the rows of its input table that no earlier run decided.

Only the decided tables' ids are read to find them; the input's columns (text) are read only from the
commits of runs that still have undecided rows (file skipping on ``run_id``), so a night reads what it adds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def undecided(rows: DataFrame, decided: Sequence[DataFrame], run_id: str) -> tuple[DataFrame, DataFrame]:
    """(``rows`` restricted to the runs with undecided rows, the undecided rows themselves).

    ``decided``: frames with ``doc_id`` and ``run_id`` (the deciding run); rows this run decided count as
    undecided, so a retried run judges its own documents again. The first frame does not read the decided
    tables: what a stage computes from it stays valid while the stage writes them."""
    from pyspark.sql import functions as F

    if not decided:
        return rows, rows
    ids = decided[0].where(decided[0].run_id != run_id).select("doc_id")
    for table in decided[1:]:
        ids = ids.unionByName(table.where(table.run_id != run_id).select("doc_id"))
    pending_runs = [row["run_id"] for row in
                    rows.select("doc_id", "run_id").join(ids, "doc_id", "left_anti")
                    .select("run_id").distinct().collect()]
    restricted = rows.where(F.col("run_id").isin(pending_runs))
    return restricted, restricted.join(ids, "doc_id", "left_anti")
