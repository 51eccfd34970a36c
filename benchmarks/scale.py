"""Ingest + dedup + quality at web-ish scale on one machine: seconds, documents per second per core and
the peak memory of the whole process tree (the curate driver, Spark's JVM and every Python worker) per
stage, from a `curate run` as a user runs it.

    .venv/bin/python benchmarks/scale.py --docs 1000000 [--set spark.driver_memory=4g ...]

The corpus is written once into --work (demo generator, seed 7). Memory is sampled from /proc every
0.5 s; each sample is attributed to the stage the run's log says was running at that moment.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from _common import REPO_ROOT, demo_corpus

STAGES = ["ingest", "dedup", "quality"]


def _tree_rss(root_pid: int) -> int:
    """Resident bytes of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, parent = int(entry), int(fields[1])
        children.setdefault(parent, []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, pending = 0, [root_pid]
    while pending:
        pid = pending.pop()
        total += rss.get(pid, 0)
        pending.extend(children.get(pid, []))
    return total


def _stage_windows(log: Path) -> dict[str, tuple[float, float]]:
    """stage -> (start, end) in epoch seconds, from the run log's started/succeeded/failed lines."""
    windows: dict[str, list[float]] = {}
    pattern = re.compile(r"^(\S+) stage (\w+) attempt \d+ (started|succeeded|failed)")
    for line in log.read_text().splitlines():
        match = pattern.match(line)
        if match:
            stamp = dt.datetime.fromisoformat(match.group(1)).timestamp()
            window = windows.setdefault(match.group(2), [stamp, stamp])
            window[1 if match.group(3) != "started" else 0] = stamp
    return {stage: (start, end) for stage, (start, end) in windows.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=REPO_ROOT / "data" / "bench")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated, of ingest,dedup,quality")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    stages = [stage for stage in args.stages.split(",") if stage]

    corpus = demo_corpus(args.work, args.docs, 7)
    out = args.work / f"scale-{args.docs}-out"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    run_id = f"scale-{int(time.time())}"
    command = [str(Path(sys.executable).parent / "curate"), "run",
               "--config", str(REPO_ROOT / "conf" / "local.yaml"), "--run-id", run_id,
               "--set", f"run.stages=[{', '.join(stages)}]",
               "--set", f"input.paths=['{corpus}/*.jsonl.gz']", "--set", f"output.root={out}",
               "--set", f"spark.master=local[{args.cores}]",
               "--set", "quality.classifier.enabled=false", "--set", "quality.topic_classifier.enabled=false"]
    for override in args.overrides:
        command += ["--set", override]
    samples: list[tuple[float, int]] = []
    started = time.time()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def sample() -> None:
        while process.poll() is None:
            samples.append((time.time(), _tree_rss(process.pid)))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    sampler.join()
    print(stdout)
    if process.returncode != 0:
        print(f"run failed with exit {process.returncode}: {stderr.strip()[-2000:]}")
    windows = _stage_windows(out / "runs" / run_id / "run.log")
    peak = max(rss for _, rss in samples) / 2**30
    print(f"\n{args.docs:,} documents on local[{args.cores}], overrides {args.overrides or 'none'}; "
          f"wall {time.time() - started:.0f} s; peak process tree {peak:.2f} GiB")
    print(f"{'stage':<10}{'seconds':>10}{'docs/s/core':>14}{'peak GiB':>10}")
    for stage in stages:
        if stage not in windows:
            continue
        start, end = windows[stage]
        peak = max((rss for stamp, rss in samples if start - 1 <= stamp <= end + 1), default=0)
        seconds = max(end - start, 1e-9)
        print(f"{stage:<10}{seconds:>10.0f}{args.docs / seconds / args.cores:>14,.0f}{peak / 2**30:>10.2f}")
    return process.returncode


if __name__ == "__main__":
    sys.exit(main())
