"""Connected components: driver (scipy) and large/small-star agree; star rounds grow like log n."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from jobs.core.components import components_in_driver, components_with_stars, connected_components
from jobs.core.config import ComponentsSettings

STAR_ONLY = ComponentsSettings(driver_max_edges=0)


def _ids(count: int) -> list[str]:
    return [f"n{i:05d}" for i in range(count)]


def _labels(result) -> dict[str, str]:
    return {row["node"]: row["component"] for row in result.labels.collect()}


def test_driver_components_label_with_smallest_id():
    nodes, labels = components_in_driver(np.array(["c", "b", "x"], dtype=object),
                                         np.array(["a", "c", "y"], dtype=object))
    assert dict(zip(nodes.tolist(), labels.tolist(), strict=True)) == {
        "a": "a", "b": "a", "c": "a", "x": "x", "y": "x"}


def test_star_and_driver_agree_on_a_random_graph(spark):
    rng = random.Random(3)
    ids = _ids(300)
    edges = [(rng.choice(ids), rng.choice(ids)) for _ in range(220)]
    frame = spark.createDataFrame(edges, "src string, dst string")
    star = components_with_stars(spark, frame, STAR_ONLY)
    driver = connected_components(spark, frame, ComponentsSettings())
    assert driver.method == "driver" and star.method == "star"
    assert _labels(star) == _labels(driver)


@pytest.mark.parametrize("shape", ["chain", "star", "two_chains"])
def test_rounds_grow_logarithmically(spark, shape):
    ids = _ids(512)
    rng = random.Random(1)
    shuffled = list(ids)
    rng.shuffle(shuffled)  # ids along the chain in random order: the hard case for label propagation
    if shape == "chain":
        edges = list(itertools.pairwise(shuffled))
    elif shape == "star":
        edges = [(shuffled[0], other) for other in shuffled[1:]]
    else:
        edges = list(itertools.pairwise(shuffled[:256])) + list(itertools.pairwise(shuffled[256:]))
    result = components_with_stars(spark, spark.createDataFrame(edges, "src string, dst string"), STAR_ONLY)
    labels = _labels(result)
    if shape == "two_chains":
        assert set(labels.values()) == {min(shuffled[:256]), min(shuffled[256:])}
    else:
        assert set(labels.values()) == {min(ids)} and len(labels) == 512
    assert result.rounds <= 2 * math.ceil(math.log2(512)) + 2


def test_non_convergence_is_reported(spark):
    edges = spark.createDataFrame([(f"a{i}", f"a{i + 1}") for i in range(64)], "src string, dst string")
    with pytest.raises(RuntimeError, match="did not converge"):
        components_with_stars(spark, edges, ComponentsSettings(driver_max_edges=0, max_rounds=1))
