"""Three simulated nights of `curate run --run-date`: incremental ingest/dedup/quality, a crash midway
through a night and its re-run, idempotent re-runs, the run ledger, the audit trail, the report and
the dry run, all over the tables the nights leave behind."""

from __future__ import annotations

import contextlib
import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from jobs import runner
from jobs.core.audit import explain
from jobs.core.errors import StageFailed
from jobs.core.funnel import Funnel
from jobs.core.progress import progress_line
from jobs.core.report import write_report
from jobs.core.tables import TableStore, open_store
from tests.conftest import make_config
from udfs.demo_corpus import DemoSpec, write_demo_corpus

# Three whole nights in one module fixture (about 4 min): make test-all. Their guarantees also have quicker
# tests in make test (test_exactly_once: touched/changed files, lock-bypassed races; test_backends).
pytestmark = pytest.mark.slow

STAGES = ["ingest", "dedup", "quality", "mix"]
NIGHT_3 = "nightly-2026-11-03"


class Crash(RuntimeError):
    pass


@dataclass
class Nights:
    config: object
    store: TableStore
    incoming: object
    funnels: dict[str, Funnel] = field(default_factory=dict)
    output: dict[str, str] = field(default_factory=dict)
    bronze_after: list[int] = field(default_factory=list)
    ledger_rows_after_night_1: int = 0
    crash: BaseException | None = None
    ledger_after_crash: list[dict] = field(default_factory=list)


def _ledger(store: TableStore) -> list[dict]:
    """The ledger's outcome rows (each attempt also has the "running" row it started with)."""
    return [row.asDict() for row in store.read("run_ledger").collect() if row.status != "running"]


def _run(nights: Nights, label: str, date: str) -> None:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        nights.funnels[label] = runner.run(nights.config, STAGES, spark=nights.store.spark, run_date=date)
    nights.output[label] = printed.getvalue()


@pytest.fixture(scope="module")
def nights(spark, tmp_path_factory) -> Nights:
    corpus = tmp_path_factory.mktemp("nightly-corpus")
    write_demo_corpus(str(corpus), DemoSpec(docs=600, seed=21, shard_docs=200, reference_docs=0, workers=1))
    shards = sorted(corpus.glob("shard-*.jsonl.gz"))
    root = tmp_path_factory.mktemp("nightly")
    incoming = root / "incoming"
    incoming.mkdir()
    config = make_config(root, run={"name": "nightly", "stages": STAGES},
                         input={"paths": [str(incoming / "*.jsonl.gz")], "fields": {"crawl_time": "date"}},
                         ingest={"incremental": True}, dedup={"incremental": True},
                         quality={"incremental": True}, mix={"domains": {"column": "lang"}})
    state = Nights(config, open_store(spark, config.output.root, config.tables), incoming)

    shutil.copy(shards[0], incoming)
    _run(state, "night 1", "2026-11-01")
    state.bronze_after.append(state.store.read("bronze").count())
    state.ledger_rows_after_night_1 = len(_ledger(state.store))
    _run(state, "night 1 again", "2026-11-01")

    shutil.copy(shards[1], incoming)
    _run(state, "night 2", "2026-11-02")
    state.bronze_after.append(state.store.read("bronze").count())

    shutil.copy(shards[2], incoming)  # night 3 crashes inside quality: scores committed, filtered not
    real_write = TableStore.write

    def crashing_write(self, df, name, **kwargs):
        if name == "filtered" and kwargs.get("run_id") == NIGHT_3:
            raise Crash("disk full (injected)")
        return real_write(self, df, name, **kwargs)

    real_merge = TableStore.merge

    def crashing_merge(self, df, name, **kwargs):
        if name == "filtered" and kwargs.get("run_id") == NIGHT_3:
            raise Crash("disk full (injected)")
        return real_merge(self, df, name, **kwargs)

    TableStore.write, TableStore.merge = crashing_write, crashing_merge
    try:
        _run(state, "night 3", "2026-11-03")
    except StageFailed as exc:
        state.crash = exc.__cause__
    finally:
        TableStore.write, TableStore.merge = real_write, real_merge
    state.ledger_after_crash = [row for row in _ledger(state.store) if row["run_id"] == NIGHT_3]
    _run(state, "night 3 again", "2026-11-03")
    return state


def test_first_night_runs_every_stage_and_a_repeat_is_a_no_op(nights):
    first = nights.funnels["night 1"]
    assert [stage.stage for stage in first.stages] == STAGES and all(s.reconciles() for s in first.stages)
    assert "nothing to do" in nights.output["night 1 again"]
    ledger = _ledger(nights.store)
    assert len([row for row in ledger if row["run_id"] == "nightly-2026-11-01"]) == len(STAGES)
    row = next(row for row in ledger if row["stage"] == "dedup" and row["run_id"] == "nightly-2026-11-01")
    assert row["status"] == "succeeded" and row["code_version"] and row["config_hash"]
    assert '"bronze": 0' in row["input_versions"] and row["docs_in"] == nights.bronze_after[0]


def test_second_night_reads_only_the_new_file(nights):
    ingest, dedup = nights.funnels["night 2"].stages[:2]
    assert ingest.details["files"] == 1 and ingest.details["files_seen_before"] == 1
    assert dedup.docs_in == nights.bronze_after[1] - nights.bronze_after[0]


def test_crashed_night_resumes_at_the_failed_stage(nights):
    assert isinstance(nights.crash, Crash)
    assert {(row["stage"], row["status"]) for row in nights.ledger_after_crash} == {
        ("ingest", "succeeded"), ("dedup", "succeeded"), ("quality", "failed")}
    assert "disk full" in next(row["error"] for row in nights.ledger_after_crash if row["status"] == "failed")
    assert "resuming at stage quality" in nights.output["night 3 again"]
    attempts = {(row["stage"], row["attempt"], row["status"]) for row in _ledger(nights.store)
                if row["run_id"] == NIGHT_3}
    assert ("dedup", 2, "succeeded") not in attempts and ("quality", 2, "succeeded") in attempts
    assert [stage.stage for stage in nights.funnels["night 3 again"].stages] == STAGES


def test_accumulated_tables_decide_every_document_once(nights):
    store = nights.store

    def ids(name: str) -> list[str]:
        return [row.doc_id for row in store.read(name).select("doc_id").collect()]

    bronze, deduped, duplicates, filtered = ids("bronze"), ids("deduped"), ids("duplicates"), ids("filtered")
    scores = store.read("quality_scores")
    kept = {row.doc_id for row in scores.where("drop_reason IS NULL").select("doc_id").collect()}
    assert len(set(bronze)) == len(bronze) == 600  # each night's documents ingested exactly once
    assert sorted(deduped + duplicates) == sorted(bronze)
    assert sorted(row.doc_id for row in scores.select("doc_id").collect()) == sorted(deduped)
    assert sorted(filtered) == sorted(kept)
    mixed = {row.doc_id for row in store.read("mixture").select("doc_id").distinct().collect()}
    assert mixed <= kept and len(mixed) > len(kept) // 2  # rebuilt from all three nights
    per_night = [row["docs_out"] for row in _ledger(store) if row["stage"] == "ingest"]
    assert sum(per_night) == len(bronze)


def test_every_decision_is_recorded_and_explained(nights):
    store, config = nights.store, nights.config
    decisions = store.read("decisions")
    by_stage = {row["stage"]: row["count"] for row in decisions.groupBy("stage").count().collect()}
    assert by_stage["dedup"] == store.read("duplicates").count()
    assert by_stage["quality"] == store.read("quality_scores").count()
    assert by_stage["ingest"] == store.read("quarantine").count()
    duplicate = store.read("duplicates").first()
    text = explain(config, duplicate.doc_id)
    assert f"keeper={duplicate.keeper_doc_id}" in text and "dedup    dropped" in text
    dropped = store.read("quality_scores").where("drop_reason IS NOT NULL").first()
    assert f"quality  dropped: {dropped.drop_reason}" in explain(config, dropped.doc_id)
    quarantined = store.read("quarantine").first()
    assert f"quarantined: {quarantined.reason}" in explain(config, quarantined.doc_id)
    assert "not found" in explain(config, "no-such-document")


def test_report_writes_a_page_with_plots(nights):
    page = Path(write_report(nights.config, NIGHT_3))
    html = page.read_text(encoding="utf-8")
    for image in ("funnel.png", "drops.png", "scores.png", "mix.png"):
        assert f"src='{image}'" in html
        assert (page.parent / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "failed" in html and "disk full" in html  # the ledger shows the crashed attempt


def test_dry_run_plans_without_writing(nights):
    store, config = nights.store, nights.config
    versions = {name: store.version(name) for name in ("bronze", "run_ledger", "decisions")}
    finished = runner.describe_plan(config, STAGES, NIGHT_3)
    assert "all finished" in finished and "bronze           version" in finished
    fresh = runner.describe_plan(config, STAGES, "nightly-2026-11-04")
    assert "stages: ingest -> dedup -> quality -> mix" in fresh
    assert "0 new files" in fresh and "3 ingested before" in fresh
    assert {name: store.version(name) for name in versions} == versions


def test_progress_line():
    assert progress_line("dedup", 5, 20, 10.0) == "[dedup] 25% (5/20 tasks), 10s elapsed, ETA 30s"
    assert progress_line("mix", 0, 4, 3.0) == "[mix] 0% (0/4 tasks), 3s elapsed"
