"""``curate run --dry-run``: validate config, inputs and models, and print the plan with input counts.

Nothing is written and Spark is not started: tables are looked at through their Delta logs (delta-rs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobs.config import Config
from jobs.ledger import finished_stages, stage_inputs
from jobs.tables import peek_table, read_rows


def _log_rows(config: Config, name: str, columns: list[str]) -> list[dict[str, Any]]:
    return read_rows(config.output.root, name, config.output.storage_options, columns)


def describe_plan(config: Config, stages: Sequence[str], run_id: str) -> str:
    """Checks every stage (raising ConfigError like a real run would) and describes what would run."""
    from jobs.cli import stage_for
    from jobs.ingest import resolve_inputs

    planned = [stage_for(stage) for stage in stages]
    for position, stage in enumerate(planned):
        stage.check(config, [earlier.name for earlier in planned[:position]])
    finished = finished_stages(_log_rows(config, config.tables.run_ledger,
                                         ["run_id", "stage", "attempt", "status"]), run_id)
    to_run = [stage.name for stage in planned]
    first = next((index for index, name in enumerate(to_run) if name not in finished), len(to_run))
    lines = [f"dry run of {run_id} (nothing is written)",
             f"config: {config.source} (hash {config.config_hash()})",
             f"output: {config.output.root} (tables backend: {config.tables.backend})"]
    if first == len(to_run):
        lines.append(f"stages: {' -> '.join(to_run)}: all finished; a run would do nothing")
    else:
        done = f" (resume: {', '.join(to_run[:first])} finished)" if first else ""
        lines.append(f"stages: {' -> '.join(to_run[first:])}{done}")
    if "ingest" in to_run[first:]:
        files = resolve_inputs(config)
        total = sum(info.size for info in files)
        lines.append(f"input: {len(files):,} files, {total:,} bytes ({config.input.format} format)")
        if config.ingest.incremental:
            seen = {(row["path"], row["size"], row["etag"]) for row in
                    _log_rows(config, config.tables.ingested_files, ["path", "size", "etag"])}
            new = [info for info in files if (info.path, info.size, info.etag) not in seen]
            lines.append(f"  incremental: {len(new):,} new files ({sum(i.size for i in new):,} bytes), "
                         f"{len(files) - len(new):,} ingested before")
    names = dict.fromkeys(name for stage in to_run for name in stage_inputs(config, stage))
    names.update(dict.fromkeys([config.tables.bronze, config.tables.deduped, config.tables.filtered,
                                config.tables.mixture]))
    lines.append("tables:")
    for name in names:
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
