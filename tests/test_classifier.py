"""Classifier math and training without Spark: normalisation, metrics pinned by hand, cards, fit."""

from __future__ import annotations

import numpy as np
import pytest

from udfs import classifier as clf
from udfs import fasttext_models


def test_normalisation_lowercases_splits_punctuation_and_makes_one_line():
    texts = ["Hello, World!\nIt's  fine.", None, "Ünïcode—dash\t\u00a0end", "x" * 50]
    normalized = clf.normalize_texts(texts, clf.ClassifierNormalization(max_chars=30))
    assert normalized[0] == "hello , world ! it ' s fine ."
    assert normalized[1] == ""
    assert normalized[2] == "ünïcode — dash end"  # letters with accents stay words; NBSP is whitespace
    assert normalized[3] == "x" * 30
    assert clf.normalize_texts(["A.B"], clf.ClassifierNormalization(lowercase=False,
                                                                    split_punctuation=False)) == ["A.B"]


def test_normalisation_version_is_checked():
    assert clf.ClassifierNormalization.from_dict({"lowercase": False, "version": 1}).lowercase is False
    with pytest.raises(ValueError, match="version 2 is not supported"):
        clf.ClassifierNormalization.from_dict({"version": 2})


def test_roc_auc_matches_hand_count():
    # positives 0.9, 0.4; negatives 0.5, 0.1, 0.4 -> pairs won: (0.9>all)=3, (0.4>0.1)=1, (0.4=0.4)=0.5
    scores = np.array([0.9, 0.4, 0.5, 0.1, 0.4])
    truth = np.array([True, True, False, False, False])
    assert clf.roc_auc(scores, truth) == pytest.approx(4.5 / 6)
    assert clf.roc_auc(scores, np.ones(5, dtype=bool)) is None


def test_binary_and_multiclass_metrics_by_hand():
    metrics = clf.binary_metrics(np.array([0.9, 0.6, 0.4, 0.2]), np.array([True, False, True, False]))
    assert (metrics["precision"], metrics["recall"], metrics["accuracy"]) == (0.5, 0.5, 0.5)
    assert metrics["roc_auc"] == 0.75  # 3 of 4 (pos, neg) pairs ordered correctly
    multi = clf.multiclass_metrics(["a", "a", "b", "c"], ["a", "b", "b", "c"])
    assert multi["accuracy"] == 0.75
    assert multi["per_label"]["a"] == {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 1}
    assert multi["per_label"]["b"]["recall"] == 0.5


def test_training_lines_reject_labels_fasttext_would_split():
    assert clf.training_lines(["some text"], ["hq"]) == ["__label__hq some text"]
    with pytest.raises(ValueError, match="no whitespace"):
        clf.training_lines(["text"], ["two words"])


def test_card_round_trip():
    card = clf.ModelCard(kind="quality", labels=["hq", "cc"], positive_label="hq",
                         normalization={"lowercase": True, "split_punctuation": True, "max_chars": 100,
                                        "version": 1},
                         hyperparameters={"epoch": 1}, data={"train": {"hq": 1}}, metrics={},
                         model_sha256="ab", model_bytes=3, run_id="r", created_at="now")
    again = clf.ModelCard.from_json(card.to_json())
    assert again == card and again.text_normalization.max_chars == 100


def _toy_lines(count: int = 300) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(3)
    sport = "goal match team player score league coach season win".split()
    food = "bake flour sugar oven recipe butter salt dough cake".split()
    texts, labels = [], []
    for index in range(count):
        vocabulary, label = (sport, "sport") if index % 2 else (food, "food")
        texts.append(" ".join(rng.choice(vocabulary, 30)))
        labels.append(label)
    return texts, labels


def test_fit_learns_a_separable_task_and_is_reproducible():
    texts, labels = _toy_lines()
    lines = clf.training_lines(texts, labels)
    params = clf.FastTextParams(epoch=5, dim=8)
    model, used = clf.fit(lines, params)
    again, _ = clf.fit(lines, params)
    assert used == params  # no learning-rate halving was needed
    predicted, scores = fasttext_models.predict_top(model, ["flour sugar oven cake", "coach team goal win"])
    assert predicted == ["food", "sport"] and (scores > 0.5).all()
    assert np.array_equal(model.get_input_matrix(), again.get_input_matrix())  # thread 1: same model


def test_fit_rejects_an_empty_training_set():
    with pytest.raises(ValueError, match="no training examples"):
        clf.fit([], clf.FastTextParams())
