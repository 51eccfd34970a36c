"""What a stage is: ``check(ctx)`` (fast, Spark-free, before anything starts) and ``run(ctx) -> StageResult``.

The runner builds one :class:`StageContext` per run and hands it to every stage, so a stage never rebuilds
the session, the table store or the ledger, and never times itself (the runner does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from jobs.core import storage
from jobs.core.config import Config
from jobs.core.result import StageResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from jobs.core.ledger import Ledger
    from jobs.core.tables import TableStore, WriteResult


def run_folder(config: Config, run_id: str) -> str:
    """Where a run keeps its files: funnel.json, config.json, the manifest, the report, the log."""
    return storage.join(config.output.root, "runs", run_id)


@dataclass(frozen=True)
class StageContext:
    """Everything a stage needs. ``earlier`` names the stages before this one in the same run (a stage may
    rely on what they will write). ``spark``, ``store`` and ``ledger`` exist once the runner has started
    Spark, i.e. in ``run`` but not in ``check``."""

    config: Config
    run_id: str
    run_date: str | None = None
    earlier: tuple[str, ...] = ()
    session: SparkSession | None = None
    table_store: TableStore | None = None
    run_ledger: Ledger | None = None

    @property
    def spark(self) -> SparkSession:
        if self.session is None:
            raise RuntimeError("Spark has not started: check() must not use ctx.spark")
        return self.session

    @property
    def store(self) -> TableStore:
        if self.table_store is None:
            raise RuntimeError("Spark has not started: check() must not use ctx.store")
        return self.table_store

    @property
    def ledger(self) -> Ledger:
        if self.run_ledger is None:
            raise RuntimeError("Spark has not started: check() must not use ctx.ledger")
        return self.run_ledger

    @property
    def tables(self) -> Any:
        return self.config.tables

    @property
    def run_dir(self) -> str:
        return run_folder(self.config, self.run_id)

    @property
    def storage_options(self) -> dict[str, str]:
        return dict(self.config.output.storage_options)

    def save(self, df: DataFrame, name: str, *, key: Sequence[str], incremental: bool) -> WriteResult:
        """A stage's output: the whole table replaced, or (incremental) only rows with new keys added, so
        a retried or concurrent run never adds a key twice."""
        if incremental:
            return self.store.merge(df, name, key=key, run_id=self.run_id)
        return self.store.write(df, name, mode="overwrite", run_id=self.run_id)

    def for_stage(self, earlier: tuple[str, ...]) -> StageContext:
        return replace(self, earlier=earlier)


@dataclass(frozen=True)
class Stage:
    """A registry entry: the stage's name, its Spark-free check and its run."""

    name: str
    check: Callable[[StageContext], None]
    run: Callable[[StageContext], StageResult]
    reads: Callable[[Config], list[str]] = field(default=lambda config: [])  # tables the ledger versions
