"""S3 paths end to end against a real S3-protocol server on loopback (moto server mode)."""

from __future__ import annotations

import json

import pyarrow as pa
from deltalake import DeltaTable

from jobs import ingest
from jobs.cli import run_stages
from jobs.config import TableSettings, validate_config
from jobs.tables import open_store
from tests import inputs
from udfs import storage


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
    ingest.check(config)
    funnel = run_stages(config, ["ingest"], run_id="s3-run", spark=spark)
    kinds = [k for k, _ in inputs.JSONL_LINES]
    stage = funnel.stages[0]
    assert stage.docs_in == 2 * len(kinds) and stage.docs_out == 2 * kinds.count("document")
    store = open_store(spark, config.output.root, config.tables, s3_server)
    assert store.read("bronze").count() == stage.docs_out
    assert store.read("quarantine").count() == stage.docs_in - stage.docs_out
    client = storage.s3_client(s3_server)
    saved = client.get_object(Bucket=s3_bucket, Key="curated/runs/s3-run/funnel.json")["Body"].read()
    assert json.loads(saved)["stages"][0]["docs_out"] == stage.docs_out
