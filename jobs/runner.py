"""The one runner: which stages exist, in which order they run, and everything around each run.

    config -> plan (check every stage, Spark-free) -> Spark -> resume point from the ledger
           -> per stage: ledger row, progress, timing, funnel -> run folder

``curate run``, ``curate <stage>``, ``spark-submit jobs/run.py [--stage NAME]`` and the dry run all come
through here. Adding a stage: write ``jobs/<name>.py`` with ``STAGE = Stage(name, check, run)`` and add one
line to :data:`REGISTRY`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from jobs.core import storage
from jobs.core.config import Config, ConfigError, check_name
from jobs.core.errors import SetupError, StageFailed
from jobs.core.faults import crash_point
from jobs.core.funnel import Funnel, new_run_id
from jobs.core.ledger import Attempt, Ledger, code_version, finished_stages, unseen_files
from jobs.core.lock import ConcurrentRunError, RunLock
from jobs.core.progress import stage_progress
from jobs.core.redaction import redact
from jobs.core.result import StageResult
from jobs.core.runlog import RunLog, process_output_to
from jobs.core.stage import Stage, StageContext
from jobs.core.tables import ConcurrentWriteError, peek_table, read_rows

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# The stages, in the order a full run takes them: name -> "module:attribute" of its Stage.
REGISTRY: dict[str, str] = {
    "ingest": "jobs.ingest:STAGE",
    "train_quality": "jobs.train:QUALITY",
    "train_topic": "jobs.train:TOPIC",
    "train_toxicity": "jobs.train:TOXICITY",
    "dedup": "jobs.dedup:STAGE",
    "quality": "jobs.quality:STAGE",
    "mix": "jobs.mix:STAGE",
    "maintain": "jobs.maintain:STAGE",
}


def stage(name: str) -> Stage:
    """The registered stage called ``name`` (a config error names the known ones)."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown stage {name!r}; known: {', '.join(REGISTRY)}", key="run.stages")
    module, attribute = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def run_id_for(config: Config, run_date: str | None = None, run_id: str | None = None) -> str:
    """A run date names the run (``<run.name>-<date>``), so a scheduler's retry is the same run."""
    if run_date is not None:
        try:
            dt.date.fromisoformat(run_date)
        except ValueError:
            raise ConfigError(f"--run-date must be YYYY-MM-DD, got {run_date!r}",
                              source="--run-date") from None
        return f"{config.run.name}-{run_date}"
    if run_id is None:
        return new_run_id()
    try:
        return check_name(run_id, "--run-id")
    except ValueError as exc:
        raise ConfigError(str(exc), source="--run-id") from None


@dataclass(frozen=True)
class Plan:
    """The checked stages of one run and the context they share."""

    context: StageContext
    stages: list[Stage]

    @property
    def names(self) -> list[str]:
        return [planned.name for planned in self.stages]

    def context_for(self, position: int) -> StageContext:
        return self.context.for_stage(tuple(self.names[:position]))

    def first_unfinished(self, finished: set[str]) -> int:
        """Where a run resumes: the first stage whose latest attempt in this run did not succeed."""
        return next((index for index, name in enumerate(self.names) if name not in finished), len(self.names))


def plan(config: Config, names: Sequence[str], run_id: str, run_date: str | None = None) -> Plan:
    """Check every stage before anything starts: config, input and model problems surface here."""
    if not names:
        raise ConfigError("no stages to run", key="run.stages")
    planned = Plan(StageContext(config, run_id, run_date), [stage(name) for name in names])
    for position, entry in enumerate(planned.stages):
        entry.check(planned.context_for(position))
    return planned


def started(context: StageContext, spark: SparkSession | None = None) -> StageContext:
    """``context`` with Spark started (or joined) and the table store and ledger the stages share."""
    from jobs.core.spark import configure_s3a, get_spark
    from jobs.core.tables import open_store

    config = context.config
    try:
        session = spark or get_spark(config.spark, s3=storage.mentions_s3(config.model_dump()))
    except Exception as exc:  # a bad Spark setting, no JVM: the environment, not the pipeline
        raise SetupError(f"cannot start Spark: {_first_line(exc)}") from exc
    configure_s3a(session, [(config.output.root, config.output.storage_options)]
                  + [(path, config.input.storage_options) for path in config.input.paths])
    store = open_store(session, config.output.root, config.tables, config.output.storage_options)
    ledger = Ledger(store, config.tables.run_ledger, config.tables.ingested_files)
    return replace(context, session=session, table_store=store, run_ledger=ledger)


def stage_context(config: Config, run_id: str, spark: SparkSession | None = None,
                  run_date: str | None = None) -> StageContext:
    """A started context for calling one stage's ``run`` directly (tests, notebooks)."""
    return started(StageContext(config, run_id, run_date), spark)


def start(planned: Plan, spark: SparkSession | None = None) -> Plan:
    return Plan(started(planned.context, spark), planned.stages)


def table_history(config: Config, table: str) -> list[Any]:
    """A table's Delta versions and the runs that wrote them (``curate history``)."""
    return started(StageContext(config, "history")).store.history(table)


@contextlib.contextmanager
def _lock(config: Config, run_id: str) -> Iterator[RunLock]:
    """Hold the output root's run lock; a root that cannot be written is an environment error."""
    settings = config.run.lock
    lock = RunLock(config.output.root, run_id, config.output.storage_options, settings.lease_seconds,
                   settings.wait_seconds)
    try:
        lock.acquire()
    except ConcurrentRunError:
        raise
    except Exception as exc:
        raise SetupError(f"cannot take the run lock in output.root {config.output.root}: "
                         f"{_first_line(exc)}") from exc
    try:
        yield lock
    finally:
        lock.release()


def run(config: Config, names: Sequence[str] | None = None, run_id: str | None = None,
        run_date: str | None = None, spark: SparkSession | None = None, quiet_spark: bool = False) -> Funnel:
    """Run stages in order on one SparkSession, holding the output root's run lock, and record each
    attempt in the run ledger (a "running" row, then its outcome).

    Stages this run already finished are skipped: a failed run resumes at its first unfinished stage and
    a finished run does nothing. Returns the funnel (also saved in the run folder). Failures are one-line
    exceptions (see :mod:`jobs.core.errors`); their tracebacks go to ``runs/<run_id>/run.log``. With
    ``quiet_spark`` (the CLI), Spark's own output goes to ``runs/<run_id>/spark.log`` (local roots; a temp
    file for s3://), not to the terminal."""
    planned = plan(config, list(names or config.run.stages), run_id_for(config, run_date, run_id), run_date)
    with _lock(config, planned.context.run_id) as lock, _spark_output(planned.context, quiet_spark):
        planned = start(planned, spark)
        context = planned.context
        log = RunLog(context.run_dir, context.storage_options)
        abandoned = context.ledger.close_abandoned(context.run_id)
        if abandoned:
            log.write(f"closed abandoned attempts: {', '.join(abandoned)}")
        # every table a run may leave half-written files in (cleaned under the lock, before it starts)
        cleaned = context.store.clean_uncommitted(list(config.tables.names().values()))
        if cleaned:
            log.write(f"removed {cleaned} files of uncommitted writes left by earlier attempts")
        first = planned.first_unfinished(context.ledger.finished_stages(context.run_id))
        funnel = _resumed_funnel(planned, first)
        if first == len(planned.stages):
            print(f"run {context.run_id}: every stage already finished; nothing to do")
            return funnel
        if first:
            print(f"run {context.run_id}: resuming at stage {planned.names[first]} "
                  f"({', '.join(planned.names[:first])} already finished)")
        storage.write_bytes(storage.join(context.run_dir, "config.json"),
                            redact(json.dumps(config.redacted(), indent=2)).encode(), context.storage_options)
        version = code_version()
        for position in range(first, len(planned.stages)):
            lock.check()
            _run_stage(planned, position, funnel, version, log)
    return funnel


def _spark_output(context: StageContext, quiet: bool) -> contextlib.AbstractContextManager[None]:
    if not quiet:
        return contextlib.nullcontext()
    folder = (tempfile.mkdtemp(prefix="curate-spark-") if storage.is_s3(context.run_dir) else context.run_dir)
    return process_output_to(os.path.join(folder, "spark.log"))


def _resumed_funnel(planned: Plan, first: int) -> Funnel:
    """The funnel of this run so far: the results of the stages it already finished (from funnel.json,
    or from their ledger rows when the file is missing or damaged)."""
    context = planned.context
    done = set(planned.names[:first])
    previous = Funnel.load(context.run_dir, context.storage_options)
    if previous is not None:
        results = [result for result in previous.stages if result.stage in done]
    else:
        rows = [row for row in context.ledger.attempts(context.run_id) if row["status"] == "succeeded"]
        latest = {row["stage"]: row for row in sorted(rows, key=lambda row: row["attempt"])}
        results = [StageResult(name, int(latest[name]["docs_in"] or 0), int(latest[name]["docs_out"] or 0),
                               drops=json.loads(latest[name]["drops"] or "{}"),
                               seconds=float(latest[name]["seconds"] or 0))
                   for name in planned.names[:first] if name in latest]
    return Funnel(run_id=context.run_id, config_hash=context.config.config_hash(), stages=results)


def _run_stage(planned: Plan, position: int, funnel: Funnel, version: str, log: RunLog) -> None:
    """One stage: a "running" ledger row, then its outcome; its time; its funnel entry."""
    entry, context = planned.stages[position], planned.context_for(position)
    store, ledger = context.store, context.ledger
    inputs = {name: store.version(name) for name in entry.reads(context.config)}
    attempt = Attempt(context.run_id, context.run_date, entry.name,
                      ledger.next_attempt(context.run_id, entry.name), context.config.config_hash(), version,
                      inputs)
    ledger.record(attempt.row("running"))
    log.write(f"stage {entry.name} attempt {attempt.attempt} started")
    crash_point(f"stage:{entry.name}:started")
    started_at = time.monotonic()
    # Spark's UI and event log group this stage's jobs under the run and stage
    context.spark.sparkContext.setJobGroup(f"{context.run_id}:{entry.name}", f"curate {entry.name}")
    try:
        with stage_progress(context.spark, entry.name):
            result = entry.run(context)
    except BaseException as exc:
        log.failure(f"stage {entry.name} attempt {attempt.attempt} failed", exc)
        reason = redact(_resource_hint(exc, context) or _first_line(exc))
        ledger.record(attempt.row("failed", error=f"{type(exc).__name__}: {reason}"))
        funnel.save(context.run_dir, context.storage_options)
        if isinstance(exc, ConcurrentRunError | ConcurrentWriteError | KeyboardInterrupt | SystemExit):
            raise
        raise StageFailed(entry.name, reason, log.uri) from exc
    result.seconds = round(time.monotonic() - started_at, 2)
    ledger.record(attempt.row("succeeded", result))
    log.write(f"stage {entry.name} attempt {attempt.attempt} succeeded in {result.seconds:.1f} s: "
              f"{result.docs_in:,} in, {result.docs_out:,} out")
    funnel.stages.append(result)
    funnel.save(context.run_dir, context.storage_options)


def _first_line(exc: BaseException) -> str:
    """The one line worth showing of an exception: for a Java error (Py4J), its root cause."""
    text = str(exc).strip() or type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    causes = [line.removeprefix("Caused by: ") for line in lines if line.startswith("Caused by: ")]
    if causes:
        return causes[-1][:500]
    if lines and lines[0].startswith("An error occurred while calling") and len(lines) > 1:
        failure = lines[1].lstrip(": ")
        return failure.split("most recent failure: ")[-1][:500]
    return lines[0][:500] if lines else type(exc).__name__


MEMORY_SIGNS = ("OutOfMemoryError", "UNABLE_TO_ACQUIRE_MEMORY", "Java heap space", "GC overhead limit",
                "Python worker exited unexpectedly", "exceeding memory limits", "Container killed")


def _resource_hint(exc: BaseException, context: StageContext) -> str | None:
    """For a failure that is memory running out: which setting to raise, with the value it had."""
    text = str(exc)
    if not any(sign in text for sign in MEMORY_SIGNS):
        return None
    conf = context.spark.sparkContext.getConf()
    memory = conf.get("spark.executor.memory", None) or conf.get("spark.driver.memory", "1g")
    partitions = context.spark.conf.get("spark.sql.shuffle.partitions")
    return (f"ran out of memory ({_first_line(exc)[:200]}) with spark.driver.memory/executor.memory {memory} "
            f"and spark.sql.shuffle.partitions {partitions}: raise spark.driver_memory (embedded) or "
            "spark.executor.memory (cluster), or spark.sql.shuffle.partitions")


# ------------------------------------------------------------------------------------------ dry run


def _log_rows(config: Config, name: str, columns: list[str]) -> list[dict[str, Any]]:
    return read_rows(config.output.root, name, config.output.storage_options, columns)


def describe_plan(config: Config, names: Sequence[str] | None = None, run_id: str | None = None,
                  run_date: str | None = None) -> str:
    """``curate run --dry-run``: checks every stage (raising ConfigError like a real run would) and says
    what would run, without Spark and without writing: tables are read through their Delta logs."""
    planned = plan(config, list(names or config.run.stages), run_id_for(config, run_date, run_id), run_date)
    context = planned.context
    ledger_rows = _log_rows(config, config.tables.run_ledger, ["run_id", "stage", "attempt", "status"])
    first = planned.first_unfinished(finished_stages(ledger_rows, context.run_id))
    to_run = planned.names
    lines = [f"dry run of {context.run_id} (nothing is written)",
             f"config: {config.source} (hash {config.config_hash()})",
             f"output: {config.output.root} (tables backend: {config.tables.backend})"]
    if first == len(to_run):
        lines.append(f"stages: {' -> '.join(to_run)}: all finished; a run would do nothing")
    else:
        done = f" (resume: {', '.join(to_run[:first])} finished)" if first else ""
        lines.append(f"stages: {' -> '.join(to_run[first:])}{done}")
    if "ingest" in to_run[first:]:
        lines += _describe_inputs(context)
    names_read = dict.fromkeys(name for entry in planned.stages for name in entry.reads(config))
    names_read.update(dict.fromkeys([config.tables.bronze, config.tables.deduped, config.tables.filtered,
                                     config.tables.mixture]))
    lines.append("tables:")
    for name in names_read:
        found = peek_table(config.output.root, name, config.output.storage_options)
        state = ("absent" if found is None else
                 f"version {found[0]}, {found[1]:,} rows" if found[1] is not None else f"version {found[0]}")
        lines.append(f"  {name:<16} {state}")
    if config.quality.language.enabled and "quality" in to_run:
        lines.append(f"models: language ID {config.quality.language.model} (loaded and checked)")
    for kind, enabled in (("quality", config.quality.classifier.enabled),
                          ("topic", config.quality.topic_classifier.enabled)):
        if enabled and "quality" in to_run:
            lines.append(f"models: {kind} classifier {config.model_uri(kind)}")  # type: ignore[arg-type]
    return "\n".join(lines)


def _describe_inputs(context: StageContext) -> list[str]:
    from jobs.ingest import resolve_inputs

    config = context.config
    files = resolve_inputs(config)
    lines = [f"input: {len(files):,} files, {sum(info.size for info in files):,} bytes "
             f"({config.input.format} format)"]
    if config.ingest.incremental:
        ingested = _log_rows(config, config.tables.ingested_files, ["path", "size", "etag", "run_id"])
        new = unseen_files(files, ingested, context.run_id)
        lines.append(f"  incremental: {len(new):,} new files ({sum(i.size for i in new):,} bytes), "
                     f"{len(files) - len(new):,} ingested before")
    return lines

