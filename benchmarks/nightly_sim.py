"""Three simulated nights of the incremental pipeline: docs per night and seconds per stage, from the ledger.

    .venv/bin/python benchmarks/nightly_sim.py --docs-per-night 5000

Night n drops shard n of a demo corpus into the input folder and runs ``curate run --run-date``
(ingest, dedup, quality and mix, all incremental but mix). ``--crash-night 3`` makes that night fail
inside the quality stage (after quality_scores is committed, before filtered) and then re-runs the
date, as a scheduler's retry would.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from _common import REPO_ROOT  # noqa: F401  (puts the repository on sys.path)

from jobs import runner
from jobs.core.config import validate_config
from jobs.core.spark import get_spark
from jobs.core.tables import TableStore, open_store
from udfs.demo_corpus import DemoSpec, write_demo_corpus

STAGES = ["ingest", "dedup", "quality", "mix"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs-per-night", type=int, default=5000)
    parser.add_argument("--nights", type=int, default=3)
    parser.add_argument("--crash-night", type=int, default=3)
    parser.add_argument("--work", default=None)
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="curate-nightly-"))
    corpus, incoming = work / "corpus", work / "incoming"
    write_demo_corpus(str(corpus), DemoSpec(docs=args.docs_per_night * args.nights,
                                            shard_docs=args.docs_per_night, reference_docs=0))
    incoming.mkdir(parents=True, exist_ok=True)
    config = validate_config({
        "run": {"name": "nightly", "stages": STAGES},
        "input": {"paths": [str(incoming / "*.jsonl.gz")], "source": "demo",
                  "fields": {"crawl_time": "date"}},
        "output": {"root": str(work / "out")},
        "spark": {"master": "local[2]", "driver_memory": "6g", "conf": {"spark.sql.shuffle.partitions": 8}},
        "ingest": {"incremental": True, "max_text_bytes": 200_000},
        "dedup": {"incremental": True}, "quality": {"incremental": True},
        "mix": {"domains": {"column": "lang"}},
    }, source="benchmarks/nightly_sim.py")
    spark = get_spark(config.spark)
    store = open_store(spark, config.output.root, config.tables)
    real_write = TableStore.write
    for night, shard in enumerate(sorted(corpus.glob("shard-*.jsonl.gz")), start=1):
        shutil.copy(shard, incoming)
        date = f"2026-11-{night:02d}"
        started = time.perf_counter()
        if night == args.crash_night:
            def crashing_write(self, df, name, **kwargs):
                if name == "filtered":
                    raise RuntimeError("injected crash")
                return real_write(self, df, name, **kwargs)

            TableStore.write = crashing_write
            try:
                runner.run(config, STAGES, spark=spark, run_date=date)
            except RuntimeError as exc:
                print(f"night {night}: crashed as planned ({exc}) after "
                      f"{time.perf_counter() - started:.1f} s")
            finally:
                TableStore.write = real_write
        runner.run(config, STAGES, spark=spark, run_date=date)
        print(f"night {night}: done in {time.perf_counter() - started:.1f} s in all")

    ledger = sorted((row.asDict() for row in store.read("run_ledger").collect()),
                    key=lambda row: (row["run_id"], row["started_at"]))
    print(f"\n{'run':<20}{'stage':<9}{'try':>4}{'status':>11}{'docs in':>10}{'docs out':>10}{'seconds':>9}")
    for row in ledger:
        print(f"{row['run_id']:<20}{row['stage']:<9}{row['attempt']:>4}{row['status']:>11}"
              f"{row['docs_in'] if row['docs_in'] is not None else '-':>10}"
              f"{row['docs_out'] if row['docs_out'] is not None else '-':>10}{row['seconds']:>9.1f}")
    totals = {name: store.read(name).count() for name in ("bronze", "deduped", "filtered", "mixture")}
    print(f"\naccumulated: {', '.join(f'{name} {count:,}' for name, count in totals.items())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
