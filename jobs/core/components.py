"""Connected components of the duplicate graph.

Small graphs (up to ``driver_max_edges``) are solved in the driver with scipy's sparse-graph routine;
larger ones run the alternating large-star / small-star algorithm (Kiveris et al., 2014) on DataFrames,
which converges in O(log n) rounds, with checkpoints every few rounds to cut the lineage. No GraphFrames.

Every node ends up labelled with the smallest node id of its component.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from jobs.core.config import ComponentsSettings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class ComponentsResult:
    labels: DataFrame  # (node, component) of the edges' id type, one row per node that has an edge
    rounds: int  # large-star + small-star rounds (0 when solved in the driver)
    method: str  # "driver" or "star"


def components_in_driver(sources: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, smallest node of each node's component) for an edge list of string ids."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nodes, inverse = np.unique(np.concatenate([sources, targets]), return_inverse=True)
    count = len(nodes)
    if count == 0:
        return nodes, nodes
    edges = len(sources)
    weights = np.ones(edges, dtype=np.int8)
    graph = coo_matrix((weights, (inverse[:edges], inverse[edges:])), shape=(count, count))
    _, component = connected_components(graph, directed=False)
    # nodes are sorted, so the first node seen for each component is its smallest id
    first_index = np.full(component.max() + 1, count, dtype=np.int64)
    np.minimum.at(first_index, component, np.arange(count))
    return nodes, nodes[first_index[component]]


def _large_star(edges: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    both = edges.select("u", "v").unionByName(edges.select(F.col("v").alias("u"), F.col("u").alias("v")))
    smallest = both.groupBy("u").agg(F.min("v").alias("m")).select("u", F.least("u", "m").alias("m"))
    return (both.where(F.col("v") > F.col("u")).join(smallest, "u")
            .select(F.col("v").alias("u"), F.col("m").alias("v")).where(F.col("u") != F.col("v")).distinct())


def _small_star(edges: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    oriented = edges.select(F.greatest("u", "v").alias("u"), F.least("u", "v").alias("v"))
    smallest = oriented.groupBy("u").agg(F.min("v").alias("m")).select("u", F.least("u", "m").alias("m"))
    neighbours = oriented.join(smallest, "u").select(F.col("v").alias("u"), F.col("m").alias("v"))
    selves = smallest.select("u", F.col("m").alias("v"))
    return neighbours.unionByName(selves).where(F.col("u") != F.col("v")).distinct()


def _fingerprint(edges: DataFrame) -> tuple[int, int]:
    from pyspark.sql import functions as F

    row = edges.agg(F.count(F.lit(1)).alias("n"),
                    F.sum(F.xxhash64("u", "v").cast("decimal(38,0)")).alias("h")).first()
    return int(row["n"]), int(row["h"] or 0)


def _changed(new: DataFrame, old: DataFrame,
             old_fingerprint: tuple[int, int]) -> tuple[bool, tuple[int, int]]:
    """Cheap fingerprint comparison each round; the exact set comparison only when they agree."""
    fingerprint = _fingerprint(new)
    if fingerprint != old_fingerprint:
        return True, fingerprint
    exact = new.exceptAll(old).limit(1).count() > 0 or old.exceptAll(new).limit(1).count() > 0
    return exact, fingerprint


def components_with_stars(spark: SparkSession, edges: DataFrame,
                          settings: ComponentsSettings) -> ComponentsResult:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    if settings.checkpoint_dir:
        spark.sparkContext.setCheckpointDir(settings.checkpoint_dir)

    def cut(frame: DataFrame, round_number: int) -> DataFrame:
        if round_number % settings.checkpoint_every == 0:
            if settings.checkpoint_dir:
                return frame.checkpoint(eager=True)
            return frame.localCheckpoint(eager=True)
        return frame.persist(StorageLevel.MEMORY_AND_DISK)

    current = (edges.select(F.greatest("src", "dst").alias("u"), F.least("src", "dst").alias("v"))
               .where(F.col("u") != F.col("v")).distinct().persist(StorageLevel.MEMORY_AND_DISK))
    nodes = (current.select(F.col("u").alias("node"))
             .unionByName(current.select(F.col("v").alias("node"))).distinct())
    rounds = 0
    fingerprint = _fingerprint(current)
    while True:
        rounds += 1
        if rounds > settings.max_rounds:
            raise RuntimeError(f"connected components did not converge in {settings.max_rounds} rounds")
        following = cut(_small_star(_large_star(current)), rounds)
        changed, fingerprint = _changed(following, current, fingerprint)
        current.unpersist()
        current = following
        if not changed:
            break
    pointers = current.select(F.col("u").alias("node"), F.col("v").alias("component"))
    labels = (nodes.join(pointers, "node", "left")
              .select("node", F.coalesce("component", "node").alias("component")))
    return ComponentsResult(labels, rounds, "star")


def connected_components(spark: SparkSession, edges: DataFrame,
                         settings: ComponentsSettings) -> ComponentsResult:
    """Label every node of ``edges`` (columns ``src``, ``dst``) with its component's smallest id."""
    edge_count = edges.count()
    if edge_count <= settings.driver_max_edges:
        rows = edges.select("src", "dst").toArrow()
        numeric = pa.types.is_integer(rows.schema.field("src").type)
        kind = np.int64 if numeric else object  # longs stay a numpy array: no Python object per node
        nodes, labels = components_in_driver(np.asarray(rows.column("src").to_numpy(), dtype=kind),
                                             np.asarray(rows.column("dst").to_numpy(), dtype=kind))
        id_type = edges.schema["src"].dataType.simpleString()
        frame = spark.createDataFrame(pd.DataFrame({"node": nodes, "component": labels}),
                                      f"node {id_type}, component {id_type}")
        return ComponentsResult(frame, 0, "driver")
    return components_with_stars(spark, edges, settings)
