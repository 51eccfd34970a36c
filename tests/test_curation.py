"""Curation breadth on Spark: URL blocklists, benchmark decontamination, flagged words, PII masking and the
toxicity classifier run inside the quality stage; each drop has its reason in the scores, the funnel and
the decisions table, and the kept text is masked/cut."""

from __future__ import annotations

import gzip
import json

import pytest

from jobs import quality, train
from jobs.core.config import ConfigError
from jobs.core.stage import StageContext
from jobs.runner import stage_context
from tests.conftest import make_config
from tests.test_dedup import BRONZE_SCHEMA, _row
from tests.test_quality import GOOD, _store_docs
from udfs.demo_corpus import DemoSpec, original_page, toxicity_doc

ITEM = ("Which of the following best explains why the northern glaciers retreated faster than the southern "
        "ones during the warm period described in the passage")
CHOICES = ["warmer ocean currents", "less snowfall", "darker rock surfaces", "stronger winds"]


def _reference_files(tmp_path):
    bench = tmp_path / "bench" / "qa.jsonl"
    bench.parent.mkdir(exist_ok=True)
    bench.write_text(json.dumps({"id": "q-7", "question": ITEM, "choices": CHOICES, "answer": "A"}) + "\n"
                     + json.dumps({"id": "q-8", "question": "What is two plus two", "choices": ["4", "5"],
                                   "answer": "4"}) + "\n")
    lists = tmp_path / "ut1"
    (lists / "adult").mkdir(parents=True, exist_ok=True)
    (lists / "adult" / "domains").write_text("# adult sites\nadult-site.example\n")
    (lists / "gambling").mkdir(exist_ok=True)
    (lists / "gambling" / "urls").write_text("news.example/casino\n")
    words = tmp_path / "en.txt"
    words.write_text("# flagged\nidiot\nmoron\nloser\n")
    return bench, lists, words


def _config(tmp_path, **quality_settings):
    bench, lists, words = _reference_files(tmp_path)
    settings = {
        "decontamination": {"enabled": True, "benchmarks": [{"name": "qa", "paths": [str(bench)],
                                                             "id_field": "id"}]},
        "url_blocklist": {"enabled": True, "lists": [{"path": str(lists)}]},
        "flagged_words": {"enabled": True, "lists": {"en": str(words)}},
        "pii": {"enabled": True},
    }
    settings.update(quality_settings)
    return make_config(tmp_path, quality=settings)


def _page(doc_id, text, url):
    row = _row(doc_id, text)
    return (*row[:3], url, *row[4:])


PII_TEXT = GOOD + " Write to jane.doe@mailhost.org or call +1 (415) 555-2671 before noon."
DECOY_TEXT = GOOD + " This is version 10.0.19041.1 of the guide, ISBN 978-3-16-148410-0, printed 2024-01-15."
ROWS = [
    ("good", GOOD, "https://news.example/valley"),
    ("leak", GOOD + "\n\nQuestion: " + ITEM + "\nA. " + "\nB. ".join(CHOICES) + "\nAnswer: A",
     "https://quiz.example/1"),
    ("phrases", GOOD + " Which of the following best explains the valley? The warm period was long.",
     "https://quiz.example/2"),
    ("blocked_sub", GOOD, "https://www.adult-site.example/gallery"),
    ("lookalike", GOOD, "https://notadult-site.example/gallery"),
    ("blocked_url", GOOD, "https://news.example/casino/odds"),
    ("url_prefix_only", GOOD, "https://news.example/casinos-history"),
    ("toxic_words", GOOD + " You idiot, you moron, you loser, idiot idiot moron.", "https://forum.example/t"),
    ("pii", PII_TEXT, "https://people.example/jane"),
    ("decoy", DECOY_TEXT, "https://books.example/guide"),
]


def test_safety_filters_drop_with_reasons_and_mask_kept_text(spark, tmp_path):
    config = _config(tmp_path)
    store = _store_docs(spark, config, [_page(*row) for row in ROWS])
    result = quality.run(stage_context(config, "q1", spark))

    reasons = {row.doc_id: row.drop_reason for row in store.read("quality_scores").collect()}
    assert reasons == {"good": None, "leak": "decontaminated:qa", "phrases": None,
                       "blocked_sub": "url_blocked:adult", "lookalike": None,
                       "blocked_url": "url_blocked:gambling",
                       "url_prefix_only": None, "toxic_words": "flagged_words", "pii": None, "decoy": None}
    leak = store.read("quality_scores").where("doc_id = 'leak'").first()
    assert (leak.decon_benchmark, leak.decon_item) == ("qa", "q-7") and leak.decon_matches > 1

    kept = {row.doc_id: row.text for row in store.read("filtered").collect()}
    assert kept["pii"] == GOOD + " Write to <EMAIL_ADDRESS> or call <PHONE_NUMBER> before noon."
    assert kept["decoy"] == DECOY_TEXT and kept["good"] == GOOD
    assert result.drops == {"decontaminated:qa": 1, "url_blocked:adult": 1, "url_blocked:gambling": 1,
                            "flagged_words": 1}
    assert result.reconciles()
    assert result.details["pii_masked"] == {"email": 1, "ip_address": 0, "phone": 1, "credit_card": 0,
                                            "us_ssn": 0, "documents": 1}
    benchmark = result.details["decontamination"]
    assert benchmark["benchmarks"] == {"qa": {"documents": 1, "items": 1}}
    assert benchmark["items_indexed"] == 2 and benchmark["items_too_short"] == 1
    decided = store.read("decisions").where("stage = 'quality'").collect()
    decisions = {row.doc_id: row.reason for row in decided}
    assert decisions["leak"] == "decontaminated:qa" and decisions["blocked_sub"] == "url_blocked:adult"


def test_remove_mode_cuts_the_copied_item_and_keeps_the_page(spark, tmp_path):
    config = _config(tmp_path, decontamination={
        "enabled": True, "mode": "remove",
        "benchmarks": [{"name": "qa", "paths": [str(tmp_path / "bench" / "qa.jsonl")], "id_field": "id"}]})
    leak = GOOD + "\n\nQuestion: " + ITEM
    store = _store_docs(spark, config, [_page("leak", leak, "https://quiz.example/1"),
                                        _page("only", ITEM, "https://quiz.example/2")])
    result = quality.run(stage_context(config, "q1", spark))
    kept = {row.doc_id: row.text for row in store.read("filtered").collect()}
    assert set(kept) == {"leak"}
    assert kept["leak"].startswith(GOOD) and "glaciers" not in kept["leak"]
    assert result.drops == {"decontaminated:qa": 1}  # nothing left of "only": dropped, not kept empty


def test_missing_reference_files_fail_before_spark(tmp_path):
    config = _config(tmp_path, flagged_words={"enabled": True, "lists": {"en": str(tmp_path / "none.txt")}})
    with pytest.raises(ConfigError, match=r"quality\.flagged_words\.lists\.en.*word list not found"):
        quality.check(StageContext(config, "check"))
    nowhere = [{"path": str(tmp_path / "nowhere")}]
    config = _config(tmp_path, url_blocklist={"enabled": True, "lists": nowhere})
    with pytest.raises(ConfigError, match=r"quality\.url_blocklist\.lists\.0.*no blocklist files"):
        quality.check(StageContext(config, "check"))
    config = _config(tmp_path, decontamination={"enabled": True, "benchmarks": [
        {"name": "qa", "paths": [str(tmp_path / "missing-*.jsonl")]}]})
    with pytest.raises(ConfigError, match=r"quality\.decontamination\.benchmarks\.0.*no files match"):
        quality.check(StageContext(config, "check"))


def test_toxicity_classifier_needs_crawl_negatives_and_then_drops_toxic_threads(spark, tmp_path):
    labelled = tmp_path / "toxicity.jsonl.gz"
    with gzip.open(labelled, "wt", encoding="utf-8") as handle:
        for index in range(1200):
            handle.write(json.dumps(toxicity_doc(DemoSpec(seed=3), index)) + "\n")
    crawl = (original_page(DemoSpec(seed=11, toxic_rate=0.1), index) for index in range(400))
    pages = [page for page in crawl if page.lang == "en" and page.quality == "good"]
    toxic = {page.id for page in pages if page.plants.toxic}
    assert len(toxic) >= 10

    def run(negatives_table: str | None) -> dict[str, tuple[str | None, float]]:
        root = tmp_path / str(negatives_table)  # a fresh root: keyed tables never re-score a document
        config = make_config(
            root,
            train={"toxicity": {"documents": {"paths": [str(labelled)], "label_field": "label"},
                                "negatives_table": negatives_table}},
            quality={"toxicity_classifier": {"enabled": True, "max_score": 0.5},
                     "language": {"enabled": False},
                     "gopher_quality": {"enabled": False}, "gopher_repetition": {"enabled": False},
                     "fineweb": {"enabled": False}, "allow_empty_output": True})
        store = _store_docs(spark, config, [_row(page.id, page.text) for page in pages])
        # The crawl sample the negatives come from (at the demo's 1% the few toxic pages in it are noise;
        # at this test's 10% they would be a tenth of the negatives, so they are left out).
        clean = [_row(page.id, page.text) for page in pages if page.id not in toxic]
        clean_sample = spark.createDataFrame(clean, BRONZE_SCHEMA)
        store.write(clean_sample, "bronze", mode="overwrite", run_id="b")
        trained = train.run_toxicity(stage_context(config, "t1", spark))
        assert trained.details["metrics"]["holdout"]["roc_auc"] >= 0.8
        quality.run(stage_context(config, "q1", spark))
        scored = store.read("quality_scores").collect()
        return {row.doc_id: (row.drop_reason, row.toxicity_score) for row in scored}

    # Labelled comments alone: web pages unlike any comment score as toxic (what the crawl negatives fix).
    alone = run(None)
    clean_dropped = [doc for doc, (reason, _) in alone.items()
                     if doc not in toxic and reason == "toxicity_high"]
    assert len(clean_dropped) > len(pages) // 2

    scores = run("bronze")
    caught = [doc for doc in toxic if scores[doc][0] == "toxicity_high"]
    false_alarms = [doc for doc, (reason, _) in scores.items() if doc not in toxic and reason is not None]
    assert len(caught) >= 0.9 * len(toxic), (len(caught), len(toxic))
    assert len(false_alarms) <= 0.02 * (len(pages) - len(toxic)), [scores[doc] for doc in false_alarms[:5]]
