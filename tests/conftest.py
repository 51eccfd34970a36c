"""One SparkSession for the whole test session (built by the project's own factory)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.core.config import Config, SparkSettings, validate_config

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    from jobs.core.spark import get_spark

    session = get_spark(SparkSettings(
        master="local[2]",
        app_name="curate-tests",
        driver_memory="2g",
        conf={"spark.sql.shuffle.partitions": 4, "spark.default.parallelism": 4},
    ))
    yield session
    session.stop()


def make_config(tmp_path: Path, **sections: dict) -> Config:
    """A valid config rooted in tmp_path; sections override the defaults. Tables default to the embedded
    backend (quicker per commit); the native backend has its own suites (test_tables, test_backends, ...)."""
    data: dict = {
        "input": {"paths": [str(tmp_path / "in" / "*")], "source": "test"},
        "output": {"root": str(tmp_path / "out")},
        "spark": {"master": "local[2]"},
        "tables": {"backend": "embedded"},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return validate_config(data, source="test")


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", os.environ.get("TZ", "UTC"))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A real S3-protocol server (moto in server mode) in its own process on loopback.

    A separate process, not a thread: delta-rs blocks while holding the GIL, so an in-process server
    thread could never answer it.
    """
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=sink, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"moto server did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.1)
    options = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
    yield options
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture()
def s3_bucket(s3_server: dict[str, str], request: pytest.FixtureRequest) -> str:
    """A fresh bucket per test; returns its name."""
    from jobs.core.storage import s3_client

    name = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    s3_client(s3_server).create_bucket(Bucket=name)
    return name
