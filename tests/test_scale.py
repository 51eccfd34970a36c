"""Memory: defaults sized to the machine, dedup that spills instead of failing when memory is short, and a
resource failure reported as one line naming the setting to raise. (The 1M-document run itself is a
benchmark: benchmarks/scale.py.)"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

from jobs import runner
from jobs.core.spark import AUTO_MEMORY_FRACTION, driver_memory, physical_memory_bytes
from tests.conftest import REPO_ROOT, make_config
from udfs.demo_corpus import DemoSpec, write_demo_corpus

BIN = Path(sys.executable).parent
# What a real dedup failure at 1M documents with 4g and 8 shuffle partitions said (Py4J's text).
SPARK_OOM = """An error occurred while calling o774.count.
: org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 21.0 failed 1 times, most recent failure: Lost task 0.0 in stage 21.0 (TID 1656) (localhost executor driver): org.apache.spark.memory.SparkOutOfMemoryError: [UNABLE_TO_ACQUIRE_MEMORY] Unable to acquire 692 bytes of memory, got 0. SQLSTATE: 53200
\tat org.apache.spark.errors.SparkCoreErrors$.outOfMemoryError(SparkCoreErrors.scala:469)
Caused by: org.apache.spark.memory.SparkOutOfMemoryError: [UNABLE_TO_ACQUIRE_MEMORY] Unable to acquire 692 bytes of memory, got 0. SQLSTATE: 53200
\tat org.apache.spark.errors.SparkCoreErrors$.outOfMemoryError(SparkCoreErrors.scala:469)"""  # noqa: E501


def test_auto_driver_memory_is_half_the_machine():
    expected = int(physical_memory_bytes() * AUTO_MEMORY_FRACTION) // (1 << 20)
    assert driver_memory("auto") == f"{max(1024, expected)}m"
    assert driver_memory("6g") == "6g"


def test_a_memory_failure_is_one_line_naming_the_settings(spark, tmp_path):
    context = runner.stage_context(make_config(tmp_path), "oom", spark)
    hint = runner._resource_hint(Exception(SPARK_OOM), context)
    assert hint is not None and "\n" not in hint
    assert "ran out of memory (org.apache.spark.memory.SparkOutOfMemoryError: [UNABLE_TO_ACQUIRE" in hint
    assert "spark.sql.shuffle.partitions 4" in hint and "raise spark.driver_memory" in hint
    assert runner._resource_hint(Exception("no such column"), context) is None
    first = runner._first_line(Exception(SPARK_OOM))
    assert first.startswith("org.apache.spark.memory.SparkOutOfMemoryError")


def _spilled_by_stage(events: Path) -> dict[str, int]:
    """Memory bytes spilled per curate stage, from Spark's event log (jobs are grouped by stage)."""
    group_of_stage: dict[int, str] = {}
    spilled: dict[str, int] = {}
    for path in glob.glob(str(events / "*" / "events_*")):
        with open(path, "rb") as handle:
            text = zstandard.ZstdDecompressor().stream_reader(handle, read_across_frames=True).read().decode()
        for line in text.splitlines():
            event = json.loads(line)
            if event.get("Event") == "SparkListenerJobStart":
                group = (event.get("Properties") or {}).get("spark.jobGroup.id", "")
                group_of_stage.update(dict.fromkeys(event.get("Stage IDs", []), group.split(":")[-1]))
            elif event.get("Event") == "SparkListenerTaskEnd":
                stage = group_of_stage.get(event["Stage ID"], "?")
                metrics = event.get("Task Metrics") or {}
                spilled[stage] = spilled.get(stage, 0) + int(metrics.get("Memory Bytes Spilled", 0))
    return spilled


@pytest.mark.slow  # its own small-memory Spark session: ~110 s (make test-all)
def test_dedup_spills_instead_of_failing_when_memory_is_short(tmp_path):
    corpus = tmp_path / "corpus"
    spec = DemoSpec(docs=20000, seed=3, shard_docs=10000, reference_docs=0, workers=1)
    write_demo_corpus(str(corpus), spec)
    events = tmp_path / "events"
    events.mkdir()
    result = subprocess.run(
        [str(BIN / "curate"), "run", "--config", str(REPO_ROOT / "conf" / "local.yaml"), "--run-id", "tight",
         "--set", "run.stages=[ingest, dedup]", "--set", f"input.paths=['{corpus}/*.jsonl.gz']",
         "--set", f"output.root={tmp_path / 'out'}", "--set", "spark.master=local[2]",
         "--set", "spark.packages=[]", "--set", "tables.backend=embedded",
         "--set", "spark.driver_memory=512m", "--set", "spark.conf.spark.memory.fraction=0.1",
         "--set", "spark.conf.spark.buffer.pageSize=64k",
         "--set", "spark.conf.spark.sql.shuffle.partitions=2",
         "--set", "spark.conf.spark.eventLog.enabled=true",
         "--set", f"spark.conf.spark.eventLog.dir={events}"],
        capture_output=True, text=True, timeout=600, env={**os.environ})
    assert result.returncode == 0, result.stderr[-2000:]
    spilled = _spilled_by_stage(events)
    assert spilled.get("dedup", 0) > 0, spilled  # it did not fit in memory, and it still finished
    funnel = json.loads((tmp_path / "out" / "runs" / "tight" / "funnel.json").read_text())
    assert [stage["stage"] for stage in funnel["stages"]] == ["ingest", "dedup"]
    assert funnel["stages"][1]["docs_in"] == 20000
