"""One SparkSession for the whole test session (built by the project's own factory)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.config import Config, SparkSettings, validate_config

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    from jobs.spark import get_spark

    session = get_spark(SparkSettings(
        master="local[2]",
        app_name="curate-tests",
        driver_memory="2g",
        conf={"spark.sql.shuffle.partitions": 4, "spark.default.parallelism": 4},
    ))
    yield session
    session.stop()


def make_config(tmp_path: Path, **sections: dict) -> Config:
    """A valid config rooted in tmp_path; sections override the defaults."""
    data: dict = {
        "input": {"paths": [str(tmp_path / "in" / "*")], "source": "test"},
        "output": {"root": str(tmp_path / "out")},
        "spark": {"master": "local[2]"},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return validate_config(data, source="test")


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", os.environ.get("TZ", "UTC"))
