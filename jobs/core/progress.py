"""Console progress of a running stage: Spark stage, % of tasks done, and an ETA.

A daemon thread polls Spark's status tracker; a line goes to stderr every ``interval`` seconds while
tasks run (on a terminal it rewrites one line). Nothing is printed for stages that finish quickly.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def progress_line(stage: str, done: int, total: int, elapsed: float) -> str:
    """``[dedup] 45% (9/20 tasks), 12s elapsed, ETA 15s``; the ETA assumes the remaining tasks take as
    long as the finished ones did."""
    share = done / total if total else 0.0
    eta = f", ETA {elapsed * (1 - share) / share:.0f}s" if 0 < share < 1 else ""
    return f"[{stage}] {100 * share:.0f}% ({done}/{total} tasks), {elapsed:.0f}s elapsed{eta}"


@contextmanager
def stage_progress(spark: Any, stage: str, interval: float = 10.0) -> Iterator[None]:
    tracker = spark.sparkContext.statusTracker()
    stop = threading.Event()
    started = time.monotonic()
    interactive = sys.stderr.isatty()

    def poll() -> None:
        last = ""
        while not stop.wait(interval):
            done = total = 0
            for stage_id in tracker.getActiveStageIds():
                info = tracker.getStageInfo(stage_id)
                if info is not None:
                    done += info.numCompletedTasks
                    total += info.numTasks
            if not total:
                continue
            line = progress_line(stage, done, total, time.monotonic() - started)
            if line != last:
                sys.stderr.write(("\r" + line) if interactive else line + "\n")
                sys.stderr.flush()
                last = line

    thread = threading.Thread(target=poll, name=f"progress-{stage}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=1)
        if interactive:
            sys.stderr.write("\r\033[K")
