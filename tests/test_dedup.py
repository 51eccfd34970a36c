"""Dedup stage on Spark: exact + near duplicates, explainable removals, policies, skew, partitioning,
incremental runs against earlier output."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import random
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs import dedup
from jobs.core.config import ConfigError
from jobs.core.stage import StageContext
from jobs.core.tables import open_store
from jobs.ingest import BRONZE_COLUMNS
from jobs.runner import stage_context
from tests.conftest import make_config

BRONZE_SCHEMA = ("doc_id string, source string, source_id string, url string, domain string, text string, "
                 "n_chars int, n_words int, crawl_time timestamp, content_hash string, input_file string, "
                 "input_position long, run_id string")

VOCAB = [f"{a}{b}{c}" for a in "bcdfghklmnprst" for b in "aeiou" for c in "bdgklmnprstvz"]


def _words(rng: random.Random, count: int) -> list[str]:
    return [rng.choice(VOCAB) for _ in range(count)]


def _edit(words: list[str], changes: int, rng: random.Random) -> list[str]:
    edited = list(words)
    for position in rng.sample(range(len(words)), changes):
        edited[position] = "zz" + rng.choice(VOCAB)
    return edited


def _row(doc_id: str, text: str, day: int = 1) -> tuple:
    return (doc_id, "test", doc_id, f"https://x.org/{doc_id}", "x.org", text, len(text), len(text.split()),
            dt.datetime(2024, 1, day), "h", "f", 0, "r0")


def _corpus(seed: int = 1) -> tuple[list[tuple], dict[str, str]]:
    """Rows plus the expected fate of the interesting ones: 'exact', 'near' or 'kept'."""
    rng = random.Random(seed)
    rows, fate = [], {}
    for group in range(6):
        base = _words(rng, 200)
        rows.append(_row(f"g{group}-a", " ".join(base)))
        fate[f"g{group}-a"] = "kept"
        rows.append(_row(f"g{group}-b", " ".join(base).upper() + " !!!"))  # exact after normalisation
        fate[f"g{group}-b"] = "exact"
        rows.append(_row(f"g{group}-c", " ".join(_edit(base, 2, rng))))  # Jaccard ~0.95
        fate[f"g{group}-c"] = "near"
    for index in range(20):
        rows.append(_row(f"u{index:02d}", " ".join(_words(rng, 150))))
        fate[f"u{index:02d}"] = "kept"
    for index in range(15):  # shorter than the n-gram: must not form one cluster
        rows.append(_row(f"s{index:02d}", " ".join(_words(rng, 3))))
        fate[f"s{index:02d}"] = "kept"
    for index in range(5):  # nothing left after normalisation
        rows.append(_row(f"p{index:02d}", "!!! ... ???"[: index + 3]))
        fate[f"p{index:02d}"] = "kept"
    return rows, fate


def _setup(spark, tmp_path: Path, rows: list[tuple], partitions: int = 3, **dedup_settings):
    config = make_config(tmp_path, dedup={"components": {"driver_max_edges": 1000}, **dedup_settings})
    store = open_store(spark, config.output.root, config.tables)
    frame = spark.createDataFrame(rows, BRONZE_SCHEMA).repartition(partitions)
    store.write(frame, "bronze", mode="overwrite", run_id="seed")
    return config, store


def _duplicates(store) -> dict[str, tuple[str, str, float]]:
    return {r.doc_id: (r.keeper_doc_id, r.method, r.est_jaccard) for r in store.read("duplicates").collect()}


def test_exact_and_near_duplicates_are_removed_and_explained(spark, tmp_path):
    rows, fate = _corpus()
    config, store = _setup(spark, tmp_path, rows)
    result = dedup.run(stage_context(config, "d1", spark))

    removed = _duplicates(store)
    assert {doc for doc, f in fate.items() if f != "kept"} == set(removed)
    for doc, (keeper, method, est) in removed.items():
        assert keeper == doc.split("-")[0] + "-a"
        assert method == ("exact" if fate[doc] == "exact" else "minhash")
        assert est == 1.0 if method == "exact" else 0.8 <= est < 1.0
    kept = {r.doc_id for r in store.read("deduped").collect()}
    assert kept == {doc for doc, f in fate.items() if f == "kept"}
    assert result.drops == {"exact_duplicate": 6, "near_duplicate": 6}
    assert result.docs_in == len(rows) == result.docs_out + sum(result.drops.values())
    assert store.read("deduped").columns == BRONZE_COLUMNS
    lsh = result.details["lsh"]
    assert (lsh["bands"], lsh["rows"]) == (14, 8)
    assert set(lsh["candidate_probability"]) == {"0.75", "0.80", "0.85"}


def test_output_is_identical_regardless_of_partitioning(spark, tmp_path):
    rows, _ = _corpus(seed=2)
    outcomes = []
    for partitions, shuffle in ((1, 2), (7, 9)):
        spark.conf.set("spark.sql.shuffle.partitions", str(shuffle))
        config, store = _setup(spark, tmp_path / f"p{partitions}", rows, partitions=partitions)
        dedup.run(stage_context(config, "d", spark))
        outcomes.append((_duplicates(store), sorted(r.doc_id for r in store.read("deduped").collect())))
    spark.conf.set("spark.sql.shuffle.partitions", "4")
    assert outcomes[0] == outcomes[1]


def test_keep_earliest_crawl(spark, tmp_path):
    rng = random.Random(5)
    base = " ".join(_words(rng, 100))
    rows = [_row("a", base, day=9), _row("b", base, day=2), _row("c", base + " extra", day=5)]
    config, store = _setup(spark, tmp_path, rows, keep="earliest_crawl")
    dedup.run(stage_context(config, "d", spark))
    removed = _duplicates(store)
    assert set(removed) == {"a", "c"} and {keeper for keeper, _, _ in removed.values()} == {"b"}


def test_highest_quality_without_a_model_is_a_config_error(spark, tmp_path):
    config, _ = _setup(spark, tmp_path, [_row("a", "some words here and there")], keep="highest_quality")
    with pytest.raises(ConfigError, match="curate train-quality"):
        dedup.check(StageContext(config, "d"))
    dedup.check(StageContext(config, "d", earlier=("train_quality",)))  # trained first in the same run


GOOD_WORDS = ["river", "harbour", "treaty", "glacier", "archive", "lecture", "orchard", "theorem"]
BAD_WORDS = ["clickhere", "winnow", "freecash", "hotdeal", "bestprice", "buynow", "promo", "lotto"]


def _quality_model(path: Path) -> None:
    """A fastText model that scores text by its share of GOOD_WORDS vs BAD_WORDS (no card: the config's
    normalisation and positive label apply)."""
    from udfs.classifier import FastTextParams, fit, training_lines

    rng = random.Random(3)
    texts, labels = [], []
    for index in range(400):
        words = GOOD_WORDS if index % 2 else BAD_WORDS
        texts.append(" ".join(rng.choice(words) for _ in range(20)))
        labels.append("hq" if index % 2 else "cc")
    model, _ = fit(training_lines(texts, labels), FastTextParams(epoch=10, thread=1))
    model.save_model(str(path))


def test_highest_quality_keeps_the_best_scored_copy_in_a_plain_run(spark, tmp_path):
    """ingest -> dedup -> quality with keep: highest_quality and no quality pass before dedup: dedup
    scores the copies with the quality classifier and keeps the best one."""
    import json

    from jobs import runner
    from jobs.core.models import load
    from udfs.classifier import normalize_texts
    from udfs.fasttext_models import label_probability

    model_path = tmp_path / "quality.bin"
    _quality_model(model_path)
    rng = random.Random(11)
    base = " ".join(_words(rng, 150))
    copies = {name: f"{base} {' '.join(rng.choice(GOOD_WORDS if good else BAD_WORDS) for good in mix)}"
              for name, mix in (("bad", [0] * 10), ("mid", [1] * 5 + [0] * 5), ("good", [1] * 10))}
    (tmp_path / "in").mkdir()
    with open(tmp_path / "in" / "docs.jsonl", "w") as handle:
        for name in ("bad", "mid", "good"):  # the best copy is neither first nor earliest
            record = {"id": name, "url": f"https://x.org/{name}", "text": copies[name]}
            handle.write(json.dumps(record) + "\n")
        for index in range(5):
            handle.write(json.dumps({"id": f"u{index}", "url": f"https://y.org/{index}",
                                     "text": " ".join(_words(rng, 120))}) + "\n")
    config = make_config(tmp_path, dedup={"keep": "highest_quality"}, quality={"allow_empty_output": True,
        "classifier": {"enabled": True, "model": str(model_path), "min_score": None},
        "topic_classifier": {"enabled": False}, "toxicity_classifier": {"enabled": False}})
    with contextlib.redirect_stdout(io.StringIO()):
        runner.run(config, ["ingest", "dedup", "quality"], spark=spark, run_id="hq")
    store = open_store(spark, config.output.root, config.tables)
    ids = {row.source_id: row.doc_id for row in store.read("bronze").collect()}
    # the scores as an independent reader computes them
    normalized = normalize_texts([copies[name] for name in ("bad", "mid", "good")],
                                 config.quality.classifier.normalization.as_normalization())
    scores = dict(zip(("bad", "mid", "good"), label_probability(load(str(model_path)), normalized, "hq"),
                      strict=True))
    assert scores["good"] > scores["mid"] > scores["bad"]
    removed = _duplicates(store)
    assert set(removed) == {ids["bad"], ids["mid"]}
    assert {keeper for keeper, _, _ in removed.values()} == {ids["good"]}
    kept = {row.doc_id for row in store.read("deduped").collect()}
    assert ids["good"] in kept and store.read("quality_scores").where(f"doc_id = '{ids['good']}'").count()


@pytest.mark.slow
def test_one_huge_cluster(spark, tmp_path):
    rng = random.Random(7)
    base = _words(rng, 300)
    rows = [_row(f"v{index:04d}", " ".join(_edit(base, 1, rng))) for index in range(400)]
    config, store = _setup(spark, tmp_path, rows, partitions=4)
    result = dedup.run(stage_context(config, "d", spark))
    assert result.docs_out == 1
    assert result.drops["near_duplicate"] + result.drops.get("exact_duplicate", 0) == 399
    assert {keeper for keeper, _, _ in _duplicates(store).values()} == {"v0000"}
    assert result.details["components"]["largest_cluster"] >= 300


@pytest.mark.slow
def test_incremental_run_dedups_against_earlier_output(spark, tmp_path):
    rng = random.Random(11)
    old_texts = {f"old{i}": _words(rng, 120) for i in range(5)}
    config, store = _setup(spark, tmp_path, [_row(k, " ".join(v)) for k, v in old_texts.items()])
    incremental = config.model_copy(update={"dedup": config.dedup.model_copy(update={"incremental": True})})
    first = dedup.run(stage_context(incremental, "night1", spark))  # the first night: nothing earlier
    assert first.docs_out == 5

    pair = _words(rng, 120)
    night2 = [
        _row("new-exact", " ".join(old_texts["old1"])),
        _row("new-near", " ".join(_edit(old_texts["old2"], 2, rng))),
        _row("new-pair-a", " ".join(pair)),
        _row("new-pair-b", " ".join(_edit(pair, 1, rng))),
        _row("new-unique", " ".join(_words(rng, 120))),
    ]
    store.write(spark.createDataFrame(night2, BRONZE_SCHEMA), "bronze", mode="append", run_id="ingest2")
    second = dedup.run(stage_context(incremental, "night2", spark))

    assert second.docs_in == 5  # only the new documents were hashed and judged
    removed = _duplicates(store)
    assert removed["new-exact"][:2] == ("old1", "exact")
    assert removed["new-near"][:2] == ("old2", "minhash")
    assert removed["new-pair-b"][0] == "new-pair-a"
    kept = {r.doc_id for r in store.read("deduped").collect()}
    assert kept == set(old_texts) | {"new-pair-a", "new-unique"}
    assert store.read("dedup_exact_index").count() == 7
    assert store.read("dedup_signature_index").where(F.col("run_id") == "night2").count() == 2

    third = dedup.run(stage_context(incremental, "night3", spark))  # nothing new
    assert third.docs_in == 0 and third.docs_out == 0


def test_index_built_with_other_settings_is_refused(spark, tmp_path):
    rows, _ = _corpus(seed=3)
    config, _ = _setup(spark, tmp_path, rows[:10])
    dedup.run(stage_context(config, "d1", spark))
    changed = config.model_copy(update={"dedup": config.dedup.model_copy(update={
        "incremental": True, "minhash": config.dedup.minhash.model_copy(update={"num_perm": 64})})})
    with pytest.raises(ConfigError, match="index was built with"):
        dedup.run(stage_context(changed, "d2", spark))


def test_verification_threshold_allows_for_estimate_noise():
    assert dedup.verification_threshold(0.8, 112, 0.0) == 0.8
    assert dedup.verification_threshold(0.8, 112, 2.0) == pytest.approx(0.8 - 2 * (0.16 / 112) ** 0.5)
    assert dedup.verification_threshold(0.1, 4, 10.0) == 0.0
