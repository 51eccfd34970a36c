"""Peak memory of one reader process on a decompression bomb: a ~1 MB .jsonl.gz holding 1 GB of zeros
without a newline between two good lines (what drove a Python worker to 3.5 GB before bounded reads).

    .venv/bin/python benchmarks/hostile_memory.py [--gigabytes 1]

Prints, for the bounded reader (udfs.readers.read_file) and for a naive ``for line in gzip_file`` loop,
the seconds and the peak resident memory of a fresh process (ru_maxrss), and their ratio.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO_ROOT

READER = """
import resource, sys, time
sys.path.insert(0, {root!r})
from udfs.readers import InputFile, ReaderSettings, count_reasons, read_file
started = time.perf_counter()
source = InputFile({path!r}, "bomb.jsonl.gz", "jsonl")
counts = count_reasons(list(read_file(source, ReaderSettings(source="b"))))
print(counts, time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

NAIVE = """
import gzip, resource, time
started = time.perf_counter()
lines = sum(1 for _ in gzip.open({path!r}))
print(lines, time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def write_bomb(path: Path, gigabytes: float) -> None:
    good = json.dumps({"text": "An ordinary page."}).encode()
    with gzip.open(path, "wb", compresslevel=9) as handle:
        handle.write(good + b"\n")
        zeros = b"\0" * (1 << 20)
        for _ in range(int(gigabytes * 1024)):
            handle.write(zeros)
        handle.write(b"\n" + good + b"\n")


def measure(script: str, path: Path) -> tuple[str, float, float]:
    output = subprocess.run([sys.executable, "-c", script.format(root=str(REPO_ROOT), path=str(path))],
                            capture_output=True, text=True, check=True).stdout.strip()
    result, seconds, peak_kib = output.rsplit(" ", 2)
    return result, float(seconds), int(peak_kib) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bomb.jsonl.gz"
        started = time.perf_counter()
        write_bomb(path, args.gigabytes)
        print(f"bomb: {path.stat().st_size / 1e6:.2f} MB compressed, {args.gigabytes:g} GB of zeros "
              f"(written in {time.perf_counter() - started:.0f} s)")
        bounded = measure(READER, path)
        print(f"bounded reader (curate): {bounded[0]} in {bounded[1]:.1f} s, peak {bounded[2]:,.0f} MB")
        naive = measure(NAIVE, path)
        print(f"naive line loop:         {naive[0]} lines in {naive[1]:.1f} s, peak {naive[2]:,.0f} MB")
        print(f"peak memory ratio naive / bounded: {naive[2] / bounded[2]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
