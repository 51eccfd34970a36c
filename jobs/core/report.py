"""``curate report --run RUN_ID``: a static HTML page with PNG plots of one run.

Plots: the funnel, drops by reason per stage, score histograms, duplicate cluster sizes and target vs
realised mixture tokens. Everything comes from what the run saved (funnel.json, the run ledger, the
duplicates table) and is written beside it: ``<output.root>/runs/<run_id>/report/index.html``.
"""

from __future__ import annotations

import html
import io
from collections import Counter
from typing import Any

from jobs.core import storage
from jobs.core.config import Config, ConfigError
from jobs.core.funnel import Funnel
from jobs.core.redaction import redact
from jobs.core.result import StageResult
from jobs.core.tables import read_rows


def _table_rows(config: Config, name: str, columns: list[str], run_id: str) -> list[dict[str, Any]]:
    return read_rows(config.output.root, name, config.output.storage_options, columns, {"run_id": run_id})


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _funnel_plot(stages: list[StageResult]) -> Any:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.2))
    names = [stage.stage for stage in stages]
    positions = range(len(names))
    axis.bar([p - 0.2 for p in positions], [s.docs_in for s in stages], width=0.4, label="docs in")
    axis.bar([p + 0.2 for p in positions], [s.docs_out for s in stages], width=0.4, label="docs out")
    axis.set_xticks(list(positions), names)
    axis.set_ylabel("documents")
    axis.set_title("Funnel")
    axis.legend()
    return figure


def _drops_plot(stages: list[StageResult]) -> Any:
    import matplotlib.pyplot as plt

    rows = [(f"{stage.stage}: {reason}", count) for stage in stages
            for reason, count in sorted(stage.drops.items(), key=lambda item: -item[1])[:10]]
    figure, axis = plt.subplots(figsize=(7, 0.3 * len(rows) + 1))
    axis.barh([label for label, _ in rows][::-1], [count for _, count in rows][::-1])
    axis.set_xlabel("documents dropped")
    axis.set_title("Drops by reason (top 10 per stage)")
    return figure


def _histograms_plot(histograms: dict[str, dict[str, int]]) -> Any:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(histograms), figsize=(3.4 * len(histograms), 3), squeeze=False)
    for axis, (name, bins) in zip(axes[0], sorted(histograms.items()), strict=True):
        axis.bar([float(edge) + 0.05 for edge in bins], list(bins.values()), width=0.09)
        axis.set_title(name)
        axis.set_xlim(0, 1)
    figure.suptitle("Score histograms (quality stage)")
    return figure


def _clusters_plot(sizes: Counter[int]) -> Any:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3))
    ordered = sorted(sizes.items())
    axis.bar([str(size) for size, _ in ordered], [count for _, count in ordered])
    axis.set_yscale("log")
    axis.set_xlabel("documents in the duplicate cluster (keeper included)")
    axis.set_ylabel("clusters")
    axis.set_title("Duplicate cluster sizes")
    return figure


def _mix_plot(manifest: list[dict[str, Any]]) -> Any:
    import matplotlib.pyplot as plt

    rows = [row for row in manifest if row["target_tokens"] or row["realised_tokens"]]
    labels = [f"{row['phase']}/{row['domain']}" for row in rows]
    figure, axis = plt.subplots(figsize=(max(7, 0.6 * len(rows)), 3.4))
    positions = range(len(rows))
    axis.bar([p - 0.2 for p in positions], [row["target_tokens"] for row in rows], width=0.4, label="target")
    axis.bar([p + 0.2 for p in positions], [row["realised_tokens"] for row in rows], width=0.4,
             label="realised")
    axis.set_xticks(list(positions), labels, rotation=45, ha="right")
    axis.set_ylabel("tokens")
    axis.set_title("Mixture: target vs realised tokens")
    axis.legend()
    return figure


def _html_table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(config: Config, run_id: str) -> str:
    """Writes the page and its PNGs; returns the page's path or URI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    options = config.output.storage_options
    run_dir = storage.join(config.output.root, "runs", run_id)
    funnel = Funnel.load(run_dir, options)
    if funnel is None:
        raise ConfigError(f"run {run_id} has no funnel.json under {run_dir}", key="--run")
    out = storage.join(run_dir, "report")
    figures: list[tuple[str, str, Any]] = [("funnel.png", "Funnel", _funnel_plot(funnel.stages))]
    if any(stage.drops for stage in funnel.stages):
        figures.append(("drops.png", "Drops by reason", _drops_plot(funnel.stages)))
    histograms = next((stage.details.get("histograms") for stage in funnel.stages
                       if stage.stage == "quality" and stage.details.get("histograms")), None)
    if histograms:
        figures.append(("scores.png", "Score histograms", _histograms_plot(histograms)))
    if any(stage.stage == "dedup" for stage in funnel.stages):
        keepers = Counter(row["keeper_doc_id"] for row in
                          _table_rows(config, config.tables.duplicates, ["keeper_doc_id", "run_id"], run_id))
        if keepers:
            figures.append(("clusters.png", "Duplicate cluster sizes",
                            _clusters_plot(Counter(count + 1 for count in keepers.values()))))
    manifest = next((stage.details.get("manifest") for stage in funnel.stages if stage.stage == "mix"), None)
    if manifest:
        figures.append(("mix.png", "Mixture", _mix_plot(manifest)))
    for name, _, figure in figures:
        storage.write_bytes(storage.join(out, name), _png(figure), options)
        plt.close(figure)

    ledger = _table_rows(config, config.tables.run_ledger,
                         ["run_id", "stage", "attempt", "status", "seconds", "code_version", "error"], run_id)
    sections = [f"<h1>curate run {html.escape(run_id)}</h1>",
                f"<p>config hash {html.escape(funnel.config_hash)}; "
                f"output {html.escape(config.output.root)}</p>",
                _html_table(["stage", "docs in", "docs out", "kept %", "seconds"],
                            [[s.stage, f"{s.docs_in:,}", f"{s.docs_out:,}",
                              f"{100 * s.docs_out / s.docs_in:.1f}" if s.docs_in else "-", s.seconds]
                             for s in funnel.stages])]
    if ledger:
        sections.append("<h2>Ledger</h2>" + _html_table(
            ["stage", "attempt", "status", "seconds", "code", "error"],
            [[r["stage"], r["attempt"], r["status"], r["seconds"], r["code_version"], r["error"] or ""]
             for r in sorted(ledger, key=lambda r: (r["stage"], r["attempt"]))]))
    for name, title, _ in figures:
        sections.append(f"<h2>{html.escape(title)}</h2><img src='{name}' alt='{html.escape(title)}'>")
    if manifest:
        sections.append("<h2>Mixture manifest</h2>" + _html_table(
            ["phase", "domain", "target tokens", "realised tokens", "error", "epochs", "feasible"],
            [[r["phase"], r["domain"], f"{r['target_tokens']:,.0f}", f"{r['realised_tokens']:,}",
              f"{r['relative_error']:+.4%}", f"{r['epochs']:.2f}", r["feasible"]] for r in manifest]))
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>curate report</title><style>"
            "body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style></head><body>"
            + "\n".join(sections) + "</body></html>")
    target = storage.join(out, "index.html")
    storage.write_bytes(target, redact(page).encode("utf-8"), options)
    return target
