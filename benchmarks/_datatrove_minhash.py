"""Runs datatrove's 4-stage MinHash dedup (run by dedup_speed.py inside a venv that has datatrove).

    python _datatrove_minhash.py INPUT_DIR WORK_DIR --workers 2 --ngram 5 --bands 14 --rows 8

Prints one JSON line: seconds per stage and the ids of the removed documents' file.
Tokenisation is whitespace splitting after datatrove's own text normalisation, like curate's.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import time

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import (
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.hashing import HashConfig
from datatrove.utils.word_tokenizers import WordTokenizer


class WhitespaceTokenizer(WordTokenizer):
    def word_tokenize(self, text: str) -> list[str]:
        return text.split()

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("input_dir")
    parser.add_argument("work_dir")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ngram", type=int, default=5)
    parser.add_argument("--bands", type=int, default=14)
    parser.add_argument("--rows", type=int, default=8)
    args = parser.parse_args()

    config = MinhashConfig(hash_config=HashConfig(precision=64), n_grams=args.ngram,
                           num_buckets=args.bands, hashes_per_bucket=args.rows)
    shards = len(glob.glob(os.path.join(args.input_dir, "*.jsonl.gz")))
    work = args.work_dir
    logs = os.path.join(work, "logs")
    tokenizer = WhitespaceTokenizer("en")
    stages = {
        "signatures": LocalPipelineExecutor(
            pipeline=[JsonlReader(args.input_dir, glob_pattern="*.jsonl.gz"),
                      MinhashDedupSignature(output_folder=f"{work}/signatures", config=config,
                                            language=tokenizer)],
            tasks=shards, workers=args.workers, logging_dir=f"{logs}/signatures"),
        "buckets": LocalPipelineExecutor(
            pipeline=[MinhashDedupBuckets(input_folder=f"{work}/signatures", output_folder=f"{work}/buckets",
                                          config=config)],
            tasks=config.num_buckets, workers=args.workers, logging_dir=f"{logs}/buckets"),
        "cluster": LocalPipelineExecutor(
            pipeline=[MinhashDedupCluster(input_folder=f"{work}/buckets", output_folder=f"{work}/remove_ids",
                                          config=config)],
            tasks=1, logging_dir=f"{logs}/cluster"),
        "filter": LocalPipelineExecutor(
            pipeline=[JsonlReader(args.input_dir, glob_pattern="*.jsonl.gz"),
                      MinhashDedupFilter(input_folder=f"{work}/remove_ids",
                                         exclusion_writer=JsonlWriter(f"{work}/removed")),
                      JsonlWriter(f"{work}/deduplicated")],
            tasks=shards, workers=args.workers, logging_dir=f"{logs}/filter"),
    }
    seconds = {}
    for name, executor in stages.items():
        started = time.perf_counter()
        executor.run()
        seconds[name] = round(time.perf_counter() - started, 2)
    removed = []
    for path in glob.glob(f"{work}/removed/*.jsonl.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            removed.extend(json.loads(line)["id"] for line in handle)
    print(json.dumps({"seconds": seconds, "removed": removed}))


if __name__ == "__main__":
    main()
