"""Ingest stage on Spark: every format, every malformed kind, counts reconcile, reruns are safe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F

from jobs import ingest, runner
from jobs.core.config import ConfigError
from jobs.core.stage import StageContext
from jobs.core.tables import open_store
from jobs.runner import stage_context
from tests import inputs
from tests.conftest import make_config


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    inputs.write_jsonl(folder / "plain.jsonl")
    inputs.write_jsonl(folder / "sub" / "gz.jsonl.gz")
    inputs.write_jsonl(folder / "zst.jsonl.zst")
    inputs.write_parquet(folder / "table.parquet")
    inputs.write_warc(folder / "crawl.warc.gz")
    return tmp_path


def _config(tmp_path: Path, **ingest_settings):
    return make_config(
        tmp_path,
        input={"paths": [str(tmp_path / "in")], "fields": {"crawl_time": "date"}},
        ingest={"max_text_bytes": inputs.MAX_TEXT_BYTES, **ingest_settings},
    )


def _by_file_and_reason(frame) -> dict[tuple[str, str | None], int]:
    rows = frame.groupBy("input_file", "reason").count().collect()
    return {(Path(r["input_file"]).name, r["reason"]): r["count"] for r in rows}


def test_bronze_plus_quarantine_equals_input_records_per_format_and_kind(spark, corpus):
    config = _config(corpus)
    result = ingest.run(stage_context(config, "run-a", spark))
    store = open_store(spark, config.output.root, config.tables)
    bronze, quarantine = store.read("bronze"), store.read("quarantine")

    expected: dict[tuple[str, str | None], int] = {}
    jsonl = inputs.expected_counts([k for k, _ in inputs.JSONL_LINES])
    for name, counts in [("plain.jsonl", jsonl), ("gz.jsonl.gz", jsonl), ("zst.jsonl.zst", jsonl),
                         ("table.parquet", inputs.expected_counts(inputs.PARQUET_KINDS)),
                         ("crawl.warc.gz", inputs.expected_counts(inputs.WARC_KINDS))]:
        expected.update({(name, reason): count for reason, count in counts.items()})

    kept = _by_file_and_reason(bronze.withColumn("reason", F.lit(None).cast("string")))
    dropped = _by_file_and_reason(quarantine)
    assert {**kept, **dropped} == expected
    total = sum(expected.values())
    assert result.docs_in == total and result.reconciles()
    kept_expected = sum(n for (_, reason), n in expected.items() if reason is None)
    assert result.docs_out == bronze.count() == kept_expected
    assert result.drops == {reason: sum(n for (_, r), n in expected.items() if r == reason)
                            for reason in {r for (_, r) in expected if r is not None}}


def test_bronze_schema_and_values(spark, corpus):
    config = _config(corpus)
    ingest.run(stage_context(config, "run-b", spark))
    bronze = open_store(spark, config.output.root, config.tables).read("bronze")
    assert bronze.columns == ingest.BRONZE_COLUMNS
    assert bronze.select("doc_id").distinct().count() == bronze.count()
    row = bronze.where("source_id = 'a' and input_file like '%plain.jsonl'").first()
    assert row.domain == "example.com" and row.run_id == "run-b" and row.source == "test"
    assert row.n_words == 4 and row.input_position == 1
    quarantine = DeltaTable(config.output.root + "/tables/quarantine").to_pyarrow_table()
    assert set(quarantine.column_names) == set(ingest.QUARANTINE_COLUMNS)


def test_rerun_with_the_same_run_id_does_not_duplicate(spark, corpus):
    config = _config(corpus, mode="append")
    first = ingest.run(stage_context(config, "nightly", spark))
    second = ingest.run(stage_context(config, "nightly", spark))
    store = open_store(spark, config.output.root, config.tables)
    assert second.details["bronze_skipped"] is True
    assert store.read("bronze").count() == first.docs_out
    assert store.version("bronze") == 0


def test_missing_inputs_are_a_config_error(tmp_path):
    config = make_config(tmp_path, input={"paths": [str(tmp_path / "nothing" / "*.jsonl")]})
    with pytest.raises(ConfigError, match=r"key 'input.paths'.*no input files match"):
        ingest.check(StageContext(config, "check"))


def test_colliding_relative_paths_are_a_config_error(tmp_path):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        inputs.write_jsonl(tmp_path / folder / "same.jsonl")
    config = make_config(tmp_path, input={"paths": [str(tmp_path / "x" / "*.jsonl"),
                                                    str(tmp_path / "y" / "*.jsonl")]})
    with pytest.raises(ConfigError, match="doc ids would collide"):
        ingest.check(StageContext(config, "check"))


def test_run_stages_writes_the_funnel(spark, corpus):
    config = _config(corpus)
    funnel = runner.run(config, ["ingest"], run_id="funnel-run", spark=spark)
    saved = json.loads((Path(config.output.root) / "runs" / "funnel-run" / "funnel.json").read_text())
    assert saved["run_id"] == "funnel-run" and saved["stages"][0]["stage"] == "ingest"
    stage = saved["stages"][0]
    assert stage["docs_in"] == stage["docs_out"] + sum(stage["drops"].values())
    assert "dropped invalid_json" in funnel.render()
    assert (Path(config.output.root) / "runs" / "funnel-run" / "config.json").exists()
