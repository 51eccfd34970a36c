"""``curate``: argument parsing for every command; the work is the runner's (or the core module named).

    curate run --config conf/local.yaml [--set key.path=value ...] [--run-id ID | --run-date YYYY-MM-DD]
    curate ingest --config conf/local.yaml                     (any stage: dedup, quality, mix, ...)
    curate train-quality --config conf/local.yaml              (and train-topic, train-toxicity)
    curate demo-data --out data/demo --docs 20000 --seed 7
    curate history --config conf/local.yaml --table bronze
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from jobs import runner
from jobs.core import storage
from jobs.core.config import Config, ConfigError, load_config
from jobs.core.errors import SetupError, StageFailed
from jobs.core.funnel import Funnel
from jobs.core.lock import ConcurrentRunError
from jobs.core.preflight import PreflightError, check_java
from jobs.core.redaction import redact
from jobs.core.tables import ConcurrentWriteError

EXIT_STAGE = 1
EXIT_CONFIG = 2
EXIT_ENVIRONMENT = 3
EXIT_CONCURRENT = 4
EXIT_CODES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int], ...] = (
    (ConfigError, EXIT_CONFIG),
    ((PreflightError, SetupError), EXIT_ENVIRONMENT),
    ((ConcurrentRunError, ConcurrentWriteError), EXIT_CONCURRENT),
    (StageFailed, EXIT_STAGE),
)
STAGE_COMMANDS = {"ingest": "ingest", "dedup": "dedup", "quality": "quality", "mix": "mix",
                  "train-quality": "train_quality", "train-topic": "train_topic",
                  "train-toxicity": "train_toxicity", "maintain": "maintain"}
ALIASES = {"train-topic": ["train-domain"]}


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config file (see conf/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override any config key, e.g. --set ingest.max_text_bytes=200000")
    parser.add_argument("--run-id", default=None,
                        help="reuse a run id to retry a run: writes it already committed are skipped")


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config, args.overrides)


def _print_funnel(funnel: Funnel, config: Config) -> None:
    print(funnel.render())
    print(f"tables: {storage.join(config.output.root, 'tables')}")
    print(f"funnel: {storage.join(config.output.root, 'runs', funnel.run_id, 'funnel.json')}")


def _cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.dry_run:
        print(runner.describe_plan(config, run_id=args.run_id, run_date=args.run_date))
        return 0
    check_java()
    funnel = runner.run(config, run_id=args.run_id, run_date=args.run_date, quiet_spark=True)
    _print_funnel(funnel, config)
    if args.report:
        from jobs.core.report import write_report

        print(f"report: {write_report(config, funnel.run_id)}")
    return 0


def _cmd_stage(name: str) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        config = _config(args)
        check_java()
        _print_funnel(runner.run(config, [name], run_id=args.run_id, quiet_spark=True), config)
        return 0

    return command


def _cmd_history(args: argparse.Namespace) -> int:
    config = _config(args)
    check_java()
    for entry in runner.table_history(config, args.table):
        print(f"{entry.version:>5}  {entry.timestamp:%Y-%m-%d %H:%M:%S}  {entry.operation:<14} "
              f"run={entry.run_id or '-'}  tag={entry.tag or '-'}")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from jobs.core.audit import explain

    print(explain(_config(args), args.doc_id))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from jobs.core.report import write_report

    print(f"report: {write_report(_config(args), args.run)}")
    return 0


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from udfs.demo_corpus import DemoSpec, write_demo_corpus

    spec = DemoSpec(docs=args.docs, seed=args.seed, shard_docs=args.shard_docs,
                    reference_docs=args.reference_docs, benchmark_items=args.benchmark_items,
                    toxicity_docs=args.toxicity_docs)
    summary = write_demo_corpus(args.out, spec)
    print(f"wrote {summary['records']:,} records ({summary['documents']:,} documents, "
          f"{summary['malformed']:,} malformed lines) in {summary['shards']} shards to {args.out}")
    plants: dict[str, int] = summary["plants"]  # type: ignore[assignment]
    print("planted pages: " + ", ".join(f"{kind} {count:,}" for kind, count in plants.items()))
    print(f"ground truth: {storage.join(args.out, 'truth')} (and reference/, benchmarks/, blocklist/, "
          "wordlists/ beside the shards)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curate",
                                     description="LLM pretraining data curation on Spark + Delta")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the configured stages in order and print the funnel")
    _add_config_arguments(run)
    run.add_argument("--run-date", default=None, metavar="YYYY-MM-DD",
                     help="the scheduled date: names the run, so a retry resumes it and a finished "
                          "date is a no-op")
    run.add_argument("--report", action="store_true", help="write the HTML report of the run at the end")
    run.add_argument("--dry-run", action="store_true",
                     help="validate config, inputs and models; print the plan and input counts; "
                          "write nothing")
    run.set_defaults(handler=_cmd_run)

    for command, name in STAGE_COMMANDS.items():
        what = (f"train the fastText {name.removeprefix('train_')} classifier; writes the model and its card"
                if name.startswith("train_") else f"run only the {name} stage")
        stage_parser = commands.add_parser(command, aliases=ALIASES.get(command, []), help=what)
        _add_config_arguments(stage_parser)
        stage_parser.set_defaults(handler=_cmd_stage(name))

    history = commands.add_parser("history",
                                  help="print a table's Delta versions and the runs that wrote them")
    _add_config_arguments(history)
    history.add_argument("--table", required=True)
    history.set_defaults(handler=_cmd_history)

    explain = commands.add_parser("explain", help="print every decision about one document, and why")
    _add_config_arguments(explain)
    explain.add_argument("doc_id")
    explain.set_defaults(handler=_cmd_explain)

    report = commands.add_parser("report", help="write an HTML page with plots of one run")
    _add_config_arguments(report)
    report.add_argument("--run", required=True, metavar="RUN_ID")
    report.set_defaults(handler=_cmd_report)

    demo = commands.add_parser("demo-data", help="write the synthetic demo corpus and its ground truth")
    demo.add_argument("--out", required=True)
    demo.add_argument("--docs", type=int, default=20_000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--shard-docs", type=int, default=5_000)
    demo.add_argument("--reference-docs", type=int, default=4_000,
                      help="size of the labelled reference set written to <out>/reference (0: none)")
    demo.add_argument("--benchmark-items", type=int, default=300,
                      help="items of <out>/benchmarks/demo_qa.jsonl, the benchmark some pages leak "
                           "(0: no leaks)")
    demo.add_argument("--toxicity-docs", type=int, default=3_000,
                      help="size of the labelled toxicity set <out>/reference/toxicity.jsonl.gz")
    demo.set_defaults(handler=_cmd_demo_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Every failure is one line on stderr and an exit code (see jobs/core/errors.py); tracebacks go to
    the run's log, or for errors outside a run to a file the line names."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("curate: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        for kinds, code in EXIT_CODES:
            if isinstance(exc, kinds):
                print(f"curate: {redact(str(exc))}", file=sys.stderr)
                return code
        print(f"curate: unexpected {type(exc).__name__}: {redact(_one_line(exc))} (traceback: "
              f"{_traceback_file(exc)})", file=sys.stderr)
        return EXIT_STAGE


def _one_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0][:500] if lines else ""


def _traceback_file(exc: BaseException) -> str:
    import tempfile
    import traceback

    handle, path = tempfile.mkstemp(prefix="curate-error-", suffix=".log")
    with open(handle, "w", encoding="utf-8") as stream:
        stream.write(redact("".join(traceback.format_exception(exc))))
    return path


if __name__ == "__main__":
    sys.exit(main())
