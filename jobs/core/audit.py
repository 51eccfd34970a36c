"""Per-document decisions: why a page was quarantined, dropped or kept, at which stage and run.

Every stage appends its decisions to one Delta table (``tables.decisions``), so "why was this page
dropped?" is one query: ``SELECT * FROM decisions WHERE doc_id = '...'``, or ``curate explain DOC_ID``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobs.core.config import Config
from jobs.core.tables import read_rows

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from jobs.core.stage import StageContext
    from jobs.core.tables import WriteResult

DECISION_COLUMNS = ["doc_id", "stage", "decision", "reason", "detail", "run_id"]


def decisions(frame: DataFrame, stage: str, decision: str | Column, reason: str | Column,
              detail: Column, run_id: str) -> DataFrame:
    """``frame`` (one row per document, with ``doc_id``) as decision rows."""
    from pyspark.sql import functions as F

    def value(item: str | Column) -> Column:
        return F.lit(item) if isinstance(item, str) else item

    return frame.select(F.col("doc_id"), F.lit(stage).alias("stage"), value(decision).alias("decision"),
                        value(reason).alias("reason"), detail.cast("string").alias("detail"),
                        F.lit(run_id).alias("run_id"))


def record(ctx: StageContext, rows: DataFrame, stage: str) -> WriteResult:
    """Append a stage's decisions (idempotent per run and stage, like every write)."""
    return ctx.store.write(rows.select(*DECISION_COLUMNS), ctx.tables.decisions, mode="append",
                           run_id=ctx.run_id, tag=f"decisions-{stage}")


def _rows(config: Config, name: str, doc_id: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """One document's rows, without Spark: explain answers in a second."""
    return read_rows(config.output.root, name, config.output.storage_options, columns, {"doc_id": doc_id})


def explain(config: Config, doc_id: str) -> str:
    """Everything the pipeline decided about one document, newest run first."""
    tables = config.tables
    lines = [f"document {doc_id}"]
    where = ["input_file", "input_position", "run_id"]
    origin = _rows(config, tables.bronze, doc_id, ["source", "url", "n_chars", *where])
    quarantined = _rows(config, tables.quarantine, doc_id, ["reason", "detail", *where])
    for row in origin:
        lines.append(f"  ingested by run {row['run_id']} from {row['input_file']} at {row['input_position']}"
                     f" ({row['n_chars']:,} chars), source {row['source']}, url {row['url']}")
    for row in quarantined:
        lines.append(f"  quarantined by run {row['run_id']}: {row['reason']} ({row['detail']}) "
                     f"in {row['input_file']} at {row['input_position']}")
    if not origin and not quarantined:
        lines.append("  not found in bronze or quarantine (doc ids are shown by curate and in every table)")
        return "\n".join(lines)
    made = sorted(_rows(config, tables.decisions, doc_id), key=lambda row: (row["run_id"], row["stage"]),
                  reverse=True)
    if not made:
        lines.append("  no decisions recorded yet (run dedup and quality)")
    for row in made:
        detail = f" ({row['detail']})" if row["detail"] else ""
        reason = f": {row['reason']}" if row["reason"] else ""
        lines.append(f"  {row['stage']:<8} {row['decision']}{reason}{detail}  [run {row['run_id']}]")
    copies = _rows(config, tables.mixture, doc_id, ["phase", "copy_index", "domain"])
    if copies:
        phases: dict[str, int] = {}
        for row in copies:
            phases[row["phase"]] = phases.get(row["phase"], 0) + 1
        domain = copies[0]["domain"]
        lines.append(f"  mix      sampled in domain {domain}: " +
                     ", ".join(f"{count} cop{'y' if count == 1 else 'ies'} in phase {phase}"
                               for phase, count in sorted(phases.items())))
    elif made and any(row["decision"] == "kept" for row in made):
        lines.append("  mix      not sampled into the current mixture")
    return "\n".join(lines)
