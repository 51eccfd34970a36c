"""Exactly-once and fail-loud, tried as users do: two runs at once, a touched file, a changed file, a
secret in the config, hostile names, runs that did nothing, and the driver killed at several points."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.dataset as ds
import pytest
import yaml

from jobs import dedup, ingest, quality, runner
from jobs.core.config import ConfigError
from jobs.core.errors import PolicyError, StageFailed
from jobs.core.lock import ConcurrentRunError, RunLock
from jobs.core.tables import open_store
from jobs.core.tables.embedded import _ever_added
from jobs.runner import stage_context
from tests import inputs
from tests.conftest import make_config
from udfs.demo_corpus import DemoSpec, write_demo_corpus

BIN = Path(sys.executable).parent
STAGES = ["ingest", "dedup", "quality", "mix"]
SECRET = "planted-S3cret-0xC0FFEE"


def _curate(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "curate"), *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def _error_lines(stderr: str) -> list[str]:
    """What stderr says besides the progress lines of running stages ("[dedup] 45% ...")."""
    return [line for line in stderr.strip().splitlines() if not re.match(r"^\[\w+\] \d+%", line)]


def _popen(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "curate"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {})})


def _config_file(folder: Path, corpus: Path, **sections: dict) -> Path:
    data: dict = {
        "run": {"name": "nightly", "stages": STAGES},
        "spark": {"master": "local[1]", "conf": {"spark.sql.shuffle.partitions": 2}, "packages": []},
        "input": {"paths": [str(corpus / "*.jsonl.gz")], "source": "demo", "fields": {"crawl_time": "date"}},
        "output": {"root": str(folder / "out")},
        "tables": {"backend": "embedded"},  # the commit:<table>:before/after crash points are delta-rs
        "ingest": {"incremental": True}, "dedup": {"incremental": True}, "quality": {"incremental": True},
        "mix": {"domains": {"column": "lang"}, "allow_unknown_domains": True},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    path = folder / "conf.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("exactly-once-corpus")
    write_demo_corpus(str(folder), DemoSpec(docs=300, seed=31, shard_docs=100, reference_docs=0, workers=1))
    return folder


def _doc_ids(root: Path, table: str) -> list[str]:
    from deltalake import DeltaTable

    path = root / "tables" / table
    if not (path / "_delta_log").exists():
        return []
    return DeltaTable(str(path)).to_pyarrow_table(columns=["doc_id"]).column("doc_id").to_pylist()


def _mixture_keys(root: Path) -> list[tuple]:
    from deltalake import DeltaTable

    table = DeltaTable(str(root / "tables" / "mixture")).to_pyarrow_table(columns=["doc_id", "phase",
                                                                                   "copy_index"])
    return list(zip(*(table.column(name).to_pylist() for name in table.column_names), strict=True))


def _ledger(root: Path) -> list[dict]:
    from deltalake import DeltaTable

    return DeltaTable(str(root / "tables" / "run_ledger")).to_pyarrow_table().to_pylist()


def _assert_each_document_once(root: Path) -> None:
    for table in ("bronze", "deduped", "filtered", "quality_scores", "duplicates"):
        ids = _doc_ids(root, table)
        assert len(ids) == len(set(ids)), f"{table} has duplicate doc_ids"
    keys = _mixture_keys(root)
    assert keys and len(keys) == len(set(keys))


# ------------------------------------------------------------------------------------------ two at once


@pytest.mark.slow  # two whole runs in two JVMs side by side (about 2 min); make test-all
def test_two_runs_at_once_one_runs_the_other_fails_naming_the_holder(corpus, tmp_path):
    config = _config_file(tmp_path, corpus)
    first = _popen("run", "--config", str(config), "--run-date", "2026-11-01")
    lock_file = tmp_path / "out" / "_lock" / "run.lock"
    deadline = time.monotonic() + 120
    while not (lock_file.exists() and lock_file.read_text()):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.2)
    second = _curate("run", "--config", str(config), "--run-date", "2026-11-02")  # the backfill beside it
    _, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr[-2000:]
    assert second.returncode == 4
    lines = _error_lines(second.stderr)
    assert len(lines) == 1 and "locked by run nightly-2026-11-01" in lines[0], second.stderr
    _assert_each_document_once(tmp_path / "out")
    assert len(_doc_ids(tmp_path / "out", "bronze")) == 300
    again = _curate("run", "--config", str(config), "--run-date", "2026-11-02")  # later, it runs
    assert again.returncode == 0, again.stderr[-2000:]
    _assert_each_document_once(tmp_path / "out")


def test_a_waiting_run_gets_the_lock_when_the_holder_ends(tmp_path):
    holder = RunLock(str(tmp_path), "nightly-1")
    holder.acquire()
    with pytest.raises(ConcurrentRunError, match="locked by run nightly-1"):
        RunLock(str(tmp_path), "backfill").acquire()
    threading.Timer(1.5, holder.release).start()
    waiting = RunLock(str(tmp_path), "backfill", wait_seconds=30)
    started = time.monotonic()
    waiting.acquire()
    assert 1.0 < time.monotonic() - started < 30
    waiting.release()


def test_s3_lease_conditional_puts(s3_server, s3_bucket):
    root = f"s3://{s3_bucket}/out"
    first = RunLock(root, "nightly-1", s3_server, lease_seconds=30)
    first.acquire()
    with pytest.raises(ConcurrentRunError, match="locked by run nightly-1"):
        RunLock(root, "backfill", s3_server).acquire()
    first.release()
    second = RunLock(root, "backfill", s3_server, lease_seconds=30)
    second.acquire()
    # a holder that died: its lease runs out, and exactly one of two takers gets it
    second._stop.set()
    second._heartbeat.join()
    second._etag = second._put(second._lease(expired=True), if_match=second._etag)
    takers = [RunLock(root, f"taker-{index}", s3_server, lease_seconds=30) for index in range(2)]
    outcomes = []
    for taker in takers:
        try:
            taker.acquire()
            outcomes.append("got it")
        except ConcurrentRunError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == "got it" and "locked by run taker-0" in outcomes[1]
    takers[0].release()


# Both backends in make test-all (~140 s each); make test keeps the concurrent keyed merges of the table
# contract suite (tests/test_tables.py) on both backends.
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["embedded", "native"])
def test_lock_bypassed_concurrent_stages_still_write_each_document_once(spark, corpus, tmp_path, backend):
    """Two runs that both got past the lock: keyed writes keep every table free of duplicates (on native,
    delta-spark's conflict detection makes the loser re-plan its MERGE)."""
    config = make_config(tmp_path, input={"paths": [str(corpus / "*.jsonl.gz")], "source": "demo"},
                         ingest={"incremental": True}, dedup={"incremental": True},
                         quality={"incremental": True}, tables={"backend": backend})
    for stage in (ingest, dedup, quality):
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(
                lambda run_id, stage=stage: stage.run(stage_context(config, run_id, spark)),
                ["backfill", "nightly"]))
        assert all(result.reconciles() for result in results)
    root = Path(config.output.root)
    for table in ("bronze", "deduped", "duplicates", "quality_scores", "filtered"):
        ids = _doc_ids(root, table)
        assert len(ids) == len(set(ids)), table
    assert len(_doc_ids(root, "bronze")) == 300
    decided = _doc_ids(root, "deduped") + _doc_ids(root, "duplicates")
    assert sorted(decided) == sorted(_doc_ids(root, "bronze"))


# ------------------------------------------------------------------------------ touched and changed files


def test_a_touched_file_adds_nothing_and_a_changed_file_replaces_its_rows(spark, corpus, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for shard in sorted(corpus.glob("shard-*.jsonl.gz"))[:2]:
        shutil.copy(shard, folder)
    config = make_config(tmp_path, input={"paths": [str(folder / "*.jsonl.gz")], "source": "demo"},
                         ingest={"incremental": True}, dedup={"incremental": True},
                         quality={"incremental": True}, run={"stages": ["ingest", "dedup", "quality"]})
    runner.run(config, run_date="2026-11-01", spark=spark)
    root = Path(config.output.root)
    bronze_before = sorted(_doc_ids(root, "bronze"))

    touched = sorted(folder.glob("*.jsonl.gz"))[0]
    os.utime(touched, (time.time() + 60, time.time() + 60))  # same bytes, new mtime
    night_2 = runner.run(config, run_date="2026-11-02", spark=spark)
    assert night_2.stages[0].details["files"] == 1 and night_2.stages[0].details["files_unchanged"] == 1
    assert night_2.stages[0].docs_in == 0
    assert sorted(_doc_ids(root, "bronze")) == bronze_before

    lines = gzip.decompress(touched.read_bytes()).decode().splitlines()
    truth = ds.dataset(str(corpus / "truth" / "docs")).to_table().to_pandas()
    good = truth[(truth.file == touched.name) & (truth.lang == "en") & (truth.quality == "good")
                 & (truth.dup_kind == "original")]
    changed_line = int(good.line.iloc[0]) - 1  # a page quality keeps, so the changed night keeps one
    record = json.loads(lines[changed_line])
    record["text"] = "A rewritten page. " + record["text"]
    lines[changed_line] = json.dumps(record)
    touched.write_bytes(gzip.compress(("\n".join(lines[:-1]) + "\n").encode()))  # one changed, one gone
    night_3 = runner.run(config, run_date="2026-11-03", spark=spark)
    ingest_result = night_3.stages[0]
    assert ingest_result.details["files_unchanged"] == 0 and ingest_result.details["retracted_docs"] == 2
    assert ingest_result.docs_in == len([line for line in lines[:-1] if line.strip()])
    store = open_store(spark, config.output.root, config.tables)
    bronze = {row.doc_id: row for row in store.read("bronze").collect()}
    assert len(bronze) == len(bronze_before) - 1
    changed = next(row for row in bronze.values() if row.text.startswith("A rewritten page."))
    assert changed.run_id == "curate-2026-11-03"
    deduped, duplicates = _doc_ids(root, "deduped"), _doc_ids(root, "duplicates")
    assert sorted(deduped + duplicates) == sorted(bronze)  # every document decided once, the changed anew
    scored = _doc_ids(root, "quality_scores")
    assert sorted(scored) == sorted(deduped)
    assert [result.stage for result in night_3.stages if not result.reconciles()] == []


# ------------------------------------------------------------------------------------ secrets and names


def test_a_planted_secret_is_found_nowhere_under_the_output_root(corpus, tmp_path):
    options = {"AWS_REGION": "us-east-1", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": SECRET + "-t"}
    weights = {"mode": "explicit", "values": {"other": 0.5, SECRET: 0.5}}  # fails; the error names it
    config = _config_file(tmp_path, corpus, input={"storage_options": options},
                          output={"storage_options": options}, run={"stages": ["ingest", "mix"]},
                          mix={"allow_unknown_domains": False, "input_table": "bronze",
                               "domains": {"column": None}, "phases": [{"name": "main", "weights": weights}]})
    result = _curate("run", "--config", str(config), "--run-date", "2026-11-01")
    assert result.returncode == 1, result.stderr
    assert len(_error_lines(result.stderr)) == 1 and "stage mix failed" in result.stderr
    assert SECRET not in result.stdout + result.stderr
    found = [str(path) for path in (tmp_path / "out").rglob("*") if path.is_file()
             and SECRET.encode() in path.read_bytes()]
    assert found == []
    saved = json.loads((tmp_path / "out" / "runs" / "nightly-2026-11-01" / "config.json").read_text())
    assert saved["output"]["storage_options"]["AWS_SECRET_ACCESS_KEY"] == "***"
    failed = [row for row in _ledger(tmp_path / "out") if row["status"] == "failed"]
    assert failed and "***" in failed[0]["error"]


@pytest.mark.parametrize(("args", "overrides", "fragment"), [
    (["--run-id", "../../x"], [], "--run-id"),
    ([], ["run.name=../../x"], "run.name"),
    ([], ["tables.bronze=../../etc"], "tables.bronze"),
    ([], ["tables.quarantine=bronze"], "tables.quarantine and tables.bronze"),
])
def test_names_that_would_leave_the_output_root_are_config_errors(tmp_path, args, overrides, fragment):
    (tmp_path / "in").mkdir()
    inputs.write_jsonl(tmp_path / "in" / "a.jsonl")
    config = _config_file(tmp_path, tmp_path / "in", input={"paths": [str(tmp_path / "in" / "*.jsonl")]})
    sets = [item for override in overrides for item in ("--set", override)]
    result = _curate("run", "--config", str(config), *args, *sets)
    assert result.returncode == 2 and fragment in result.stderr and len(_error_lines(result.stderr)) == 1
    assert not (tmp_path / "x").exists() and not (tmp_path / "etc").exists()


def test_table_uris_stay_allowed(tmp_path):
    config = make_config(tmp_path, tables={"bronze": str(tmp_path / "elsewhere" / "bronze")})
    assert config.tables.bronze.endswith("elsewhere/bronze")


# ---------------------------------------------------------------------------------------- fail loud


def test_every_file_unreadable_fails_and_the_fixed_rerun_reads_them(corpus, tmp_path):
    config = _config_file(tmp_path, corpus, run={"stages": ["ingest"]})
    wrong = _curate("run", "--config", str(config), "--run-date", "2026-11-01",
                    "--set", "input.format=parquet")
    assert wrong.returncode == 1 and len(_error_lines(wrong.stderr)) == 1, wrong.stderr
    assert "unreadable" in wrong.stderr and "input.format" in wrong.stderr
    rows = _ledger(tmp_path / "out")
    outcomes = [(row["stage"], row["status"]) for row in rows if row["status"] != "running"]
    assert outcomes == [("ingest", "failed")]
    assert not (tmp_path / "out" / "tables" / "ingested_files").exists()
    fixed = _curate("run", "--config", str(config), "--run-date", "2026-11-01")
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert len(_doc_ids(tmp_path / "out", "bronze")) == 300


def test_a_misspelled_domain_and_an_infeasible_target_fail_the_mix(spark, tmp_path):
    from tests.test_mix import _setup

    config, _ = _setup(spark, tmp_path / "a", phases=[
        {"name": "main", "weights": {"mode": "explicit", "values": {"news": 0.5, "newz": 0.5}}}])
    with pytest.raises(PolicyError, match=r"newz.*mix.allow_unknown_domains"):
        runner.stage("mix").run(stage_context(config, "m", spark))
    config, _ = _setup(spark, tmp_path / "b", max_epochs=2.0, phases=[
        {"name": "main", "weights": {"mode": "explicit", "values": {"tiny": 0.5, "news": 0.5}}}])
    with pytest.raises(PolicyError, match=r"domain tiny: target .* exceeds 2 epochs.*mix.allow_infeasible"):
        runner.stage("mix").run(stage_context(config, "m", spark))


def test_a_quality_stage_that_keeps_nothing_fails_with_a_ledger_row(spark, tmp_path):
    from tests.test_dedup import BRONZE_SCHEMA, _row

    config = make_config(tmp_path, run={"stages": ["quality"]})
    store = open_store(spark, config.output.root, config.tables)
    store.write(spark.createDataFrame([_row("short", "Too short.")], BRONZE_SCHEMA), "deduped",
                mode="overwrite", run_id="seed")
    with pytest.raises(StageFailed, match=r"stage quality failed: .*kept none.*allow_empty_output"):
        runner.run(config, run_id="q", spark=spark)
    statuses = [(row["stage"], row["status"]) for row in store.read("run_ledger").collect()]
    assert ("quality", "failed") in statuses and not store.exists("filtered")


# ---------------------------------------------------------------------------------------- runtime errors


def test_runtime_errors_are_one_line_with_their_exit_codes(corpus, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    config = _config_file(tmp_path, corpus, output={"root": str(tmp_path / "a-file" / "out")})
    unwritable = _curate("run", "--config", str(config))
    assert unwritable.returncode == 3 and len(_error_lines(unwritable.stderr)) == 1, unwritable.stderr
    assert "output.root" in unwritable.stderr
    config = _config_file(tmp_path, corpus)
    bad_spark = _curate("run", "--config", str(config), "--set", "spark.driver_memory=lots")
    assert bad_spark.returncode == 3 and len(_error_lines(bad_spark.stderr)) == 1, bad_spark.stderr
    assert "cannot start Spark" in bad_spark.stderr


# ------------------------------------------------------------------------------------------ kill -9


@pytest.mark.slow  # four runs, three of them killed (about 2.5 min); make test-all
def test_a_driver_killed_at_several_points_converges_with_failed_ledger_rows(corpus, tmp_path):
    config = _config_file(tmp_path, corpus)
    root = tmp_path / "out"
    run = ["run", "--config", str(config), "--run-date", "2026-11-05"]
    for point in ("commit:bronze:after", "stage:dedup:started", "commit:filtered:before"):
        killed = _curate(*run, env={"CURATE_CRASH_AT": point})
        assert killed.returncode == -9, (point, killed.stderr[-2000:])
    (root / "runs" / "nightly-2026-11-05" / "funnel.json").write_text("")  # as a crash mid-write left it
    final = _curate(*run)
    assert final.returncode == 0, final.stderr[-2000:]
    ledger = _ledger(root)
    failed = sorted((row["stage"], row["attempt"]) for row in ledger if row["status"] == "failed")
    assert failed == [("dedup", 1), ("ingest", 1), ("quality", 1)]
    assert all("abandoned" in row["error"] for row in ledger if row["status"] == "failed")
    succeeded = {row["stage"] for row in ledger if row["status"] == "succeeded"}
    assert succeeded == set(STAGES)
    _assert_each_document_once(root)
    assert len(_doc_ids(root, "bronze")) == 300
    for table in (root / "tables").iterdir():  # no file of a killed write is left behind
        assert not (table / "_staging").exists()
        on_disk = {str(path.relative_to(table)) for path in table.rglob("*.parquet")
                   if "_delta_log" not in path.parts}
        assert on_disk <= _ever_added(str(table), {}), table.name
    funnel = json.loads((root / "runs" / "nightly-2026-11-05" / "funnel.json").read_text())
    assert [stage["stage"] for stage in funnel["stages"]] == STAGES
    assert "abandoned" in (root / "runs" / "nightly-2026-11-05" / "run.log").read_text()


def test_config_error_before_anything_starts_leaves_no_lock(tmp_path):
    with pytest.raises(ConfigError):
        runner.run(make_config(tmp_path, input={"paths": [str(tmp_path / "nothing" / "*.jsonl")]}))
    assert not (tmp_path / "out" / "_lock").exists()
