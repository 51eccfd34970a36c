"""The whole pipeline on each Delta backend over the same input: the same documents in every table, the
same funnel, and tables each backend can read back from the other."""

from __future__ import annotations

import contextlib
import io

import pytest

from jobs import runner
from jobs.core.config import TableSettings
from jobs.core.tables import open_store
from tests.conftest import make_config
from udfs.demo_corpus import DemoSpec, write_demo_corpus

STAGES = ["ingest", "dedup", "quality", "mix", "maintain"]
# Each table's row identity (the mix may repeat a document across epochs: its rows are (doc, epoch)).
ROW_KEYS = {"bronze": ["doc_id"], "quarantine": ["input_file", "input_position"], "deduped": ["doc_id"],
            "duplicates": ["doc_id", "keeper_doc_id"], "quality_scores": ["doc_id", "drop_reason"],
            "filtered": ["doc_id"], "mixture": ["doc_id", "phase", "copy_index"],
            "decisions": ["doc_id", "stage", "decision", "reason"]}


@pytest.fixture(scope="module")
def pipelines(spark, tmp_path_factory) -> dict[str, tuple]:
    corpus = tmp_path_factory.mktemp("both-corpus")
    write_demo_corpus(str(corpus), DemoSpec(docs=400, seed=5, shard_docs=200, reference_docs=0, workers=1))
    done = {}
    for backend in ("native", "embedded"):
        root = tmp_path_factory.mktemp(f"both-{backend}")
        config = make_config(root, input={"paths": [f"{corpus}/*.jsonl.gz"]}, tables={"backend": backend},
                             maintain={"retention_hours": 0, "tables": ["bronze", "filtered"]},
                             quality={"classifier": {"enabled": False},
                                      "topic_classifier": {"enabled": False}})
        with contextlib.redirect_stdout(io.StringIO()):
            funnel = runner.run(config, STAGES, spark=spark, run_id=f"both-{backend}")
        done[backend] = (config, funnel)
    return done


def _rows(store, table: str) -> set[tuple]:
    columns = ROW_KEYS[table]
    return {tuple(row) for row in store.read(table).select(*columns).collect()}


def test_both_backends_keep_and_drop_the_same_documents_for_the_same_reasons(pipelines):
    native, embedded = (pipelines[name][1] for name in ("native", "embedded"))
    assert [(s.stage, s.docs_in, s.docs_out, s.drops) for s in native.stages] == [
        (s.stage, s.docs_in, s.docs_out, s.drops) for s in embedded.stages]
    assert native.stages[0].docs_out >= 400 and native.stages[3].docs_out > 0


def test_every_table_holds_the_same_rows_on_both_backends(spark, pipelines):
    stores = {name: open_store(spark, config.output.root, config.tables)
              for name, (config, _funnel) in pipelines.items()}
    assert stores["native"].backend.name == "native" and stores["embedded"].backend.name == "embedded"
    for table in ROW_KEYS:
        assert _rows(stores["native"], table) == _rows(stores["embedded"], table), table
    # and each backend reads the other's tables exactly
    embedded_reader = open_store(spark, pipelines["native"][0].output.root, TableSettings(backend="embedded"))
    assert _rows(embedded_reader, "filtered") == _rows(stores["native"], "filtered")


def test_maintenance_ran_in_both_runs_and_the_ledger_recorded_it(spark, pipelines):
    for name, (config, funnel) in pipelines.items():
        maintain = funnel.stages[-1]
        assert maintain.stage == "maintain" and maintain.details["tables"]["bronze"]["version"] >= 1, name
        store = open_store(spark, config.output.root, config.tables)
        rows = [row for row in store.read("run_ledger").collect() if row.stage == "maintain"]
        assert sorted(row.status for row in rows) == ["running", "succeeded"], name
