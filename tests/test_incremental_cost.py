"""Incremental dedup on the native backend, night after night: every new document is decided exactly once
(kept or recorded as a duplicate), and a night's Spark work follows what it adds, not how many nights came
before (a structural check on jobs and tasks from Spark's status tracker, never a timing)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pyspark.sql import functions as F

from jobs import dedup
from jobs.core.tables import open_store
from jobs.runner import stage_context
from tests.conftest import make_config
from tests.test_dedup import BRONZE_SCHEMA, _edit, _row, _words

NIGHTS = 4
NEW_PER_NIGHT = 12  # from the second night on; the first has no earlier copies


@dataclass(frozen=True)
class Night:
    run_id: str
    docs_in: int
    drops: dict[str, int]
    jobs: int
    tasks: int
    decided: dict[str, int]  # rows deduped and duplicates hold of this night's documents
    planted: dict[str, str]  # doc_id -> what it was planted as


def _night_rows(night: int, earlier: dict[str, list[str]],
                rng: random.Random) -> tuple[list[tuple], dict[str, str]]:
    """New documents: uniques, an exact and a near copy of earlier documents, and a near pair within the
    night, so every night exercises the exact index, the band index and the components."""
    rows, planted = [], {}
    texts: dict[str, list[str]] = {}
    for index in range(NEW_PER_NIGHT - 4):
        texts[f"n{night}-u{index}"] = _words(rng, 120)
        planted[f"n{night}-u{index}"] = "kept"
    if earlier:
        old_ids = sorted(earlier)
        texts[f"n{night}-exact"] = earlier[rng.choice(old_ids)]
        planted[f"n{night}-exact"] = "exact"
        texts[f"n{night}-near"] = _edit(earlier[rng.choice(old_ids)], 2, rng)
        planted[f"n{night}-near"] = "near"
    pair = _words(rng, 120)
    texts[f"n{night}-pair-a"] = pair
    planted[f"n{night}-pair-a"] = "kept"
    texts[f"n{night}-pair-b"] = _edit(pair, 1, rng)
    planted[f"n{night}-pair-b"] = "near"
    rows = [_row(doc_id, " ".join(words)) for doc_id, words in texts.items()]
    rows = [(*row[:-1], f"ingest-{night}") for row in rows]
    earlier.update({doc_id: words for doc_id, words in texts.items() if planted[doc_id] == "kept"})
    return rows, planted


def _work_of(spark, group: str) -> tuple[int, int]:
    """(jobs, tasks) Spark ran under a job group, from the status tracker."""
    tracker = spark.sparkContext.statusTracker()
    jobs = tracker.getJobIdsForGroup(group)
    tasks = 0
    for job_id in jobs:
        info = tracker.getJobInfo(job_id)
        for stage_id in info.stageIds if info is not None else ():
            stage = tracker.getStageInfo(stage_id)
            tasks += stage.numTasks if stage is not None else 0
    return len(jobs), tasks


@pytest.fixture(scope="module")
def nights(spark, tmp_path_factory) -> Iterator[list[Night]]:
    tmp_path = tmp_path_factory.mktemp("incremental-native")
    config = make_config(tmp_path, tables={"backend": "native"},
                         dedup={"incremental": True, "components": {"driver_max_edges": 1000}})
    store = open_store(spark, config.output.root, config.tables)
    assert store.backend.name == "native"
    rng = random.Random(5)
    earlier: dict[str, list[str]] = {}
    done = []
    for night in range(1, NIGHTS + 1):
        rows, planted = _night_rows(night, earlier, rng)
        store.write(spark.createDataFrame(rows, BRONZE_SCHEMA), "bronze", mode="append", run_id=f"ingest-{night}")
        run_id = f"night-{night}"
        spark.sparkContext.setJobGroup(run_id, "incremental cost test")
        try:
            result = dedup.run(stage_context(config, run_id, spark))
        finally:
            spark.sparkContext.setJobGroup("", "")
        jobs, tasks = _work_of(spark, run_id)
        decided = {name: store.read(name).where(F.col("doc_id").isin(list(planted))).count()
                   for name in ("deduped", "duplicates")}
        done.append(Night(run_id, result.docs_in, result.drops, jobs, tasks, decided, planted))
    yield done


def test_every_new_document_is_decided_once_every_night(nights):
    for night in nights:
        assert night.docs_in == len(night.planted), night.run_id
        assert night.decided["deduped"] + night.decided["duplicates"] == len(night.planted), night
        assert night.decided["duplicates"] == sum(night.drops.values()), night
        removed = [fate for fate in night.planted.values() if fate != "kept"]
        assert sum(night.drops.values()) == len(removed), night


def test_a_nights_spark_work_does_not_grow_with_the_nights_before(nights):
    second, last = nights[1], nights[-1]
    # Delta log checkpoints and file counts move a handful of tasks; lineage that grows with history
    # (the bug this guards) multiplied them by hundreds.
    assert last.jobs <= second.jobs + 5, [(night.jobs, night.tasks) for night in nights]
    assert last.tasks <= 1.25 * second.tasks, [(night.jobs, night.tasks) for night in nights]
