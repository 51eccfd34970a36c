"""Deterministic per-row randomness for Spark: never ``rand()`` or ``DataFrame.sample()``.

A row's number is a pure function of its own values and a seed, so it is the same on every run, on any
number of partitions and executors, and after any re-shuffle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column

_UNIT = float(1 << 53)


def unit_uniform(seed: int, *columns: str | Column) -> Column:
    """A number in [0, 1) from the top 53 bits of Spark's xxhash64 over (seed, columns...)."""
    from pyspark.sql import functions as F

    hashed = F.xxhash64(F.lit(seed).cast("long"), *[F.col(c) if isinstance(c, str) else c for c in columns])
    return F.shiftrightunsigned(hashed, 11).cast("double") / F.lit(_UNIT)
