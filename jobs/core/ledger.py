"""The run ledger: a Delta table with one row per run, stage and attempt.

It is what makes ``curate run`` safe to retry from a scheduler: a stage whose latest attempt in this run
succeeded is not run again, a failed run resumes at its first unfinished stage, and a finished run is a
no-op. It also records which input files each run ingested (by path, size and etag), so a nightly run
ingests only what it has not seen.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.core.redaction import redact
from jobs.core.result import StageResult

if TYPE_CHECKING:
    from jobs.core.tables import TableStore

LEDGER_SCHEMA = ("run_id string, run_date string, stage string, attempt int, status string, "
                 "config_hash string, code_version string, input_versions string, output_versions string, "
                 "docs_in long, docs_out long, drops string, started_at timestamp, finished_at timestamp, "
                 "seconds double, error string")
FILES_SCHEMA = "path string, size long, etag string, run_id string"


def code_version() -> str:
    """``git describe`` of the checkout the code runs from, else the installed package version."""
    root = Path(__file__).resolve().parents[2]
    try:
        described = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
                                   capture_output=True, text=True, timeout=10, check=False)
        if described.returncode == 0 and described.stdout.strip():
            return "git:" + described.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return "curate " + version("curate")
    except PackageNotFoundError:
        return "unknown"


OUTCOMES = ("succeeded", "failed")  # an attempt starts with a "running" row and ends with one of these
ABANDONED = "abandoned: the attempt ended without recording an outcome (the process was killed or lost)"


def attempt_outcomes(ledger_rows: Sequence[Mapping[str, Any]], run_id: str) -> dict[tuple[str, int], str]:
    """(stage, attempt) -> its outcome, or "running" for an attempt with no outcome row (yet)."""
    outcomes: dict[tuple[str, int], str] = {}
    for row in ledger_rows:
        if row["run_id"] == run_id:
            key = (row["stage"], int(row["attempt"]))
            if row["status"] in OUTCOMES or key not in outcomes:
                outcomes[key] = row["status"]
    return outcomes


def finished_stages(ledger_rows: Sequence[Mapping[str, Any]], run_id: str) -> set[str]:
    """Stages whose latest attempt in ``run_id`` succeeded."""
    latest: dict[str, tuple[int, str]] = {}
    for (stage, attempt), status in attempt_outcomes(ledger_rows, run_id).items():
        if stage not in latest or attempt > latest[stage][0]:
            latest[stage] = (attempt, status)
    return {stage for stage, (_, status) in latest.items() if status == "succeeded"}


def unseen_files(files: Sequence[Any], ingested: Sequence[Mapping[str, Any]], run_id: str) -> list[Any]:
    """The files (with ``path``, ``size``, ``etag``) no other run has ingested in this version; a retried
    run sees its own files again, so its skipped writes leave nothing out."""
    seen = {(row["path"], row["size"], row["etag"]) for row in ingested if row["run_id"] != run_id}
    return [info for info in files if (info.path, info.size, info.etag) not in seen]


@dataclass
class Attempt:
    """One stage of one run, as it goes into the ledger."""

    run_id: str
    run_date: str | None
    stage: str
    attempt: int
    config_hash: str
    code_version: str
    input_versions: dict[str, int | None] = field(default_factory=dict)
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    def row(self, status: str, result: StageResult | None = None, error: str | None = None) -> tuple:
        finished = dt.datetime.now(dt.timezone.utc)
        return (self.run_id, self.run_date, self.stage, self.attempt, status, self.config_hash,
                self.code_version, json.dumps(self.input_versions, sort_keys=True),
                json.dumps(result.tables if result else {}, sort_keys=True),
                result.docs_in if result else None, result.docs_out if result else None,
                json.dumps(result.drops if result else {}, sort_keys=True),
                self.started_at.replace(tzinfo=None), finished.replace(tzinfo=None),
                round((finished - self.started_at).total_seconds(), 2), error)


class Ledger:
    def __init__(self, store: TableStore, table: str, files_table: str) -> None:
        self.store = store
        self.table = table
        self.files_table = files_table

    def attempts(self, run_id: str) -> list[dict[str, Any]]:
        if not self.store.exists(self.table):
            return []
        frame = self.store.read(self.table)
        return [row.asDict() for row in frame.where(frame.run_id == run_id).collect()]

    def finished_stages(self, run_id: str) -> set[str]:
        return finished_stages(self.attempts(run_id), run_id)

    def next_attempt(self, run_id: str, stage: str) -> int:
        return 1 + max((row["attempt"] for row in self.attempts(run_id) if row["stage"] == stage), default=0)

    def record(self, row: tuple) -> None:
        spark = self.store.spark
        row = (*row[:-1], None if row[-1] is None else redact(row[-1])[:2000])  # the error text
        # tag: each ledger row is its own idempotent write (run, stage, attempt, status)
        self.store.write(spark.createDataFrame([row], LEDGER_SCHEMA), self.table, mode="append",
                         run_id=row[0], tag=f"ledger-{row[2]}-{row[3]}-{row[4]}")

    def close_abandoned(self, run_id: str) -> list[str]:
        """Record a failed row for every attempt of this run that has a "running" row but no outcome:
        under the run lock, no such attempt can still be alive. Returns "stage #attempt" of each."""
        rows = self.attempts(run_id)
        closed = []
        for (stage, attempt), status in sorted(attempt_outcomes(rows, run_id).items()):
            if status != "running":
                continue
            started = next(row for row in rows if row["stage"] == stage and int(row["attempt"]) == attempt)
            dead = Attempt(run_id, started["run_date"], stage, attempt, started["config_hash"],
                           started["code_version"], json.loads(started["input_versions"] or "{}"),
                           started["started_at"].replace(tzinfo=dt.timezone.utc))
            self.record(dead.row("failed", error=ABANDONED))
            closed.append(f"{stage} #{attempt}")
        return closed

    def ingested_files(self) -> list[dict[str, Any]]:
        """Every (path, size, etag, run_id) row of the ingested-files table."""
        if not self.store.exists(self.files_table):
            return []
        return [row.asDict() for row in self.store.read(self.files_table).collect()]

    def record_files(self, files: Sequence[tuple[str, int, str]], run_id: str) -> None:
        spark = self.store.spark
        rows = [(path, size, etag, run_id) for path, size, etag in files]
        self.store.merge(spark.createDataFrame(rows, FILES_SCHEMA), self.files_table,
                         key=["path", "size", "etag"], run_id=run_id, tag="ingested-files")


def versions(store: TableStore, names: Sequence[str]) -> Mapping[str, int | None]:
    return {name: store.version(name) for name in names}
