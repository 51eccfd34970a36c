"""Three simulated nights of `curate run --run-date`: incremental ingest/dedup/quality, a crash midway
through a night and its re-run, idempotent re-runs, and the run ledger."""

from __future__ import annotations

import shutil

import pytest

from jobs.cli import run_stages
from jobs.tables import TableStore, open_store
from tests.conftest import make_config
from udfs.demo_corpus import DemoSpec, write_demo_corpus

STAGES = ["ingest", "dedup", "quality", "mix"]


class Crash(RuntimeError):
    pass


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nightly-corpus")
    write_demo_corpus(str(folder), DemoSpec(docs=600, seed=21, shard_docs=200, reference_docs=0, workers=1))
    return sorted(folder.glob("shard-*.jsonl.gz"))


def _ledger(store: TableStore) -> list[dict]:
    return [row.asDict() for row in store.read("run_ledger").collect()]


def _ids(store: TableStore, name: str) -> list[str]:
    return [row.doc_id for row in store.read(name).select("doc_id").collect()]


def test_three_nights_with_a_crash_and_reruns(spark, tmp_path, corpus, monkeypatch, capsys):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    config = make_config(tmp_path, run={"name": "nightly", "stages": STAGES},
                         input={"paths": [str(incoming / "*.jsonl.gz")], "fields": {"crawl_time": "date"}},
                         ingest={"incremental": True}, dedup={"incremental": True},
                         quality={"incremental": True},
                         mix={"domains": {"column": "lang"}})
    store = open_store(spark, config.output.root, config.tables)
    bronze_sizes = []

    # night 1, then the same night again: a no-op
    shutil.copy(corpus[0], incoming)
    first = run_stages(config, STAGES, spark=spark, run_date="2026-11-01")
    assert [stage.stage for stage in first.stages] == STAGES and all(s.reconciles() for s in first.stages)
    bronze_sizes.append(store.read("bronze").count())
    ledger_rows = len(_ledger(store))
    again = run_stages(config, STAGES, spark=spark, run_date="2026-11-01")
    assert "nothing to do" in capsys.readouterr().out
    assert len(_ledger(store)) == ledger_rows and [s.stage for s in again.stages] == STAGES

    # night 2: only the new file is read; only its documents are judged and scored
    shutil.copy(corpus[1], incoming)
    second = run_stages(config, STAGES, spark=spark, run_date="2026-11-02")
    ingest = second.stages[0]
    assert ingest.details["files"] == 1 and ingest.details["files_seen_before"] == 1
    bronze_sizes.append(store.read("bronze").count())
    assert second.stages[1].docs_in == bronze_sizes[1] - bronze_sizes[0]

    # night 3 crashes inside quality, after quality_scores was committed and before filtered
    shutil.copy(corpus[2], incoming)
    real_write = TableStore.write

    def crashing_write(self, df, name, **kwargs):
        if name == "filtered" and kwargs.get("run_id") == "nightly-2026-11-03":
            raise Crash("disk full (injected)")
        return real_write(self, df, name, **kwargs)

    monkeypatch.setattr(TableStore, "write", crashing_write)
    with pytest.raises(Crash):
        run_stages(config, STAGES, spark=spark, run_date="2026-11-03")
    monkeypatch.setattr(TableStore, "write", real_write)
    failed = [row for row in _ledger(store) if row["run_id"] == "nightly-2026-11-03"]
    assert {(row["stage"], row["status"]) for row in failed} == {("ingest", "succeeded"),
                                                                   ("dedup", "succeeded"),
                                                                   ("quality", "failed")}
    assert "disk full" in next(row["error"] for row in failed if row["status"] == "failed")

    resumed = run_stages(config, STAGES, spark=spark, run_date="2026-11-03")
    assert "resuming at stage quality" in capsys.readouterr().out
    night3 = [row for row in _ledger(store) if row["run_id"] == "nightly-2026-11-03"]
    attempts = {(row["stage"], row["attempt"], row["status"]) for row in night3}
    assert ("dedup", 2, "succeeded") not in attempts and ("quality", 2, "succeeded") in attempts
    assert ("mix", 1, "succeeded") in attempts
    assert [stage.stage for stage in resumed.stages] == STAGES

    # the accumulated tables: every bronze document decided once, scored once, kept ones filtered once
    bronze = _ids(store, "bronze")
    deduped, duplicates = _ids(store, "deduped"), _ids(store, "duplicates")
    scores = store.read("quality_scores")
    scored = [row.doc_id for row in scores.select("doc_id").collect()]
    kept = {row.doc_id for row in scores.where("drop_reason IS NULL").select("doc_id").collect()}
    filtered = _ids(store, "filtered")
    assert len(set(bronze)) == len(bronze) == 600  # each night's documents ingested exactly once
    assert sorted(deduped + duplicates) == sorted(bronze)
    assert sorted(scored) == sorted(deduped)
    assert sorted(filtered) == sorted(kept)
    mixed = {row.doc_id for row in store.read("mixture").select("doc_id").distinct().collect()}
    assert mixed <= kept and len(mixed) > len(kept) // 2  # rebuilt from all three nights
    per_night = {row["run_id"]: row["docs_out"] for row in _ledger(store)
                 if row["stage"] == "ingest" and row["status"] == "succeeded"}
    assert sum(per_night.values()) == len(bronze)
