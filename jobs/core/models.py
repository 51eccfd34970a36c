"""Artefacts the workers load: fastText models (the packaged language-ID model, a local file, or an
``s3://`` object fetched once into a local cache and sha256-checked), their cards, and tokenizers.

Spark tasks never ship model objects (fastText models do not pickle): they ship a :class:`ScoringModel`
and each Python worker resolves and loads the model the first time it needs it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.core import storage
from udfs import fasttext_models
from udfs.classifier import ClassifierNormalization, ModelCard, card_uri
from udfs.fasttext_models import DEFAULT_LID_MODEL, ModelError, packaged_lid_model, sha256_of

if TYPE_CHECKING:
    from jobs.core.config import ClassifierKind, Config

_TOKENIZERS: dict[str, Any] = {}


def resolve_model(uri: str, storage_options: Mapping[str, str] | None = None,
                  cache_dir: str | None = None, expected_sha256: str | None = None) -> str:
    """A local file for ``uri``: the packaged LID model, a local path, or an s3:// object downloaded
    once into the cache (re-downloaded when the cached copy's checksum does not match)."""
    if uri == DEFAULT_LID_MODEL:
        local = packaged_lid_model()
    elif storage.is_s3(uri):
        bucket, key = storage.split_s3(uri)
        cache = cache_dir or os.path.join(tempfile.gettempdir(), "curate-models")
        local = os.path.join(cache, bucket, key)
        stamp = local + ".etag"  # the object's ETag when cached: a model retrained in place is fetched again
        try:
            etag = storage.object_etag(uri, storage_options)
            cached = (os.path.exists(local) and os.path.exists(stamp)
                      and Path(stamp).read_text(encoding="utf-8") == etag)
            if not cached or (expected_sha256 and sha256_of(local) != expected_sha256):
                storage.download(uri, local, storage_options)
                storage.write_bytes(stamp, etag.encode())
        except Exception as exc:
            raise ModelError(f"cannot download model {uri}: {exc}") from exc
    else:
        local = os.path.expanduser(uri)
        if not os.path.isfile(local):
            raise ModelError(f"model file not found: {uri}")
    if expected_sha256 and sha256_of(local) != expected_sha256:
        raise ModelError(f"model {uri} has sha256 {sha256_of(local)}, expected {expected_sha256}")
    return local


def load(uri: str, storage_options: Mapping[str, str] | None = None,
         expected_sha256: str | None = None) -> Any:
    """The model at ``uri``, resolved and loaded once per process."""
    return fasttext_models.load_model(resolve_model(uri, storage_options, expected_sha256=expected_sha256))


def verify(uri: str, storage_options: Mapping[str, str] | None = None,
           expected_sha256: str | None = None) -> None:
    """Fetch and read the model once, without keeping it (the driver's check before Spark starts)."""
    fasttext_models.read_model(resolve_model(uri, storage_options, expected_sha256=expected_sha256))


def read_card(model_uri: str, storage_options: Mapping[str, str] | None = None) -> ModelCard | None:
    """The card saved beside ``model_uri``, or None for a model trained elsewhere."""
    uri = card_uri(model_uri)
    if not storage.exists(uri, storage_options):
        return None
    try:
        return ModelCard.from_json(storage.read_bytes(uri, storage_options).decode("utf-8"))
    except (ValueError, TypeError) as exc:
        raise ModelError(f"model card {uri} is unreadable: {exc}") from exc


@dataclass(frozen=True)
class ScoringModel:
    """Everything a Python worker needs to load and apply a classifier (picklable: no model object)."""

    uri: str
    normalization: ClassifierNormalization
    positive_label: str | None = None  # set: the probability of this label; unset: the top label
    sha256: str | None = None
    storage_options: Mapping[str, str] = field(default_factory=dict)

    def load(self) -> Any:
        return load(self.uri, self.storage_options, self.sha256)


def load_tokenizer(uri: str, storage_options: Mapping[str, str] | None = None) -> Any:
    """A Hugging Face ``tokenizers`` JSON file (local path or s3://), loaded once per process."""
    tokenizer = _TOKENIZERS.get(uri)
    if tokenizer is None:
        from tokenizers import Tokenizer

        tokenizer = _TOKENIZERS[uri] = Tokenizer.from_str(storage.read_bytes(uri, storage_options).decode())
    return tokenizer


def scoring_model(config: Config, kind: ClassifierKind) -> ScoringModel:
    """The classifier as configured, with the normalisation and label its card recorded at training
    (a model trained elsewhere has no card: the config's normalisation and positive label apply)."""
    settings = config.classifier(kind)
    uri = config.model_uri(kind)
    options = dict(config.output.storage_options)
    card = read_card(uri, options)
    if card is not None:
        if card.kind != kind:
            raise ModelError(f"{uri} is a {card.kind} classifier, not a {kind} classifier")
        normalization = card.text_normalization
        positive_label = card.positive_label
    else:
        normalization = settings.normalization.as_normalization()
        positive_label = getattr(settings, "positive_label", None)
    return ScoringModel(uri=uri, normalization=normalization, positive_label=positive_label,
                        sha256=settings.model_sha256, storage_options=options)


def check_classifier(config: Config, kind: ClassifierKind) -> None:
    """A missing, unreadable or wrong-kind classifier is a config error (exit 2) before Spark work,
    naming the command that trains it."""
    from jobs.core.config import ConfigError

    try:
        scoring = scoring_model(config, kind)
        verify(scoring.uri, scoring.storage_options, scoring.sha256)
    except (ModelError, ValueError) as exc:
        key = f"quality.{'classifier' if kind == 'quality' else kind + '_classifier'}.model"
        raise ConfigError(f"{exc} (train it with: curate train-{kind} --config {config.source})", key=key,
                          source=config.source) from None
