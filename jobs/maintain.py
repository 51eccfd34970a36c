"""Table maintenance: compact small files, then VACUUM what no version in the reproducibility window needs.

Nightly incremental runs add a few small files per table per night; reads slow down with their number and
storage grows with every replaced file. ``curate maintain`` (or ``maintain`` at the end of ``run.stages``)
runs under the same run lock and ledger as every stage, so it never races a writer. Versions younger than
``maintain.retention_hours`` stay readable (time travel, ``curate explain``); older ones may lose files.
"""

from __future__ import annotations

from dataclasses import asdict

from jobs.core.config import ConfigError
from jobs.core.result import StageResult
from jobs.core.stage import Stage, StageContext


def table_names(ctx: StageContext) -> list[str]:
    wanted = ctx.config.maintain.tables
    return list(wanted) if wanted is not None else list(ctx.tables.names().values())


def check(ctx: StageContext) -> None:
    unknown = sorted(set(ctx.config.maintain.tables or ()) - set(ctx.tables.names().values()))
    if unknown:
        raise ConfigError(f"maintain.tables names tables this config does not have: {', '.join(unknown)}",
                          key="maintain.tables")


def run(ctx: StageContext) -> StageResult:
    retention_hours = ctx.config.maintain.retention_hours
    done = {}
    for name in table_names(ctx):
        if ctx.store.exists(name):
            done[name] = ctx.store.maintain(name, retention_hours=retention_hours, run_id=ctx.run_id)
    details = {"retention_hours": retention_hours,
               "tables": {name: {key: value for key, value in asdict(result).items() if key != "table"}
                          for name, result in done.items()}}
    return StageResult("maintain", 0, 0, tables={name: result.version for name, result in done.items()},
                       details=details)


STAGE = Stage("maintain", check, run)
