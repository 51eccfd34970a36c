"""``curate``: one command line for every stage, the full run, and the demo corpus.

    curate run --config conf/local.yaml [--set key.path=value ...] [--run-id ID]
    curate ingest --config conf/local.yaml
    curate train-quality --config conf/local.yaml      (and train-topic)
    curate demo-data --out data/demo --docs 20000 --seed 7
    curate history --config conf/local.yaml --table bronze
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jobs.config import OPTIONAL_STAGES, STAGES, Config, ConfigError, load_config
from jobs.ledger import Attempt, Ledger, code_version, stage_inputs, versions
from jobs.preflight import PreflightError, check_java
from jobs.progress import stage_progress
from jobs.stats import Funnel, new_run_id
from udfs import storage

EXIT_CONFIG = 2
EXIT_ENVIRONMENT = 3


@dataclass(frozen=True)
class Stage:
    """``check(config, earlier)`` is fast and Spark-free; ``run(spark, config, run_id)`` does the work."""

    name: str
    check: Callable[..., None]
    run: Callable[..., Any]


def stage_for(name: str) -> Stage:
    if name in ("train_quality", "train_topic"):
        from jobs import train

        if name == "train_quality":
            return Stage(name, lambda config, earlier=(): train.check_quality(config), train.run_quality)
        return Stage(name, lambda config, earlier=(): train.check_topic(config), train.run_topic)
    modules = {"ingest": "jobs.ingest", "dedup": "jobs.dedup", "quality": "jobs.quality", "mix": "jobs.mix"}
    if name not in modules:
        raise ConfigError(f"unknown stage {name!r}; known: {', '.join((*STAGES, *OPTIONAL_STAGES))}",
                          key="run.stages")
    module = importlib.import_module(modules[name])
    return Stage(name, module.check, module.run)


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config file (see conf/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override any config key, e.g. --set ingest.max_text_bytes=200000")
    parser.add_argument("--run-id", default=None,
                        help="reuse a run id to retry a run: writes it already committed are skipped")


def run_id_for(config: Config, run_date: str | None, run_id: str | None) -> str:
    """A run date names the run (``<run.name>-<date>``), so a scheduler's retry is the same run."""
    if run_date is not None:
        try:
            dt.date.fromisoformat(run_date)
        except ValueError:
            raise ConfigError(f"--run-date must be YYYY-MM-DD, got {run_date!r}",
                              source="--run-date") from None
        return f"{config.run.name}-{run_date}"
    return run_id or new_run_id()


def run_stages(config: Config, stages: Sequence[str], run_id: str | None = None,
               spark: Any = None, run_date: str | None = None) -> Funnel:
    """Run stages in order on one SparkSession and record each attempt in the run ledger.

    Stages this run already finished are skipped: a failed run resumes at its first unfinished stage and
    a finished run does nothing. Returns the funnel (also saved in the run folder)."""
    from jobs.spark import get_spark
    from jobs.tables import open_store

    run_id = run_id_for(config, run_date, run_id)
    planned = [stage_for(stage) for stage in stages]
    for position, stage in enumerate(planned):  # config, input and model problems surface before Spark starts
        stage.check(config, [earlier.name for earlier in planned[:position]])
    spark = spark or get_spark(config.spark)
    options = config.output.storage_options
    store = open_store(spark, config.output.root, config.tables, options)
    ledger = Ledger(store, config.tables.run_ledger, config.tables.ingested_files)
    finished = ledger.finished_stages(run_id)
    first = next((index for index, stage in enumerate(planned) if stage.name not in finished), len(planned))
    run_dir = storage.join(config.output.root, "runs", run_id)
    previous = Funnel.load(run_dir, options)
    funnel = Funnel(run_id=run_id, config_hash=config.config_hash(),
                    stages=[result for result in (previous.stages if previous else [])
                            if result.stage in {stage.name for stage in planned[:first]}])
    if first == len(planned):
        print(f"run {run_id}: every stage already finished; nothing to do")
        return funnel
    if first:
        print(f"run {run_id}: resuming at stage {planned[first].name} "
              f"({', '.join(stage.name for stage in planned[:first])} already finished)")
    storage.write_bytes(storage.join(run_dir, "config.json"), config.model_dump_json(indent=2).encode(),
                        options)
    version = code_version()
    for stage in planned[first:]:
        inputs = dict(versions(store, stage_inputs(config, stage.name)))
        attempt = Attempt(run_id, run_date, stage.name, ledger.next_attempt(run_id, stage.name),
                          config.config_hash(), version, inputs)
        started = time.monotonic()
        try:
            with stage_progress(spark, stage.name):
                result = stage.run(spark, config, run_id)
        except BaseException as exc:
            ledger.record(attempt.row("failed", error=f"{type(exc).__name__}: {exc}"[:2000]))
            funnel.save(run_dir, options)
            raise
        result.seconds = round(time.monotonic() - started, 2)
        ledger.record(attempt.row("succeeded", result))
        funnel.stages.append(result)
        funnel.save(run_dir, options)
    return funnel


def _print_funnel(funnel: Funnel, config: Config) -> None:
    print(funnel.render())
    print(f"tables: {storage.join(config.output.root, 'tables')}")
    print(f"funnel: {storage.join(config.output.root, 'runs', funnel.run_id, 'funnel.json')}")


def _cmd_run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    if args.dry_run:
        from jobs.plan import describe_plan

        print(describe_plan(config, config.run.stages, run_id_for(config, args.run_date, args.run_id)))
        return 0
    check_java()
    funnel = run_stages(config, config.run.stages, args.run_id, run_date=args.run_date)
    _print_funnel(funnel, config)
    if args.report:
        from jobs.report import write_report

        print(f"report: {write_report(config, funnel.run_id)}")
    return 0


def _cmd_stage(stage: str) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        config = load_config(args.config, args.overrides)
        check_java()
        funnel = run_stages(config, [stage], args.run_id)
        _print_funnel(funnel, config)
        return 0

    return command


def _cmd_history(args: argparse.Namespace) -> int:
    from jobs.spark import get_spark
    from jobs.tables import open_store

    config = load_config(args.config, args.overrides)
    check_java()
    spark = get_spark(config.spark)
    store = open_store(spark, config.output.root, config.tables, config.output.storage_options)
    for entry in store.history(args.table):
        print(f"{entry.version:>5}  {entry.timestamp:%Y-%m-%d %H:%M:%S}  {entry.operation:<14} "
              f"run={entry.run_id or '-'}  tag={entry.tag or '-'}")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from jobs.audit import explain

    print(explain(load_config(args.config, args.overrides), args.doc_id))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from jobs.report import write_report

    print(f"report: {write_report(load_config(args.config, args.overrides), args.run)}")
    return 0


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from udfs.demo_corpus import DemoSpec, write_demo_corpus

    spec = DemoSpec(docs=args.docs, seed=args.seed, shard_docs=args.shard_docs,
                    reference_docs=args.reference_docs)
    summary = write_demo_corpus(args.out, spec)
    print(f"wrote {summary['records']:,} records ({summary['documents']:,} documents, "
          f"{summary['malformed']:,} malformed lines) in {summary['shards']} shards to {args.out}")
    print(f"ground truth: {storage.join(args.out, 'truth')}")
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

    for stage in STAGES:
        stage_parser = commands.add_parser(stage, help=f"run only the {stage} stage")
        _add_config_arguments(stage_parser)
        stage_parser.set_defaults(handler=_cmd_stage(stage))
    for stage, aliases, what in (("train_quality", [], "the fastText quality classifier (train.quality)"),
                                 ("train_topic", ["train-domain"], "the fastText topic/domain classifier "
                                                                   "(train.topic)")):
        stage_parser = commands.add_parser(stage.replace("_", "-"), aliases=aliases,
                                           help=f"train {what}; writes the model and its JSON card")
        _add_config_arguments(stage_parser)
        stage_parser.set_defaults(handler=_cmd_stage(stage))

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
    demo.set_defaults(handler=_cmd_demo_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"curate: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except PreflightError as exc:
        print(f"curate: {exc}", file=sys.stderr)
        return EXIT_ENVIRONMENT


def stage_main(stage: str, argv: Sequence[str] | None = None) -> int:
    """Entry point of ``spark-submit jobs/<stage>.py --config FILE``."""
    return main([stage.replace("_", "-"), *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
