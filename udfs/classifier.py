"""fastText document classifiers (quality, topic): the text normalisation shared by training and scoring,
the model card, training (in a fresh local process) and held-out metrics. Scoring in Spark (model fetching
and the pandas UDFs) is in :mod:`jobs.core.models` and :mod:`jobs.core.pandas_udfs`.

A model is only as good as the agreement between how its training text and its scoring text were
prepared, so the normalisation is a versioned value written into the model's card at training time and
read back from the card at scoring time.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from udfs import fasttext_models

NORMALIZATION_VERSION = 1
LABEL_PREFIX = "__label__"
CARD_SUFFIX = ".card.json"


@dataclass(frozen=True)
class ClassifierNormalization:
    """Version 1: truncate, lower-case, split punctuation into tokens, one line of single spaces.

    ``max_chars`` bounds the cost of a page; fastText averages token vectors, so the head of a long page
    carries nearly all of its signal."""

    lowercase: bool = True
    split_punctuation: bool = True
    max_chars: int = 20_000
    version: int = NORMALIZATION_VERSION

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ClassifierNormalization:
        known = {name: values[name] for name in ("lowercase", "split_punctuation", "max_chars", "version")
                 if name in values}
        normalization = cls(**known)
        if normalization.version != NORMALIZATION_VERSION:
            raise ValueError(f"text normalisation version {normalization.version} is not supported "
                             f"(this build has version {NORMALIZATION_VERSION})")
        return normalization


def normalize_texts(texts: pa.Array | pa.ChunkedArray | Sequence[str | None],
                    normalization: ClassifierNormalization) -> list[str]:
    """One fastText input line per text (nulls become empty lines), in Arrow compute kernels."""
    values = texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(texts, type=pa.string())
    values = pc.utf8_slice_codeunits(values.fill_null(""), 0, normalization.max_chars)
    if normalization.lowercase:
        values = pc.utf8_lower(values)
    if normalization.split_punctuation:
        values = pc.replace_substring_regex(values, r"([^\p{L}\p{N}\s])", r" \1 ")
    values = pc.utf8_trim_whitespace(pc.replace_substring_regex(values, r"[\s\p{Z}]+", " "))
    return values.to_pylist()


@dataclass(frozen=True)
class FastTextParams:
    """Supervised fastText hyper-parameters (fastText's own names in :meth:`as_fasttext`).

    ``thread: 1`` makes training reproducible: fastText's parallel SGD is not deterministic."""

    epoch: int = 10
    lr: float = 0.1
    word_ngrams: int = 2
    dim: int = 32
    min_count: int = 2
    bucket: int = 200_000
    loss: Literal["softmax", "ns", "hs", "ova"] = "softmax"
    thread: int = 1
    seed: int = 0

    def as_fasttext(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "lr": self.lr, "wordNgrams": self.word_ngrams, "dim": self.dim,
                "minCount": self.min_count, "bucket": self.bucket, "loss": self.loss,
                "thread": self.thread, "seed": self.seed, "verbose": 0}


@dataclass
class ModelCard:
    """What a trained model is, how it was made and how well it did; saved beside the model."""

    kind: str  # quality | topic
    labels: list[str]
    positive_label: str | None
    normalization: dict[str, Any]
    hyperparameters: dict[str, Any]
    data: dict[str, Any]
    metrics: dict[str, Any]
    model_sha256: str
    model_bytes: int
    run_id: str
    created_at: str
    sources: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        return cls(**json.loads(text))

    @property
    def text_normalization(self) -> ClassifierNormalization:
        return ClassifierNormalization.from_dict(self.normalization)


def card_uri(model_uri: str) -> str:
    return model_uri + CARD_SUFFIX


# ------------------------------------------------------------------------------------------ training


def training_lines(normalized: Sequence[str], labels: Sequence[str]) -> list[str]:
    """fastText's supervised format: ``__label__<label> <text>``; label names may not contain spaces."""
    bad = sorted({label for label in labels if not label or any(ch.isspace() for ch in label)})
    if bad:
        raise ValueError(f"labels must be non-empty and contain no whitespace: {bad[:5]}")
    return [f"{LABEL_PREFIX}{label} {text}" for label, text in zip(labels, normalized, strict=True)]


def _zeroed_large_allocations() -> None:
    """Make every allocation above 4 KiB a fresh (zero-filled) mapping, in this process only.

    fastText's ``DenseMatrix::uniform`` initialises only ``thread/10`` of the input matrix and leaves the
    rest as allocated; glibc's malloc may hand back recycled memory there, whose garbage turns into
    "Encountered NaN" (or a silently worse model) at any learning rate. A fixed mmap threshold rules
    recycled memory out for the matrices."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name and "libc.so" in name:  # glibc: mallopt(M_MMAP_THRESHOLD, 4096)
        ctypes.CDLL(name).mallopt(-3, 4096)


def _train_file(train_path: str, vectors_path: str, model_path: str, arguments: dict[str, Any]) -> None:
    """Runs in a fresh process (``python -m udfs.classifier``, see :func:`fit`)."""
    _zeroed_large_allocations()
    import fasttext

    model = fasttext.train_supervised(input=train_path, pretrainedVectors=vectors_path, **arguments)
    model.save_model(model_path)


def _train_in_fresh_process(train_path: str, vectors_path: str, model_path: str,
                            params: FastTextParams) -> None:
    import subprocess
    import sys

    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    completed = subprocess.run(
        [sys.executable, "-m", "udfs.classifier", train_path, vectors_path, model_path,
         json.dumps(params.as_fasttext())], env=environment, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        lines = (completed.stderr or completed.stdout or "").strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"fastText training exited with {completed.returncode}")


def _initial_vectors(lines: Sequence[str], params: FastTextParams, path: str) -> int:
    """Seeded uniform(-1/dim, 1/dim) start vectors for every word fastText will keep (it splits on
    whitespace and adds ``</s>`` per line), so no word starts as fastText's uninitialised rows."""
    counts: dict[str, int] = {"</s>": len(lines)}
    for line in lines:
        for token in line.split()[1:]:
            counts[token] = counts.get(token, 0) + 1
    vocabulary = [token for token, count in counts.items() if count >= params.min_count]
    bound = 1.0 / params.dim
    vectors = np.random.default_rng(params.seed).uniform(-bound, bound, (len(vocabulary), params.dim))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"{len(vocabulary)} {params.dim}\n")
        for token, row in zip(vocabulary, vectors, strict=True):
            handle.write(token + " " + " ".join(f"{value:.6f}" for value in row) + "\n")
    return len(vocabulary)


def fit(lines: Sequence[str], params: FastTextParams, max_halvings: int = 3) -> tuple[Any, FastTextParams]:
    """Train on ``lines`` (see :func:`training_lines`); returns the model and the parameters that trained it.

    Training runs in a fresh process that guards against fastText's partly uninitialised matrices
    (:func:`_zeroed_large_allocations`), starting from seeded word vectors; with ``thread: 1`` the model
    is then the same on every run. If fastText still diverges ("Encountered NaN"), the learning rate
    is halved and training restarts, up to ``max_halvings`` times."""
    if not lines:
        raise ValueError("no training examples")
    fasttext_models.require_training_build()
    with tempfile.TemporaryDirectory(prefix="curate-train-") as workdir:
        train_path = os.path.join(workdir, "train.txt")  # fastText only reads training data from a file
        vectors_path = os.path.join(workdir, "init.vec")
        model_path = os.path.join(workdir, "model.bin")
        with open(train_path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        _initial_vectors(lines, params, vectors_path)
        for attempt in range(max_halvings + 1):
            try:
                _train_in_fresh_process(train_path, vectors_path, model_path, params)
                break
            except RuntimeError:
                if attempt == max_halvings:
                    raise
                params = replace(params, lr=params.lr / 2)
        return fasttext_models.read_model(model_path), params


def roc_auc(scores: np.ndarray, truth: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); None with a single class."""
    from scipy.stats import rankdata  # imported here: the config loader imports this module

    truth = np.asarray(truth, dtype=bool)
    positives, negatives = int(truth.sum()), int((~truth).sum())
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(np.asarray(scores, dtype=np.float64))
    return float((ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def binary_metrics(scores: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Precision, recall, F1 and accuracy of ``score >= threshold`` for the positive class, and ROC-AUC."""
    truth = np.asarray(truth, dtype=bool)
    predicted = np.asarray(scores) >= threshold
    true_positive = int((predicted & truth).sum())
    precision = true_positive / int(predicted.sum()) if predicted.any() else 0.0
    recall = true_positive / int(truth.sum()) if truth.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"threshold": threshold, "examples": int(truth.size), "precision": round(precision, 4),
            "recall": round(recall, 4), "f1": round(f1, 4),
            "accuracy": round(float((predicted == truth).mean()), 4) if truth.size else None,
            "roc_auc": None if (auc := roc_auc(scores, truth)) is None else round(auc, 4)}


def multiclass_metrics(predicted: Sequence[str], truth: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-label precision/recall."""
    predicted_array, truth_array = np.asarray(predicted, dtype=object), np.asarray(truth, dtype=object)
    per_label: dict[str, dict[str, float]] = {}
    for label in sorted(set(truth_array.tolist()) | set(predicted_array.tolist())):
        hits = int(((predicted_array == label) & (truth_array == label)).sum())
        predicted_count, true_count = int((predicted_array == label).sum()), int((truth_array == label).sum())
        precision = hits / predicted_count if predicted_count else 0.0
        recall = hits / true_count if true_count else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {"precision": round(precision, 4), "recall": round(recall, 4),
                            "f1": round(f1, 4), "support": true_count}
    accuracy = float((predicted_array == truth_array).mean()) if truth_array.size else 0.0
    macro_f1 = float(np.mean([row["f1"] for row in per_label.values()])) if per_label else 0.0
    return {"examples": int(truth_array.size), "accuracy": round(accuracy, 4),
            "macro_f1": round(macro_f1, 4), "per_label": per_label}


if __name__ == "__main__":  # the training process started by fit()
    import sys

    _train_file(sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))
