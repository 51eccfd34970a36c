"""The JVM packages of the embedded session: the versions chosen, the jar cache, and a machine with no route
to Maven (which still runs, on the embedded backend, saying so in one line)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

from deltalake import DeltaTable

from jobs.core import connector
from jobs.core.spark import delta_connector_available
from tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent


def test_default_packages_match_the_installed_delta_spark_and_pyspark_hadoop():
    delta, hadoop_aws = connector.default_packages()
    assert delta == f"io.delta:delta-spark_2.13:{importlib.metadata.version('delta-spark')}"
    pyspark_jars = os.listdir(Path(__import__("pyspark").__file__).parent / "jars")
    assert f"hadoop-client-api-{hadoop_aws.rsplit(':', 1)[1]}.jar" in pyspark_jars
    assert connector.packages_for([]) == [] and connector.packages_for(["a:b:1"]) == ["a:b:1"]
    assert connector.packages_for("auto", s3=False) == [delta]  # no 558 MB AWS SDK without an S3 path


def test_a_session_loads_hadoop_aws_only_for_a_config_that_names_s3(tmp_path):
    from jobs.core.config import validate_config
    from jobs.core.storage import mentions_s3

    local = validate_config({"input": {"paths": [str(tmp_path / "*.jsonl")]},
                             "output": {"root": str(tmp_path / "out")}}, source="test")
    assert not mentions_s3(local.model_dump())
    for path in ("input.paths", "output.root", "quality.classifier.model"):
        data = {"input": {"paths": [str(tmp_path / "*.jsonl")]}, "output": {"root": str(tmp_path / "out")}}
        section, key = path.rsplit(".", 1)
        target = data
        for part in section.split("."):
            target = target.setdefault(part, {})
        target[key] = ["s3a://bucket/in/*.jsonl"] if key == "paths" else "s3://bucket/x"
        assert mentions_s3(validate_config(data, source="test").model_dump()), path


def test_resolved_jars_are_remembered_only_while_every_file_exists(tmp_path):
    jars = [tmp_path / "a.jar", tmp_path / "b.jar"]
    for jar in jars:
        jar.write_bytes(b"PK")
    packages = ["g:a:1", "g:b:2"]
    assert connector.cached_jars(packages, str(tmp_path)) is None
    connector.record_jars(packages, str(tmp_path), ",".join(f"file://{jar}" for jar in jars))
    assert connector.cached_jars(list(reversed(packages)), str(tmp_path)) == [str(jar) for jar in jars]
    # a subset is served by a resolved superset (no route to Maven needed to drop a package)
    assert connector.cached_jars(["g:a:1"], str(tmp_path)) == [str(jar) for jar in jars]
    assert connector.cached_jars(["g:c:1"], str(tmp_path)) is None  # another package set
    jars[1].unlink()
    assert connector.cached_jars(packages, str(tmp_path)) is None
    assert connector.cached_jars(["g:a:1"], str(tmp_path)) is None


def test_the_test_session_loaded_the_connector(spark):
    assert delta_connector_available(spark)
    assert "hadoop-aws" in (spark.sparkContext.getConf().get("spark.jars", "") or "")


def test_no_route_to_maven_runs_on_the_embedded_backend_with_one_line(tmp_path):
    corpus = tmp_path / "in"
    corpus.mkdir()
    (corpus / "a.jsonl").write_text("".join(json.dumps({"id": str(i), "text": f"document number {i} here"})
                                            + "\n" for i in range(20)))
    # An empty jar cache and every HTTP(S) connection of the JVM sent to a closed port: Maven is unreachable.
    dead_proxy = " ".join(f"-D{scheme}.proxy{part}" for scheme in ("http", "https")
                          for part in ("Host=127.0.0.1", "Port=9"))
    env = {**os.environ, "JAVA_TOOL_OPTIONS": dead_proxy}
    result = subprocess.run(
        [str(BIN / "curate"), "run", "--config", str(REPO_ROOT / "conf" / "local.yaml"),
         "--run-id", "offline",
         "--set", "run.stages=[ingest]", "--set", f"input.paths=['{corpus}/*.jsonl']",
         "--set", f"output.root={tmp_path / 'out'}", "--set", "spark.master=local[1]",
         "--set", "spark.driver_memory=1g", "--set", f"spark.jar_cache={tmp_path / 'jars'}"],
        capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    said = [line for line in result.stderr.splitlines() if "Maven" in line]
    assert len(said) == 1 and said[0].startswith("curate: could not fetch io.delta:delta-spark_2.13:"), said
    assert "tables on the embedded backend" in said[0]
    bronze = DeltaTable(str(tmp_path / "out" / "tables" / "bronze"))
    assert bronze.to_pyarrow_table().num_rows == 20
    assert "delta-rs" in json.dumps(bronze.history(1)[0])  # committed by delta-rs, not delta-spark
