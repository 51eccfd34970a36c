"""Quality stage against the demo generator's ground truth: train on one seed, evaluate on another.

    .venv/bin/python benchmarks/quality_eval.py --docs 20000 --train-seed 7 --eval-seed 8

Train corpus: ingest, then train_quality (reference pages vs bronze) and train_topic (labelled
reference pages). Eval corpus (a different seed, never seen in training): ingest, then the quality
stage on bronze with the trained models. A page should be removed when the generator made it
low-quality (boilerplate, keyword stuffing, repeated lines, too short, spam) or non-English.

Targets (issue 4): precision and recall of removed pages >= 0.9 each. Also printed: the same for the
rules alone and for the quality classifier alone, its ROC-AUC, language-ID accuracy and topic accuracy.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import demo_corpus, truth_table

from jobs import runner
from jobs.core.config import validate_config
from jobs.core.spark import get_spark
from jobs.core.tables import open_store
from udfs.classifier import roc_auc


def _config(corpus: Path, root: Path, models: Path | None, min_score: float) -> object:
    reference = str(corpus / "reference" / "reference.jsonl.gz")
    quality: dict = {"classifier": {"enabled": True, "min_score": min_score},
                     "topic_classifier": {"enabled": True}}
    if models is not None:
        quality["classifier"]["model"] = str(models / "quality.bin")
        quality["topic_classifier"]["model"] = str(models / "topic.bin")
    return validate_config({
        "input": {"paths": [str(corpus / "*.jsonl.gz")], "source": "demo", "fields": {"crawl_time": "date"}},
        "output": {"root": str(root)},
        "spark": {"master": "local[2]", "driver_memory": "6g"},
        "ingest": {"max_text_bytes": 200_000},
        "tables": {"deduped": "bronze"},  # score every ingested page: dedup is not what is measured here
        "quality": quality,
        "train": {"quality": {"positives": {"paths": [reference], "where": "quality = 'good'"}},
                  "topic": {"documents": {"paths": [reference], "label_field": "domain"}}},
    }, source="benchmarks/quality_eval.py")


def _precision_recall(removed: np.ndarray, should: np.ndarray) -> tuple[float, float]:
    precision = float(should[removed].mean()) if removed.any() else 1.0
    recall = float(removed[should].mean()) if should.any() else 1.0
    return precision, recall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--train-seed", type=int, default=7)
    parser.add_argument("--eval-seed", type=int, default=8)
    parser.add_argument("--min-score", type=float, default=0.3, help="quality classifier threshold")
    parser.add_argument("--work", default=None, help="folder for corpora and tables (default: a temp dir)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="curate-bench-"))

    train_corpus = demo_corpus(work, args.docs, args.train_seed)
    train_root = work / f"quality-train-{args.docs}-{args.train_seed}"
    started = time.perf_counter()
    trained = runner.run(_config(train_corpus, train_root, None, args.min_score),
                         ["ingest", "train_quality", "train_topic"])
    print(trained.render())
    print(f"training corpus: {time.perf_counter() - started:.1f} s")

    eval_corpus = demo_corpus(work, args.docs, args.eval_seed)
    config = _config(eval_corpus, work / f"quality-eval-{args.docs}-{args.eval_seed}", train_root / "models",
                     args.min_score)
    started = time.perf_counter()
    evaluated = runner.run(config, ["ingest", "quality"])
    print(evaluated.render())
    print(f"evaluation corpus (ingest + quality): {time.perf_counter() - started:.1f} s")

    store = open_store(get_spark(config.spark), config.output.root, config.tables)
    scores = (store.read("quality_scores").join(store.read("bronze").select("doc_id", "source_id"), "doc_id")
              .select("source_id", "drop_reason", "lang", "quality_score", "topic").toPandas())
    frame = truth_table(eval_corpus).merge(scores, left_on="id", right_on="source_id")
    should = ((frame["quality"] != "good") | (frame["lang_x"] != "en")).to_numpy()
    reasons = frame["drop_reason"].fillna("")
    removed = (reasons != "").to_numpy()
    by_rules = (reasons != "").to_numpy() & ~reasons.str.startswith("quality_").to_numpy()
    by_classifier = (frame["quality_score"] < args.min_score).to_numpy()

    print(f"\nevaluated {len(frame):,} pages of seed {args.eval_seed} with models trained on seed "
          f"{args.train_seed}; {int(should.sum()):,} should be removed")
    for name, decision in (("quality stage (rules + classifier)", removed), ("rules alone", by_rules),
                           (f"classifier alone (score < {args.min_score})", by_classifier)):
        precision, recall = _precision_recall(decision, should)
        print(f"  {name:<42} removed {int(decision.sum()):>6,}  precision {precision:.4f}  "
              f"recall {recall:.4f}")
    auc = roc_auc(frame["quality_score"].to_numpy(), ~should)
    print(f"  quality classifier ROC-AUC (keep-worthy vs not): {auc:.4f}")
    for kind, group in frame.groupby("quality"):
        print(f"    {kind:<17} removed {float(group['drop_reason'].notna().mean()):.3f}  "
              f"mean quality score {group['quality_score'].mean():.3f}")
    lid_accuracy = float((frame["lang_y"] == frame["lang_x"]).mean())
    well_formed = frame[frame["quality"].isin(["good"])]
    lid_well_formed = float((well_formed["lang_y"] == well_formed["lang_x"]).mean())
    english = frame[(frame["lang_x"] == "en") & frame["quality"].isin(["good", "spam"])]
    topic_accuracy = float((english["topic"] == english["domain"]).mean())
    print(f"  language ID accuracy: {lid_accuracy:.4f} on all pages, "
          f"{lid_well_formed:.4f} on well-formed pages")
    print(f"  topic accuracy on English good/spam pages: {topic_accuracy:.4f}")

    precision, recall = _precision_recall(removed, should)
    met = precision >= 0.9 and recall >= 0.9
    print(f"targets: precision >= 0.9 and recall >= 0.9 of removed pages: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
