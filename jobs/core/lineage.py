"""Intermediate results a stage reads more than once, stored once with a short plan.

A persisted frame keeps its whole lineage in every plan built on it, and Spark re-caches each persisted
plan that reads a path it then writes. A stage that reads a Delta table (bronze less the documents already
decided), persists what it derives and then writes that table had every write recompute the stage, in
plans that grew to hundreds of millions of characters: night 2 of an incremental dedup took 15 minutes
for 1,000 documents. A stored frame here is a scan of its own blocks instead (a local checkpoint: no
lineage, no path, nothing a later write invalidates), released when the stage ends.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


class Stored:
    """Frames materialised for one stage; ``release()`` frees their blocks (call it in a ``finally``)."""

    def __init__(self) -> None:
        self._frames: list[DataFrame] = []

    def __call__(self, frame: DataFrame, on_disk: bool = False) -> DataFrame:
        """``frame`` computed now, as a frame whose plan is a scan of the result. ``on_disk`` for large
        ones (signatures), which would otherwise hold memory that sorts and joins need."""
        from pyspark import StorageLevel

        level = StorageLevel.DISK_ONLY if on_disk else StorageLevel.MEMORY_AND_DISK
        stored = frame.localCheckpoint(eager=True, storageLevel=level)
        self._frames.append(stored)
        return stored

    def release(self) -> None:
        for frame in self._frames:
            _unpersist_blocks(frame)
        self._frames.clear()


def _unpersist_blocks(frame: DataFrame) -> None:
    """Drop a local checkpoint's blocks now, not at the JVM's next garbage collection."""
    with contextlib.suppress(Exception):  # not a checkpoint (e.g. an empty local relation): nothing held
        frame._jdf.queryExecution().logical().rdd().unpersist(False)  # type: ignore[attr-defined]
