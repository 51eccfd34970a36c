"""S3 paths end to end against a real S3-protocol server on loopback (moto server mode)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from jobs import ingest, runner
from jobs.core import storage
from jobs.core.config import TableSettings, validate_config
from jobs.core.stage import StageContext
from jobs.core.tables import open_store
from tests import inputs


def test_embedded_tables_on_s3(spark, s3_server, s3_bucket):
    store = open_store(spark, f"s3://{s3_bucket}/lake", TableSettings(backend="embedded"), s3_server)
    frame = spark.createDataFrame([(i, "ab"[i % 2]) for i in range(6)], "id long, part string")
    assert store.write(frame, "t", mode="overwrite", run_id="r1", partition_by=["part"]).version == 0
    assert store.write(frame, "t", mode="append", run_id="r2", partition_by=["part"]).version == 1
    assert store.write(frame, "t", mode="append", run_id="r2", partition_by=["part"]).skipped
    assert store.read("t").count() == 12 and store.read("t", version=0).count() == 6
    remote = pa.table(DeltaTable(store.path("t"), storage_options=s3_server).to_pyarrow_table())
    assert remote.num_rows == 12
    assert [h.run_id for h in store.history("t")] == ["r1", "r2"]


def test_ingest_reads_from_and_writes_to_s3(spark, s3_server, s3_bucket, tmp_path):
    for name in ("a.jsonl", "b.jsonl.gz"):
        local = inputs.write_jsonl(tmp_path / name)
        storage.upload(str(local), f"s3://{s3_bucket}/raw/{name}", s3_server)
    config = validate_config({
        "input": {"paths": [f"s3://{s3_bucket}/raw/*"], "source": "s3", "storage_options": s3_server},
        "output": {"root": f"s3://{s3_bucket}/curated", "storage_options": s3_server},
        "ingest": {"max_text_bytes": inputs.MAX_TEXT_BYTES},
    })
    ingest.check(StageContext(config, "check"))
    funnel = runner.run(config, ["ingest"], run_id="s3-run", spark=spark)
    kinds = [k for k, _ in inputs.JSONL_LINES]
    stage = funnel.stages[0]
    assert stage.docs_in == 2 * len(kinds) and stage.docs_out == 2 * kinds.count("document")
    store = open_store(spark, config.output.root, config.tables, s3_server)
    assert store.read("bronze").count() == stage.docs_out
    assert store.read("quarantine").count() == stage.docs_in - stage.docs_out
    client = storage.s3_client(s3_server)
    saved = client.get_object(Bucket=s3_bucket, Key="curated/runs/s3-run/funnel.json")["Body"].read()
    assert json.loads(saved)["stages"][0]["docs_out"] == stage.docs_out


def test_workers_fetching_one_model_at_once_all_get_it_and_a_replaced_model_is_fetched_again(
        s3_server, s3_bucket, tmp_path):
    """Python workers of one executor resolve an s3:// model at the same moment (each downloaded into
    the same ``.part`` file: all but one failed to rename it); and a model retrained in place under the
    same key must not be served from the cache."""
    from concurrent.futures import ThreadPoolExecutor

    from jobs.core.models import resolve_model

    client = storage.s3_client(s3_server)
    uri = f"s3://{s3_bucket}/models/quality.bin"
    first = os.urandom(8 << 20)
    client.put_object(Bucket=s3_bucket, Key="models/quality.bin", Body=first)
    cache = str(tmp_path / "cache")
    with ThreadPoolExecutor(max_workers=8) as pool:
        paths = list(pool.map(lambda _: resolve_model(uri, s3_server, cache_dir=cache), range(8)))
    assert len(set(paths)) == 1 and Path(paths[0]).read_bytes() == first
    assert sorted(os.listdir(os.path.dirname(paths[0]))) == ["quality.bin", "quality.bin.etag"]  # no parts
    second = os.urandom(1 << 20)
    client.put_object(Bucket=s3_bucket, Key="models/quality.bin", Body=second)
    assert Path(resolve_model(uri, s3_server, cache_dir=cache)).read_bytes() == second


@pytest.mark.slow
def test_full_pipeline_on_s3(spark, s3_server, s3_bucket, tmp_path):
    """Input, Delta tables, models with their cards, the run folder, export shards and the report all on
    S3; the classifiers are trained from a Delta table on S3 within the same run."""
    from jobs.core.audit import explain
    from jobs.core.report import write_report
    from udfs.demo_corpus import DemoSpec, reference_page, write_demo_corpus

    spec = DemoSpec(docs=300, seed=9, shard_docs=150, reference_docs=300, workers=1)
    write_demo_corpus(str(tmp_path / "corpus"), spec)
    for shard in sorted((tmp_path / "corpus").glob("shard-*.jsonl.gz")):
        storage.upload(str(shard), f"s3://{s3_bucket}/raw/{shard.name}", s3_server)
    root = f"s3://{s3_bucket}/curated"
    store = open_store(spark, root, TableSettings(backend="embedded"), s3_server)
    pages = [reference_page(spec, index) for index in range(spec.reference_docs)]
    store.write(spark.createDataFrame([(p.text, p.domain, p.quality) for p in pages],
                                      "text string, domain string, quality string"),
                "reference", mode="overwrite", run_id="setup")
    config = validate_config({
        "run": {"name": "s3", "stages": ["ingest", "train_quality", "train_topic", "dedup", "quality",
                                         "mix"]},
        "input": {"paths": [f"s3://{s3_bucket}/raw/*.jsonl.gz"], "source": "demo",
                  "storage_options": s3_server, "fields": {"crawl_time": "date"}},
        "output": {"root": root, "storage_options": s3_server},
        "tables": {"backend": "embedded"},
        "train": {"quality": {"positives": {"table": "reference", "where": "quality = 'good'"},
                              "fasttext": {"epoch": 20}},
                  "topic": {"documents": {"table": "reference", "label_field": "domain"},
                            "fasttext": {"epoch": 20}}},
        "quality": {"classifier": {"enabled": True}, "topic_classifier": {"enabled": True}},
        "mix": {"domains": {"column": "topic"}, "export": {"enabled": True, "shard_docs": 100}},
    }, source="test")
    funnel = runner.run(config, config.run.stages, spark=spark, run_date="2026-11-21")
    assert [stage.stage for stage in funnel.stages] == config.run.stages
    assert all(stage.reconciles() for stage in funnel.stages)

    client = storage.s3_client(s3_server)
    keys = {obj["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket)
            for obj in page.get("Contents", [])}
    for key in ("curated/models/quality.bin", "curated/models/quality.bin.card.json",
                "curated/models/topic.bin", "curated/runs/s3-2026-11-21/funnel.json",
                "curated/runs/s3-2026-11-21/mix_manifest.json"):
        assert key in keys, key
    assert any(key.startswith("curated/export/s3-2026-11-21/phase=main/shard-") for key in keys)
    index = json.loads(client.get_object(Bucket=s3_bucket, Key="curated/export/s3-2026-11-21/index.json")
                       ["Body"].read())
    listed = {entry["path"] for shard in index["shards"] for entry in shard["files"].values()}
    assert {f"curated/export/s3-2026-11-21/{path}" for path in listed} <= keys
    for table in ("bronze", "deduped", "filtered", "mixture", "run_ledger", "decisions"):
        assert DeltaTable(store.path(table), storage_options=s3_server).version() >= 0
    filtered = store.read("filtered")
    assert {"quality_score", "topic"} <= set(filtered.columns) and filtered.count() > 0

    page = write_report(config, "s3-2026-11-21")
    assert page == f"{root}/runs/s3-2026-11-21/report/index.html"
    assert b"<img src='funnel.png'" in storage.read_bytes(page, s3_server)
    kept = filtered.first().doc_id
    assert "quality  kept" in explain(config, kept)


@pytest.mark.slow
def test_pipeline_on_the_native_backend_through_s3a(spark, s3_server, s3_bucket, tmp_path):
    """delta-spark reads and writes every table through hadoop-aws (s3a://) on the S3 server itself: no
    table file is mirrored locally, and delta-rs reads what delta-spark committed."""
    import os
    import tempfile

    from udfs.demo_corpus import DemoSpec, write_demo_corpus

    write_demo_corpus(str(tmp_path / "corpus"), DemoSpec(docs=300, seed=4, shard_docs=150, reference_docs=0,
                                                         workers=1))
    for shard in sorted((tmp_path / "corpus").glob("shard-*.jsonl.gz")):
        storage.upload(str(shard), f"s3://{s3_bucket}/raw/{shard.name}", s3_server)
    root = f"s3a://{s3_bucket}/curated"
    config = validate_config({
        "run": {"name": "s3a", "stages": ["ingest", "dedup", "quality", "mix", "maintain"]},
        "input": {"paths": [f"s3a://{s3_bucket}/raw/*.jsonl.gz"], "source": "demo",
                  "storage_options": s3_server, "fields": {"crawl_time": "date"}},
        "output": {"root": root, "storage_options": s3_server},
        "tables": {"backend": "native"},
        "mix": {"domains": {"column": "lang"}},
    }, source="test")
    mirror = os.path.join(tempfile.gettempdir(), "curate-s3-cache", s3_bucket)
    funnel = runner.run(config, config.run.stages, spark=spark, run_date="2026-11-21")
    assert [stage.stage for stage in funnel.stages] == config.run.stages
    assert funnel.stages[0].docs_out == 300 and all(stage.reconciles() for stage in funnel.stages)
    assert not os.path.exists(mirror)
    store = open_store(spark, root, config.tables, s3_server)
    assert store.backend.name == "native"
    for table in ("bronze", "deduped", "filtered", "mixture", "run_ledger", "decisions"):
        remote = DeltaTable(f"s3://{s3_bucket}/curated/tables/{table}", storage_options=s3_server)
        assert remote.to_pyarrow_table().num_rows == store.read(table).count(), table
        assert "Delta-Lake" in json.dumps(remote.history(1)[0]), table  # committed by delta-spark
    client = storage.s3_client(s3_server)
    saved = client.get_object(Bucket=s3_bucket, Key="curated/runs/s3a-2026-11-21/funnel.json")["Body"].read()
    assert [stage["stage"] for stage in json.loads(saved)["stages"]] == config.run.stages
