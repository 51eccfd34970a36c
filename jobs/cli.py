"""``curate``: one command line for every stage, the full run, and the demo corpus.

    curate run --config conf/local.yaml [--set key.path=value ...] [--run-id ID]
    curate ingest --config conf/local.yaml
    curate train-quality --config conf/local.yaml      (and train-topic)
    curate demo-data --out data/demo --docs 20000 --seed 7
    curate history --config conf/local.yaml --table bronze
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jobs.config import OPTIONAL_STAGES, STAGES, Config, ConfigError, load_config
from jobs.preflight import PreflightError, check_java
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


def run_stages(config: Config, stages: Sequence[str], run_id: str | None = None,
               spark: Any = None) -> Funnel:
    """Run stages in order on one SparkSession; returns the funnel (also saved in the run folder)."""
    from jobs.spark import get_spark

    run_id = run_id or new_run_id()
    planned = [stage_for(stage) for stage in stages]
    for position, stage in enumerate(planned):  # config, input and model problems surface before Spark starts
        stage.check(config, [earlier.name for earlier in planned[:position]])
    spark = spark or get_spark(config.spark)
    funnel = Funnel(run_id=run_id, config_hash=config.config_hash())
    run_dir = storage.join(config.output.root, "runs", run_id)
    storage.write_bytes(storage.join(run_dir, "config.json"),
                        config.model_dump_json(indent=2).encode(), config.output.storage_options)
    for stage in planned:
        started = time.monotonic()
        result = stage.run(spark, config, run_id)
        result.seconds = round(time.monotonic() - started, 2)
        funnel.stages.append(result)
    funnel.save(run_dir, config.output.storage_options)
    return funnel


def _print_funnel(funnel: Funnel, config: Config) -> None:
    print(funnel.render())
    print(f"tables: {storage.join(config.output.root, 'tables')}")
    print(f"funnel: {storage.join(config.output.root, 'runs', funnel.run_id, 'funnel.json')}")


def _cmd_run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    check_java()
    funnel = run_stages(config, config.run.stages, args.run_id)
    _print_funnel(funnel, config)
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
