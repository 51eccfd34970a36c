"""Shared helpers of the benchmark scripts: demo corpus on disk, running our stages, scoring removals
against the generator's ground truth."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import pandas as pd  # noqa: E402
import pyarrow.dataset as ds  # noqa: E402

from udfs.demo_corpus import DemoSpec, write_demo_corpus  # noqa: E402

SIMILARITY_BUCKETS = [(0.0, 0.7), (0.7, 0.75), (0.75, 0.8), (0.8, 0.85), (0.85, 0.9), (0.9, 0.95),
                      (0.95, 1.01)]


def _same_spec(summary: Path, spec: DemoSpec) -> bool:
    """Was the corpus on disk generated with this spec (and this generator's fields)?"""
    if not summary.exists():
        return False
    recorded = json.loads(summary.read_text()).get("spec", {})
    wanted = json.loads(json.dumps(asdict(spec)))
    return {k: v for k, v in recorded.items() if k != "workers"} == {k: v for k, v in wanted.items()
                                                                      if k != "workers"}


def demo_corpus(folder: Path, docs: int, seed: int) -> Path:
    """Generate (once per generator version) a demo corpus for this size and seed; returns its folder."""
    target = folder / f"demo-{docs}-{seed}"
    spec = DemoSpec(docs=docs, seed=seed, workers=os.cpu_count() or 1)
    if not _same_spec(target / "truth" / "summary.json", spec):
        started = time.perf_counter()
        shutil.rmtree(target, ignore_errors=True)
        write_demo_corpus(str(target), spec)
        print(f"generated {docs:,} demo documents in {time.perf_counter() - started:.1f} s -> {target}")
    return target


def truth_table(corpus: Path) -> pd.DataFrame:
    return ds.dataset(corpus / "truth" / "docs").to_table().to_pandas()


@dataclass
class Scores:
    removed: int
    precision: float
    recall_by_bucket: dict[str, tuple[int, float]]  # "[lo,hi)" -> (planted pairs, recall)
    recall_exact: float
    recall_target: float  # planted near pairs with Jaccard >= threshold + 0.05
    f1_target: float
    removed_by_kind: dict[str, int]  # what the removed documents were planted as ("near [lo,hi)", ...)


def score_removals(removed_ids: Iterable[str], truth: pd.DataFrame, threshold: float) -> Scores:
    """Keeper-free scoring, so any tool can be compared on the same footing.

    A removed document is correct when its planted duplicate group still has a kept member (a removal
    of a unique page, or of a whole group, is an error). A planted duplicate pair is recalled when one
    of its two documents was removed and the group survives.
    """
    removed = set(removed_ids)
    truth = truth.assign(removed=truth["id"].isin(removed))
    group_size = truth.groupby("group_id")["id"].transform("size")
    group_kept = truth.groupby("group_id")["removed"].transform(lambda r: (~r).any())
    in_duplicate_group = group_size > 1
    removed_rows = truth[truth["removed"]]
    correct = (in_duplicate_group & group_kept)[truth["removed"]]
    precision = float(correct.mean()) if len(removed_rows) else 1.0

    removed_by_id = dict(zip(truth["id"], truth["removed"], strict=True))
    dups = truth[truth["dup_kind"] != "original"].copy()
    survives = group_kept[dups.index]
    dups["recalled"] = [(removed_by_id[d] or removed_by_id.get(o, False)) and kept
                        for d, o, kept in zip(dups["id"], dups["dup_of"], survives, strict=True)]
    near = dups[dups["dup_kind"] == "near"]
    buckets = {}
    for low, high in SIMILARITY_BUCKETS:
        chosen = near[(near["jaccard"] >= low) & (near["jaccard"] < high)]
        buckets[f"[{low:.2f},{min(high, 1.0):.2f})"] = (len(chosen), float(chosen["recalled"].mean())
                                                        if len(chosen) else float("nan"))
    target = near[near["jaccard"] >= threshold + 0.05]
    recall_target = float(target["recalled"].mean()) if len(target) else float("nan")
    exact = dups[dups["dup_kind"] == "exact"]
    f1 = 2 * precision * recall_target / (precision + recall_target) if precision + recall_target else 0.0
    removed_by_kind: dict[str, int] = {}
    for row in removed_rows.itertuples():
        if row.dup_kind == "near":
            low, high = next((lo, hi) for lo, hi in SIMILARITY_BUCKETS if lo <= row.jaccard < hi)
            kind = f"near [{low:.2f},{min(high, 1.0):.2f})"
        else:
            kind = "original" if row.dup_kind == "original" else row.dup_kind
        removed_by_kind[kind] = removed_by_kind.get(kind, 0) + 1
    return Scores(len(removed_rows), precision, buckets,
                  float(exact["recalled"].mean()) if len(exact) else float("nan"), recall_target, f1,
                  dict(sorted(removed_by_kind.items())))


def print_scores(name: str, scores: Scores, threshold: float) -> None:
    print(f"{name}: removed {scores.removed:,}  precision {scores.precision:.4f}  "
          f"exact recall {scores.recall_exact:.4f}  "
          f"recall(J>={threshold + 0.05:.2f}) {scores.recall_target:.4f}  F1 {scores.f1_target:.4f}")
    for bucket, (pairs, recall) in scores.recall_by_bucket.items():
        print(f"    planted Jaccard {bucket}: {pairs:>6,} pairs  recall {recall:.3f}")
    planted = ", ".join(f"{kind}: {count:,}" for kind, count in scores.removed_by_kind.items())
    print(f"    removed documents were planted as: {planted}")
