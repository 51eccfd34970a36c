"""Dedup speed: MinHash signature throughput per core against datasketch, and end-to-end near-duplicate
removal against datatrove's MinHash pipeline on the same data, both measured in this run.

    .venv/bin/python benchmarks/dedup_speed.py --docs 200000 --datatrove-python .venv-bench/bin/python

Part 1 (one core, same documents and shingles): curate ``fast`` signatures vs
``datasketch.MinHash.update_batch`` (target: >= 3x). Part 2: curate ingest + dedup on local[2] vs
datatrove's 4 stages (local executor, 2 workers, same n-grams, bands and rows), both reading the same
valid JSONL, with precision/recall of each against the ground truth (target: faster at equal or better
precision/recall). ``make bench-venv`` creates the datatrove virtualenv.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import orjson
import pyarrow as pa
from _common import REPO_ROOT, demo_corpus, print_scores, score_removals, truth_table

from udfs.demo_corpus import DemoSpec, iter_pages
from udfs.minhash import MinHashSpec, shingle_strings, signatures
from udfs.normalize import normalize


def signature_throughput(docs: int, num_perm: int) -> None:
    texts = [page.text for page in iter_pages(DemoSpec(docs=docs, seed=3, workers=1))]
    spec = MinHashSpec(num_perm=num_perm)
    batch = pa.array(texts)
    signatures(pa.array(texts[:200]), spec)  # warm-up

    started = time.perf_counter()
    for start in range(0, docs, 2048):
        signatures(batch.slice(start, 2048), spec)
    fast_seconds = time.perf_counter() - started

    from datasketch import MinHash

    normalized = normalize(batch, spec.normalization).to_pylist()
    shingles = [[gram.encode("utf-8") for gram in shingle_strings(text, spec)] for text in normalized]
    started = time.perf_counter()
    for grams in shingles:
        sketch = MinHash(num_perm=num_perm, seed=1)
        sketch.update_batch(grams)
    datasketch_seconds = time.perf_counter() - started

    started = time.perf_counter()
    for start in range(0, docs, 2048):
        signatures(batch.slice(start, 2048), MinHashSpec(num_perm=num_perm, hash_mode="datasketch"))
    compat_seconds = time.perf_counter() - started

    print(f"signatures, {docs:,} demo documents, {num_perm} permutations, one core:")
    print(f"  curate fast (normalise + shingle + hash + permute): {docs / fast_seconds:>9,.0f} docs/s")
    print(f"  curate datasketch-compatible mode:                  {docs / compat_seconds:>9,.0f} docs/s")
    print(f"  datasketch MinHash.update_batch (shingles given):   {docs / datasketch_seconds:>9,.0f} docs/s")
    print(f"  ratio fast / datasketch: {datasketch_seconds / fast_seconds:.2f}x (target >= 3x)")


def clean_copy(corpus: Path, target: Path) -> Path:
    """Only the valid records: both tools read exactly the same documents (datatrove's reader stops at
    the first invalid UTF-8 byte of a file, which would hide the rest of that shard from it)."""
    target.mkdir(parents=True, exist_ok=True)
    for shard in sorted(corpus.glob("*.jsonl.gz")):
        out_path = target / shard.name
        if out_path.exists():
            continue
        with gzip.open(shard, "rb") as source, gzip.open(out_path, "wb", compresslevel=1) as sink:
            for line in source:
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                text = record.get("text") if isinstance(record, dict) else None
                if isinstance(text, str) and text.strip() and len(text.encode()) <= 200_000:
                    sink.write(line)
    return target


def run_curate(clean: Path, work: Path) -> tuple[float, list[str], dict]:
    from jobs import runner
    from jobs.core.config import validate_config
    from jobs.core.spark import get_spark
    from jobs.core.tables import open_store

    config = validate_config({
        "input": {"paths": [str(clean / "*.jsonl.gz")], "source": "demo"},
        "output": {"root": str(work / "curate-out")},
        "spark": {"master": "local[2]", "driver_memory": "8g"},
        "ingest": {"max_text_bytes": 200_000},
    }, source="benchmarks/dedup_speed.py")
    started = time.perf_counter()
    funnel = runner.run(config, ["ingest", "dedup"])
    seconds = time.perf_counter() - started
    store = open_store(get_spark(config.spark), config.output.root, config.tables)
    duplicates = store.read("duplicates").join(store.read("bronze").select("doc_id", "source_id"), "doc_id")
    removed = [row["source_id"] for row in duplicates.select("source_id").collect()]
    per_stage = {stage.stage: stage.seconds for stage in funnel.stages}
    return seconds, removed, per_stage


def run_datatrove(python: str, clean: Path, work: Path) -> tuple[float, list[str], dict]:
    script = REPO_ROOT / "benchmarks" / "_datatrove_minhash.py"
    shutil.rmtree(work / "datatrove", ignore_errors=True)  # datatrove skips tasks it finds completed
    started = time.perf_counter()
    result = subprocess.run([python, str(script), str(clean), str(work / "datatrove"), "--workers", "2"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"datatrove run failed:\n{result.stderr[-3000:]}")
    seconds = time.perf_counter() - started
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    return seconds, payload["removed"], payload["seconds"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--signature-docs", type=int, default=5_000)
    parser.add_argument("--num-perm", type=int, default=112)
    parser.add_argument("--datatrove-python", default=str(REPO_ROOT / ".venv-bench" / "bin" / "python"))
    parser.add_argument("--work", default=None)
    parser.add_argument("--skip-end-to-end", action="store_true")
    args = parser.parse_args()

    signature_throughput(args.signature_docs, args.num_perm)
    if args.skip_end_to_end:
        return 0
    work = Path(args.work or tempfile.mkdtemp(prefix="curate-speed-"))
    corpus = demo_corpus(work, args.docs, args.seed)
    clean = clean_copy(corpus, work / f"clean-{args.docs}-{args.seed}")
    truth = truth_table(corpus)

    ours_seconds, ours_removed, ours_stages = run_curate(clean, work)
    print(f"\ncurate ingest + dedup, local[2]: {ours_seconds:.1f} s  (stages: {ours_stages})")
    ours = score_removals(ours_removed, truth, 0.8)
    print_scores("curate", ours, 0.8)

    if not os.path.exists(args.datatrove_python):
        print(f"\ndatatrove comparison skipped: {args.datatrove_python} not found (make bench-venv)")
        return 0
    theirs_seconds, theirs_removed, theirs_stages = run_datatrove(args.datatrove_python, clean, work)
    print(f"\ndatatrove MinHash (4 stages, 2 workers): {theirs_seconds:.1f} s  (stages: {theirs_stages})")
    theirs = score_removals(theirs_removed, truth, 0.8)
    print_scores("datatrove", theirs, 0.8)
    print(f"\ntime ratio datatrove / curate: {theirs_seconds / ours_seconds:.2f}x "
          f"(>1 means curate is faster); precision {ours.precision:.4f} vs {theirs.precision:.4f}, "
          f"recall(J>=0.85) {ours.recall_target:.4f} vs {theirs.recall_target:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
