"""Precision, recall and cost of each curation filter against the demo corpus's ground truth.

    .venv/bin/python benchmarks/curation_eval.py --docs 20000

Every filter runs as the quality stage runs it (the same udfs functions, Arrow batches of 10,000 documents)
on the demo corpus, whose generator recorded what it planted: PII values and decoys, benchmark leaks and
leak decoys, blocked and lookalike URLs, toxic threads, pages in seven languages (good and low-quality).
Cost is wall-clock seconds per 10,000 documents in one process (the Spark pass adds its own overhead; see
benchmarks/quality_speed.py for that ratio).
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.json as pa_json
from _common import REPO_ROOT, demo_corpus, truth_table

from jobs.core import models
from udfs import fasttext_models
from udfs.blocklists import (
    FlaggedWordRules,
    blocklist_from_categories,
    flagged_word_fractions,
    parse_list,
    url_block_reasons,
)
from udfs.classifier import ClassifierNormalization, FastTextParams, fit, normalize_texts, training_lines
from udfs.decontamination import DecontaminationRules, benchmark_items, build_index, find_contamination
from udfs.pii import PII_TYPES, PiiRules, mask_pii
from udfs.quality import LanguageRules, QualityRules, quality_features

BATCH = 10_000
KEPT_LANGUAGES = ("en", "de", "fr", "es", "ru", "zh", "ja")


def _documents(corpus: Path) -> pa.Table:
    """The corpus's documents (its malformed lines left out: ingest quarantines them)."""
    rows = []
    for shard in sorted(corpus.glob("shard-*.jsonl.gz")):
        with gzip.open(shard) as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                text = record.get("text")
                if isinstance(text, str) and text.strip() and str(record.get("id")).startswith("demo-") \
                        and len(text) < 200_000:
                    rows.append({"id": record["id"], "url": record.get("url"), "text": text})
    return pa.Table.from_pylist(rows)


def _timed(docs: pa.Table, step: Callable[[pa.Table], Any]) -> tuple[list[Any], float]:
    """Results per batch and seconds per 10k documents."""
    started, results = time.perf_counter(), []
    for offset in range(0, docs.num_rows, BATCH):
        results.append(step(docs.slice(offset, BATCH)))
    return results, (time.perf_counter() - started) / docs.num_rows * 10_000


def _pr(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    true_positives = int((predicted & actual).sum())
    return {"flagged": int(predicted.sum()), "planted": int(actual.sum()), "true_positives": true_positives,
            "precision": round(true_positives / max(int(predicted.sum()), 1), 4),
            "recall": round(true_positives / max(int(actual.sum()), 1), 4)}


def evaluate(corpus: Path) -> dict[str, Any]:
    docs = _documents(corpus)
    truth = truth_table(corpus).set_index("id").loc[docs.column("id").to_pylist()]
    report: dict[str, Any] = {"documents": docs.num_rows}

    categories = {}
    for folder in sorted((corpus / "blocklist").iterdir()):
        lists = [parse_list((folder / kind).read_text()) if (folder / kind).exists() else []
                 for kind in ("domains", "urls")]
        categories[folder.name] = (lists[0], lists[1])
    blocklist = blocklist_from_categories(categories)
    batches, cost = _timed(docs, lambda part: url_block_reasons(part.column("url"), blocklist))
    reasons = pa.chunked_array(batches).to_pylist()
    predicted = np.array([reason is not None for reason in reasons])
    actual = truth["blocked_category"].notna().to_numpy()
    right_category = sum(reason == f"url_blocked:{category}" for reason, category
                         in zip(reasons, truth["blocked_category"], strict=True) if category)
    report["url_blocklist"] = {**_pr(predicted, actual), "right_category": right_category,
                               "lookalikes_blocked": int((predicted & truth["lookalike"].to_numpy()).sum()),
                               "seconds_per_10k": round(cost, 3)}

    items = benchmark_items(pa_json.read_json(corpus / "benchmarks" / "demo_qa.jsonl"), "demo_qa",
                            ["question", "choices", "answer"], "id")
    started = time.perf_counter()
    index = build_index(items, DecontaminationRules().ngram)
    index_seconds = time.perf_counter() - started
    batches, cost = _timed(docs, lambda part: find_contamination(part.column("text"), index,
                                                                 DecontaminationRules())[1])
    signals = pa.concat_tables(batches)
    found = signals.column("decon_item").to_pylist()
    predicted = np.array([item is not None for item in found])
    actual = truth["benchmark_item"].notna().to_numpy()
    right_item = sum(item == planted for item, planted in zip(found, truth["benchmark_item"], strict=True)
                     if planted)
    report["decontamination"] = {**_pr(predicted, actual), "right_item": right_item,
                                 "leak_decoys_flagged": int((predicted & truth["leak_decoy"].to_numpy())
                                                            .sum()),
                                 "index_seconds": round(index_seconds, 3), "seconds_per_10k": round(cost, 3)}

    batches, cost = _timed(docs, lambda part: mask_pii(part.column("text"), PiiRules()))
    masked = pa.chunked_array([texts for texts, _ in batches]).to_pylist()
    counts = pa.concat_tables([signals for _, signals in batches])
    planted_total = masked_right = decoys = decoys_intact = 0
    for text, values, decoy_values in zip(masked, truth["pii_values"], truth["pii_decoys"], strict=True):
        planted_total += len(values)
        masked_right += sum(value not in text for value in values)
        decoys += len(decoy_values)
        decoys_intact += sum(value in text for value in decoy_values)
    masks = int(sum(np.asarray(counts.column(f"pii_{kind}")).sum() for kind in PII_TYPES))
    report["pii"] = {"planted_values": planted_total, "masked_planted": masked_right, "masks_made": masks,
                     "precision": round(masked_right / max(masks, 1), 4),
                     "recall": round(masked_right / max(planted_total, 1), 4),
                     "decoys": decoys, "decoys_left_intact": decoys_intact,
                     "masks_by_type": {kind: int(np.asarray(counts.column(f"pii_{kind}")).sum())
                                       for kind in PII_TYPES},
                     "seconds_per_10k": round(cost, 3)}

    word_lists = {path.stem: frozenset(parse_list(path.read_text()))
                  for path in sorted((corpus / "wordlists").glob("*.txt"))}
    model = models.load("lid.176.ftz")
    langs = pa.array(fasttext_models.predict_top(model, docs.column("text").to_pylist())[0], pa.string())
    docs_with_lang = docs.append_column("lang", langs)
    batches, cost = _timed(docs_with_lang, lambda part: flagged_word_fractions(
        part.column("text"), part.column("lang"), word_lists, FlaggedWordRules()))
    flagged = np.array([reason is not None for reason in pa.concat_tables(batches).column("flagged_reason")
                        .to_pylist()])
    report["flagged_words"] = {**_pr(flagged, truth["toxic"].to_numpy()), "seconds_per_10k": round(cost, 3)}

    with gzip.open(corpus / "reference" / "toxicity.jsonl.gz") as handle:
        toxicity = [json.loads(line) for line in handle]
    # As train_toxicity with negatives_table: bronze does: the labelled set plus as many crawl pages (a seeded
    # sample of this crawl) as further negatives.
    per_class = min(sum(doc["label"] == "toxic" for doc in toxicity), sum(doc["label"] != "toxic"
                                                                          for doc in toxicity))
    crawl = np.random.default_rng(13).choice(docs.num_rows, size=per_class, replace=False)
    texts = [doc["text"] for doc in toxicity] + docs.column("text").take(pa.array(crawl)).to_pylist()
    labels = [doc["label"] for doc in toxicity] + ["clean"] * per_class
    normalization = ClassifierNormalization()
    lines = training_lines(normalize_texts(texts, normalization), labels)
    order = np.random.default_rng(14).permutation(len(lines))  # fastText reads in order: no label runs
    started = time.perf_counter()
    classifier, _ = fit([lines[i] for i in order], FastTextParams())
    train_seconds = time.perf_counter() - started
    batches, cost = _timed(docs, lambda part: fasttext_models.label_probability(
        classifier, normalize_texts(part.column("text"), normalization), "toxic"))
    scores = np.concatenate([np.asarray(batch) for batch in batches])
    report["toxicity_classifier"] = {**_pr(scores > 0.5, truth["toxic"].to_numpy()),
                                     "train_seconds": round(train_seconds, 2), "training_docs": len(lines),
                                     "seconds_per_10k": round(cost, 3)}

    rules = QualityRules(language=LanguageRules(keep=KEPT_LANGUAGES))
    batches, cost = _timed(docs, lambda part: quality_features(_batch(part), rules, model))
    reasons = pa.concat_tables([pa.Table.from_batches([batch]) for batch in batches]).column("drop_reason")
    kept = np.array([reason is None for reason in reasons.to_pylist()])
    english_only = QualityRules(language=LanguageRules(keep=KEPT_LANGUAGES), languages={
        lang: _english_rule_set() for lang in KEPT_LANGUAGES})
    english_reasons = quality_features(_batch(docs), english_only, model).column("drop_reason")
    kept_english_rules = np.array([reason is None for reason in english_reasons.to_pylist()])
    by_language = {}
    for lang in KEPT_LANGUAGES:
        of_lang = (truth["lang"] == lang).to_numpy() & (truth["domain"] != "ads").to_numpy()
        good = of_lang & (truth["quality"] == "good").to_numpy() & ~truth["toxic"].to_numpy()
        low = of_lang & (truth["quality"] != "good").to_numpy()
        by_language[lang] = {"good_pages": int(good.sum()),
                             "good_kept": round(float(kept[good].mean()), 4),
                             "good_kept_with_english_rules": round(float(kept_english_rules[good].mean()), 4),
                             "low_quality_pages": int(low.sum()),
                             "low_quality_kept": round(float(kept[low].mean()) if low.any() else 0.0, 4)}
    report["languages"] = {"rules_seconds_per_10k": round(cost, 3), "by_language": by_language}
    return report


def _batch(docs: pa.Table) -> pa.RecordBatch:
    """The quality stage's batch columns."""
    return pa.RecordBatch.from_pydict({"doc_id": docs.column("id").combine_chunks(),
                                       "text": docs.column("text").combine_chunks()})


def _english_rule_set() -> Any:
    """Every language read with English's rules (what the quality stage did before per-language rules)."""
    from udfs.languages import rule_set

    return rule_set("en")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=REPO_ROOT / "out" / "bench")
    args = parser.parse_args()
    corpus = demo_corpus(args.work, args.docs, args.seed)
    print(json.dumps(evaluate(corpus), indent=2))


if __name__ == "__main__":
    main()
