"""fastText model resolution, caching and batch prediction with the real lid.176.ftz model."""

from __future__ import annotations

import os

import pytest

from jobs.core import storage
from jobs.core.models import resolve_model
from udfs import fasttext_models as ftm
from udfs.demo_corpus import FOREIGN, DemoSpec, original_page


def test_packaged_lid_model_predicts_languages():
    model = ftm.load_model(resolve_model(ftm.DEFAULT_LID_MODEL))
    assert ftm.load_model(resolve_model(ftm.DEFAULT_LID_MODEL)) is model  # once per process
    labels, scores = ftm.predict_top(model, ["The quick brown fox jumps over the lazy dog.\nAgain!",
                                             "Der schnelle braune Fuchs springt über den faulen Hund."])
    assert labels == ["en", "de"] and all(0.5 < score <= 1.0 for score in scores)
    assert ftm.predict_top(model, []) == ([], pytest.approx([]))


def test_lid_on_demo_pages():
    spec = DemoSpec(docs=2000, seed=4, workers=1)
    # Well-formed pages; all-caps spam word salad is where language ID is unreliable, as on the web.
    pages = [page for page in (original_page(spec, index) for index in range(2000)) if page.quality == "good"]
    model = ftm.load_model(resolve_model(ftm.DEFAULT_LID_MODEL))
    labels, _ = ftm.predict_top(model, [page.text for page in pages])
    correct = sum(label == page.lang for label, page in zip(labels, pages, strict=True))
    assert correct / len(pages) > 0.99
    assert {page.lang for page in pages} - {"en"} <= set(FOREIGN)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ftm.ModelError, match="model file not found"):
        resolve_model(str(tmp_path / "nope.bin"))
    broken = tmp_path / "broken.bin"
    broken.write_bytes(b"not a model")
    with pytest.raises(ftm.ModelError):
        ftm.load_model(str(broken))


def test_s3_model_is_downloaded_once_and_checksummed(s3_server, s3_bucket, tmp_path):
    source = ftm.packaged_lid_model()
    uri = f"s3://{s3_bucket}/models/lid.ftz"
    storage.upload(source, uri, s3_server)
    digest = ftm.sha256_of(source)
    local = resolve_model(uri, s3_server, cache_dir=str(tmp_path), expected_sha256=digest)
    assert ftm.sha256_of(local) == digest
    assert resolve_model(uri, s3_server, cache_dir=str(tmp_path)) == local
    with pytest.raises(ftm.ModelError, match="expected"):
        resolve_model(uri, s3_server, cache_dir=str(tmp_path), expected_sha256="0" * 64)


def test_a_model_retrained_in_place_is_read_again(tmp_path):
    """A worker that scored with a model must not keep serving it after the file was replaced."""
    from udfs.classifier import FastTextParams, fit

    first, _ = fit([f"__label__a alpha word{i}" for i in range(20)]
                   + [f"__label__b beta word{i}" for i in range(20)], FastTextParams())
    path = str(tmp_path / "model.bin")
    first.save_model(path)
    assert set(ftm.load_model(path).get_labels()) == {"__label__a", "__label__b"}
    second, _ = fit([f"__label__c gamma word{i}" for i in range(20)]
                    + [f"__label__d delta word{i}" for i in range(20)], FastTextParams())
    second.save_model(path + ".new")
    os.replace(path + ".new", path)
    assert set(ftm.load_model(path).get_labels()) == {"__label__c", "__label__d"}
