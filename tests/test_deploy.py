"""Deployment specs parse and point at real entry points; the whole pipeline runs through the
spark-submit wrapper on a real Spark standalone cluster (a master and two workers on loopback)."""

from __future__ import annotations

import ast
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from deltalake import DeltaTable

from jobs.core.config import SparkSettings
from tests.conftest import REPO_ROOT
from udfs.demo_corpus import DemoSpec, write_demo_corpus

DEPLOY = REPO_ROOT / "deploy"


def test_airflow_dag_runs_the_scheduled_date_with_safe_retries():
    source = (DEPLOY / "airflow" / "curate_nightly.py").read_text()
    tree = ast.parse(source)  # Airflow is not a dependency: check the file's structure
    calls = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name)}
    assert {"DAG", "BashOperator"} <= calls
    assert "--run-date {{ ds }}" in source and '"retries": 3' in source and "max_active_runs=1" in source
    assert "deploy/spark-submit.sh run" in source and "--dry-run" in source
    # "never skip a failed date": missed dates are run, a failed date holds the next one
    assert "catchup=True" in source and '"depends_on_past": True' in source


def test_databricks_job_runs_the_pipeline_entry_point():
    job = json.loads((DEPLOY / "databricks" / "curate_nightly.job.json").read_text())
    task = job["tasks"][0]
    assert (REPO_ROOT / task["spark_python_task"]["python_file"]).is_file()
    parameters = task["spark_python_task"]["parameters"]
    assert parameters[parameters.index("--run-date") + 1] == "{{job.start_time.iso_date}}"
    assert task["max_retries"] >= 1 and job["max_concurrent_runs"] == 1


def test_emr_step_submits_run_py_with_a_run_date():
    steps = json.loads((DEPLOY / "emr" / "curate_nightly.steps.json").read_text())
    args = steps[0]["HadoopJarStep"]["Args"]
    assert args[0] == "spark-submit" and any(arg.endswith("jobs/run.py") for arg in args)
    assert "--py-files" in args and "--run-date" in args and "--config" in args


def test_emr_cluster_is_the_spark_4_release_with_its_delta_enabled():
    cluster = json.loads((DEPLOY / "emr" / "curate_nightly.cluster.json").read_text())
    assert cluster["ReleaseLabel"] == "emr-spark-8.0.0"
    classifications = {entry["Classification"]: entry["Properties"] for entry in cluster["Configurations"]}
    assert classifications["delta-defaults"] == {"delta.enabled": "true"}
    assert classifications["spark-defaults"]["spark.pyspark.python"] == "/opt/curate/.venv/bin/python"
    bootstrap = cluster["BootstrapActions"][0]["ScriptBootstrapAction"]
    assert bootstrap["Path"].endswith("deploy/emr/bootstrap.sh")
    assert (DEPLOY / "emr" / "bootstrap.sh").is_file()
    assert bootstrap["Args"][0].endswith(".whl")
    subprocess.run(["bash", "-n", str(DEPLOY / "emr" / "bootstrap.sh")], check=True)


def test_nightly_config_maintains_its_tables_after_each_run():
    config = yaml.safe_load((REPO_ROOT / "conf" / "cluster.example.yaml").read_text())
    assert config["run"]["stages"][-1] == "maintain" and config["maintain"]["retention_hours"] == 168


def test_kubernetes_image_installs_the_wheel_and_keeps_the_spark_entry_point():
    lines = [line.strip() for line in (DEPLOY / "kubernetes" / "Dockerfile").read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert instructions[0].startswith("FROM apache/spark:4.0.") and "scala2.13" in instructions[0]
    assert any(line.startswith("COPY dist/curate-") and line.endswith(".whl /tmp/wheels/") for line in lines)
    assert any("pip install" in line and "/tmp/wheels/curate-*.whl" in line for line in lines)
    assert any("delta-spark_2.13" in line for line in lines) and any("hadoop-aws" in line for line in lines)
    assert instructions[-1] == 'ENTRYPOINT ["/opt/entrypoint.sh"]'
    manifest = yaml.safe_load((DEPLOY / "kubernetes" / "curate-nightly.sparkapplication.yaml").read_text())
    entry = manifest["spec"]["mainApplicationFile"].removeprefix("local://")
    assert f"COPY jobs/run.py {entry}" in lines


def test_kubernetes_spark_application():
    manifest = yaml.safe_load((DEPLOY / "kubernetes" / "curate-nightly.sparkapplication.yaml").read_text())
    assert manifest["kind"] == "SparkApplication" and manifest["spec"]["type"] == "Python"
    assert manifest["spec"]["mainApplicationFile"].endswith("jobs/run.py")
    assert "--run-date" in manifest["spec"]["arguments"]
    assert manifest["spec"]["restartPolicy"]["type"] == "OnFailure"


def test_wrapper_is_valid_bash():
    subprocess.run(["bash", "-n", str(DEPLOY / "spark-submit.sh")], check=True)


# ------------------------------------------------------------------------------- standalone cluster


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as response:
            state = json.loads(response.read())
    except OSError:
        return 0
    return sum(1 for worker in state.get("workers", []) if worker.get("state") == "ALIVE")


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory):
    """``spark-class ...Master`` and two ``...Worker`` processes (1 core, 1 GiB each) on 127.0.0.1."""
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    work = tmp_path_factory.mktemp("standalone")
    env = {**os.environ, "SPARK_HOME": str(spark_home), "SPARK_LOCAL_IP": "127.0.0.1",
           "PYSPARK_PYTHON": sys.executable, "SPARK_LOG_DIR": str(work / "logs")}
    port, ui_port = _free_port(), _free_port()
    spark_class = str(spark_home / "bin" / "spark-class")
    processes = [subprocess.Popen(
        [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
         "--webui-port", str(ui_port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    for index in range(2):
        processes.append(subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}",
             "--cores", "1", "--memory", "1g", "--webui-port", str(_free_port()),
             "--work-dir", str(work / f"worker-{index}")], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        deadline = time.monotonic() + 120
        while _alive_workers(ui_port) < 2:
            if time.monotonic() > deadline:
                pytest.fail("the standalone cluster did not come up with two workers in 120 s")
            time.sleep(1)
        yield {"master": f"spark://127.0.0.1:{port}", "spark_home": spark_home, "work": work}
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.mark.slow
def test_pipeline_runs_through_the_wrapper_on_a_standalone_cluster(standalone_cluster, tmp_path):
    corpus = tmp_path / "corpus"
    write_demo_corpus(str(corpus), DemoSpec(docs=400, seed=5, shard_docs=200, reference_docs=0, workers=1))
    config = tmp_path / "cluster.yaml"
    config.write_text(yaml.safe_dump({
        "run": {"name": "standalone", "stages": ["ingest", "dedup", "quality", "mix"]},
        "spark": {"conf": {"spark.sql.shuffle.partitions": 4, "spark.executor.memory": "768m"}},
        "input": {"paths": [str(corpus / "*.jsonl.gz")], "source": "demo", "fields": {"crawl_time": "date"}},
        "output": {"root": str(tmp_path / "out")},
        "tables": {"backend": "native"},
        "mix": {"domains": {"column": "lang"}},
    }))
    # The wrapper's --packages io.delta:delta-spark_2.13 is resolved by spark-submit itself (Ivy, from Maven
    # Central or the Ivy cache named here) and shipped to the executors.
    ivy = Path(os.path.expanduser(SparkSettings().jar_cache)) / "ivy"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable,
           "SPARK_HOME": str(standalone_cluster["spark_home"]), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_SUBMIT": str(standalone_cluster["spark_home"] / "bin" / "spark-submit")}
    env.pop("PYTHONPATH", None)
    completed = subprocess.run(
        [str(DEPLOY / "spark-submit.sh"), "run", "--config", str(config), "--run-date", "2026-11-21", "--",
         "--master", standalone_cluster["master"], "--conf", f"spark.pyspark.python={sys.executable}",
         "--conf", f"spark.jars.ivy={ivy}",
         "--driver-memory", "1g"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    funnel = json.loads((tmp_path / "out" / "runs" / "standalone-2026-11-21" / "funnel.json").read_text())
    assert [stage["stage"] for stage in funnel["stages"]] == ["ingest", "dedup", "quality", "mix"]
    assert funnel["stages"][0]["docs_out"] == 400
    history = DeltaTable(str(tmp_path / "out" / "tables" / "filtered")).history(1)[0]
    assert "Delta-Lake/" in history["engineInfo"]  # committed by delta-spark on the cluster, not delta-rs
    # executors ran our code from the --py-files zip and loaded the language-ID model once per Python worker
    logs = "".join(path.read_text(errors="replace")
                   for path in standalone_cluster["work"].rglob("stderr") if path.is_file())
    loads = [line for line in logs.splitlines() if line.startswith("curate: loaded fastText model")]
    assert loads, "no executor loaded the model"
    assert all("curate-py.zip" in line for line in loads)
    processes = [line.split(" in process ")[1].split()[0] for line in loads]
    assert len(processes) == len(set(processes))  # never twice in one process
