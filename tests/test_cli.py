"""The command line as users run it: exit codes, one-line errors, spark-submit entry points."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import inputs
from tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent


def _curate(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "curate"), *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


def _config_file(tmp_path: Path, **overrides: object) -> Path:
    data = {"input": {"paths": [str(tmp_path / "in" / "*")], "source": "cli"},
            "output": {"root": str(tmp_path / "out")}, "spark": {"master": "local[1]"},
            "ingest": {"max_text_bytes": inputs.MAX_TEXT_BYTES}}
    data.update(overrides)
    path = tmp_path / "conf.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("extra", "set_args", "fragment"),
    [
        ({"bogus": 1}, [], "'bogus': unknown key"),
        ({}, ["--set", "ingest.batch_rows=many"], "'ingest.batch_rows'"),
        ({}, ["--set", f"input.paths=[{'/nonexistent/dir/*.jsonl'}]"], "no input files match"),
    ],
)
def test_config_errors_exit_2_with_one_line_and_no_traceback(tmp_path, extra, set_args, fragment):
    config = _config_file(tmp_path, **extra)
    result = _curate("run", "--config", str(config), *set_args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and str(config) in lines[0]
    assert "Traceback" not in result.stderr


def _fake_java(folder: Path, version_line: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "java"
    script.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    script.chmod(0o755)
    return folder


@pytest.mark.parametrize(
    ("java_line", "fragment"),
    [(None, "no 'java' was found"), ('openjdk version "11.0.21" 2023-10-17', "is Java 11"),
     ('java version "1.8.0_392"', "is Java 8")],
)
def test_missing_or_old_java_stops_with_one_line(tmp_path, java_line, fragment):
    folder = tmp_path / "bin"
    if java_line:
        _fake_java(folder, java_line)
    else:
        folder.mkdir()
    env = {"PATH": str(folder), "HOME": str(tmp_path)}
    for command in ([sys.executable, str(REPO_ROOT / "jobs" / "core" / "preflight.py")],
                    [str(BIN / "curate"), "run", "--config", str(REPO_ROOT / "conf" / "local.yaml")]):
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60)
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_preflight_accepts_java_17(tmp_path):
    folder = _fake_java(tmp_path / "bin", 'openjdk version "17.0.15" 2025-04-15')
    env = {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, str(REPO_ROOT / "jobs" / "core" / "preflight.py")], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_spark_submit_runs_the_ingest_job_from_a_checkout(tmp_path):
    """``spark-submit jobs/run.py --stage ingest --config FILE``: the same job, launched the cluster way."""
    spark_submit = shutil.which("spark-submit", path=str(BIN))
    assert spark_submit, "pyspark installs bin/spark-submit"
    (tmp_path / "in").mkdir()
    inputs.write_jsonl(tmp_path / "in" / "a.jsonl")
    config = _config_file(tmp_path)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    result = subprocess.run(
        [spark_submit, "--master", "local[1]", "--conf", "spark.ui.enabled=false",
         str(REPO_ROOT / "jobs" / "run.py"), "--stage", "ingest", "--config", str(config), "--run-id",
         "submitted"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "funnel for run submitted" in result.stdout
    funnel = json.loads((tmp_path / "out" / "runs" / "submitted" / "funnel.json").read_text())
    stage = funnel["stages"][0]
    kinds = [k for k, _ in inputs.JSONL_LINES]
    assert stage["docs_in"] == len(kinds) and stage["docs_out"] == kinds.count("document")


def test_demo_data_command_writes_corpus_and_truth(tmp_path):
    result = _curate("demo-data", "--out", str(tmp_path / "demo"), "--docs", "300", "--seed", "3",
                     "--shard-docs", "100")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "demo").glob("*.jsonl.gz")) == [
        "shard-00000.jsonl.gz", "shard-00001.jsonl.gz", "shard-00002.jsonl.gz"]
    summary = json.loads((tmp_path / "demo" / "truth" / "summary.json").read_text())
    assert summary["documents"] == 300


def test_training_commands_and_their_alias_are_registered():
    from jobs.cli import build_parser

    parser = build_parser()
    for command in ("train-quality", "train-topic", "train-domain"):
        args = parser.parse_args([command, "--config", "conf/local.yaml"])
        assert callable(args.handler)
