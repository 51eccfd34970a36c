"""Classifier training and model-based scoring on Spark: cards, deterministic samples, thresholds."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

from jobs import quality, train
from jobs.core import models, storage
from jobs.core.config import ConfigError
from jobs.core.models import read_card
from jobs.core.stage import StageContext
from jobs.core.tables import open_store
from jobs.runner import stage_context
from tests.conftest import make_config
from tests.test_dedup import BRONZE_SCHEMA, _row
from udfs import fasttext_models
from udfs.demo_corpus import DemoSpec, original_page, reference_page

SPEC = DemoSpec(docs=400, seed=11, reference_docs=500)


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    """A bronze table of demo pages, labelled reference files, and both classifiers trained on them."""
    root = tmp_path_factory.mktemp("train")
    reference = root / "reference.jsonl.gz"
    with gzip.open(reference, "wt", encoding="utf-8") as handle:
        for index in range(SPEC.reference_docs):
            page = reference_page(SPEC, index)
            record = {"text": page.text, "domain": page.domain, "quality": page.quality}
            handle.write(json.dumps(record) + "\n")
    config = make_config(root, train={
        "quality": {"positives": {"paths": [str(reference)], "where": "quality = 'good'"},
                    "max_per_class": 300},
        "topic": {"documents": {"paths": [str(reference)], "label_field": "domain"},
                  "fasttext": {"epoch": 30, "lr": 0.3}},  # ~450 training pages need more passes
    }, quality={"classifier": {"enabled": True}, "topic_classifier": {"enabled": True, "min_score": 0.0}})
    pages = [original_page(SPEC, index) for index in range(SPEC.docs)]
    store = open_store(spark, config.output.root, config.tables)
    rows = [_row(page.id, page.text) for page in pages]
    for name in ("bronze", "deduped"):
        store.write(spark.createDataFrame(rows, BRONZE_SCHEMA), name, mode="overwrite", run_id="seed")
    results = {"quality": train.run_quality(stage_context(config, "t1", spark)),
               "topic": train.run_topic(stage_context(config, "t1", spark))}
    return config, store, {page.id: page for page in pages}, results


def test_quality_card_records_data_params_metrics_and_hash(trained):
    config, _, _, results = trained
    uri = config.training_output("quality")
    card = read_card(uri)
    assert card is not None and card.kind == "quality" and card.positive_label == "hq"
    assert card.model_sha256 == fasttext_models.sha256_of(uri)
    available = card.data["available"]
    per_class = card.data["per_class"]
    assert per_class == min(300, available["hq"], available["cc"]) and available["cc"] == SPEC.docs
    for label in ("hq", "cc"):  # balanced: per_class of each label, split into train and held-out
        assert card.data["train"][label] + card.data["holdout"][label] == per_class
    assert card.hyperparameters["word_ngrams"] == 2 and card.normalization["version"] == 1
    holdout = card.metrics["holdout"]
    assert holdout["examples"] == sum(card.data["holdout"].values())
    assert 0.5 < holdout["roc_auc"] <= 1.0
    assert card.sources["negatives"]["version"] == 0
    assert results["quality"].details["model_sha256"] == card.model_sha256


def test_topic_card_and_labels_match_the_truth(trained):
    config, store, pages, _ = trained
    card = read_card(config.training_output("topic"))
    assert card is not None and card.labels == sorted({"ads", "code_docs", "encyclopedia", "forum", "news",
                                                        "recipes"})
    assert card.metrics["holdout"]["accuracy"] >= 0.9
    quality.run(stage_context(config, "q-topic", store.spark))
    topics = {row.doc_id: row.topic for row in store.read("quality_scores").collect()}
    good = [doc_id for doc_id, page in pages.items()
            if page.lang == "en" and page.quality in ("good", "spam")]
    accuracy = sum(topics[doc_id] == pages[doc_id].domain for doc_id in good) / len(good)
    assert accuracy >= 0.9


def test_training_sample_does_not_depend_on_partitioning(spark, trained):
    _, store, _, _ = trained
    frame = store.read("bronze").selectExpr("doc_id AS key", "text", "'cc' AS label")
    one = train.sample_per_label(frame.repartition(1), 50, 13, 0.2).collect()
    many = train.sample_per_label(frame.repartition(7), 50, 13, 0.2).collect()
    assert len(one) == 50
    assert sorted((row.key, row.holdout) for row in one) == sorted((row.key, row.holdout) for row in many)


def _scores(store):
    return {row.doc_id: row for row in store.read("quality_scores").collect()}


def _dropped_by(store, reason: str) -> set[str]:
    return {doc_id for doc_id, row in _scores(store).items() if row.drop_reason == reason}


def test_absolute_and_top_percent_thresholds(trained):
    config, store, _, _ = trained
    spark = store.spark
    settings = config.model_copy(deep=True)
    rules_of = settings.quality
    for rules in (rules_of.language, rules_of.gopher_quality, rules_of.gopher_repetition, rules_of.fineweb):
        rules.enabled = False  # the classifier alone decides
    quality.run(stage_context(settings, "q-scores", spark))
    floor = sorted(row.quality_score for row in _scores(store).values())[SPEC.docs // 4]
    settings.quality.classifier.min_score = floor
    settings.quality.classifier.keep_top_percent = 60
    result = quality.run(stage_context(settings, "q-top", spark))
    rows = _scores(store).values()
    low = [row for row in rows if row.drop_reason == "quality_score_low"]
    assert len(low) == SPEC.docs // 4 and all(row.quality_score < floor for row in low)
    candidates = [row for row in rows if row.drop_reason in (None, "quality_below_top_percent")]
    assert len({row.quality_cutoff for row in rows}) == 1  # one global cut-off
    for row in candidates:
        assert (row.drop_reason is None) == (row.quality_score >= row.quality_cutoff)
    kept_share = sum(row.drop_reason is None for row in candidates) / len(candidates)
    assert 0.55 <= kept_share <= 0.65
    assert result.reconciles() and set(result.details["histograms"]) >= {"quality_score", "topic_score"}


def test_top_percent_per_group(trained):
    config, store, _, _ = trained
    settings = config.model_copy(deep=True)
    settings.quality.classifier.keep_top_percent = 50
    settings.quality.classifier.group_by = "topic"
    result = quality.run(stage_context(settings, "q-group", store.spark))
    rows = list(_scores(store).values())
    cutoffs = result.details["quality_cutoffs"]
    for row in rows:
        if row.drop_reason in (None, "quality_below_top_percent"):
            assert row.quality_cutoff == cutoffs[row.topic]
            assert (row.drop_reason is None) == (row.quality_score >= row.quality_cutoff)
    assert len({value for value in cutoffs.values() if value is not None}) >= 3


def test_pareto_sampling_is_deterministic_and_partition_independent(trained):
    config, store, _, _ = trained
    spark = store.spark
    settings = config.model_copy(deep=True)
    settings.quality.classifier.pareto.enabled = True
    settings.quality.classifier.pareto.alpha = 3.0
    quality.run(stage_context(settings, "q-pareto-1", spark))
    first = _dropped_by(store, "quality_pareto_sampled_out")
    deduped = store.read("deduped")
    store.write(deduped.repartition(5), "deduped", mode="overwrite", run_id="reshuffled")
    quality.run(stage_context(settings, "q-pareto-2", spark))
    second = _dropped_by(store, "quality_pareto_sampled_out")
    assert first and first == second


def test_missing_classifier_fails_fast_unless_trained_earlier_in_the_run(tmp_path):
    config = make_config(tmp_path, quality={"classifier": {"enabled": True}})
    with pytest.raises(ConfigError, match=r"quality\.classifier\.model.*curate train-quality"):
        quality.check(StageContext(config, "check"))
    quality.check(StageContext(config, "check", earlier=("ingest", "train_quality")))


def test_model_without_card_uses_config_normalisation(trained, tmp_path):
    config, _, _, _ = trained
    bare = tmp_path / "elsewhere.bin"
    shutil.copyfile(config.training_output("quality"), bare)
    settings = config.model_copy(deep=True)
    settings.quality.classifier.model = str(bare)
    settings.quality.classifier.normalization.max_chars = 123
    scoring = models.scoring_model(settings, "quality")
    assert scoring.normalization.max_chars == 123 and scoring.positive_label == "hq"
    assert models.scoring_model(config, "quality").normalization.max_chars == 20_000  # from the card


def test_model_and_card_on_s3(trained, s3_server, s3_bucket):
    config, _, _, _ = trained
    uri = f"s3://{s3_bucket}/models/quality.bin"
    storage.upload(config.training_output("quality"), uri, s3_server)
    storage.upload(config.training_output("quality") + ".card.json", uri + ".card.json", s3_server)
    settings = config.model_copy(deep=True)
    settings.quality.classifier.model = uri
    settings.output.storage_options = dict(s3_server)
    scoring = models.scoring_model(settings, "quality")
    assert scoring.positive_label == "hq"
    model = scoring.load()
    assert fasttext_models.label_probability(model, ["some text"], "hq").shape == (1,)
