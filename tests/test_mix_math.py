"""Mixture weight math and plans, pinned on hand-computed examples (no Spark)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jobs.core.models import load_tokenizer
from jobs.mix import read_weights_file
from udfs import mix


def test_temperature_weights_by_hand():
    tokens = {"a": 100.0, "b": 400.0}
    assert mix.temperature_weights(tokens, 1.0) == pytest.approx({"a": 0.2, "b": 0.8})
    # T = 2: sqrt -> 10 and 20 -> 1/3, 2/3
    assert mix.temperature_weights(tokens, 2.0) == pytest.approx({"a": 1 / 3, "b": 2 / 3})
    flat = mix.temperature_weights(tokens, 1e6)
    assert flat["a"] == pytest.approx(0.5, abs=1e-5)


def test_unimax_smallest_first_with_epoch_cap():
    # budget 600, cap 2 epochs: a gets min(600/3, 20) = 20; b min(580/2, 200) = 200; c min(380, 2000) = 380
    weights = mix.unimax_weights({"a": 10, "b": 100, "c": 1000}, budget=600, max_epochs=2)
    assert weights == pytest.approx({"a": 20 / 600, "b": 200 / 600, "c": 380 / 600})
    # a large cap gives the uniform split
    uniform = mix.unimax_weights({"a": 10, "b": 100}, budget=20, max_epochs=10)
    assert uniform == pytest.approx({"a": 0.5, "b": 0.5})


def test_plan_splits_into_whole_copies_and_a_remainder_and_flags_caps():
    available = {"a": (10, 100), "b": (5, 50), "c": (3, 30)}
    plans = {plan.domain: plan for plan in
             mix.plan_phase("main", available, {"a": 1, "b": 1}, budget=300, max_epochs=2)}
    a, b, c = plans["a"], plans["b"], plans["c"]
    assert (a.target_tokens, a.planned_tokens, a.full_copies, a.remainder_tokens) == (150, 150, 1, 50)
    assert a.feasible and not a.cap_bound and a.factor == 1.5
    # b asks for 150 tokens but 2 epochs of 50 is 100: capped, flagged, not renormalised onto a
    assert (b.planned_tokens, b.full_copies, b.remainder_tokens) == (100, 2, 0)
    assert not b.feasible and b.cap_bound
    assert (c.target_weight, c.planned_tokens, c.full_copies, c.cap_bound) == (0.0, 0.0, 0, False)


def test_downsampling_plan_has_no_whole_copies():
    plan = mix.plan_phase("p", {"a": (4, 1000)}, {"a": 1.0}, budget=250, max_epochs=1)[0]
    assert (plan.full_copies, plan.remainder_tokens, plan.factor) == (0, 250, 0.25)


def test_weights_must_be_usable():
    with pytest.raises(ValueError, match="sum to zero"):
        mix.normalized({"a": 0.0})
    with pytest.raises(ValueError, match="finite"):
        mix.normalized({"a": -1.0})


@pytest.mark.parametrize("payload", [
    {"a": 0.25, "b": 0.75},
    {"domain_weights": {"a": 0.25, "b": 0.75}, "step": 1000},
    [{"domain": "a", "weight": 0.25}, {"domain": "b", "weight": 0.75}],
])
def test_weights_file_formats(tmp_path, payload):
    path = tmp_path / "weights.json"
    path.write_text(json.dumps(payload))
    assert read_weights_file(str(path)) == {"a": 0.25, "b": 0.75}


def test_token_estimate_and_tokenizer_counts(tmp_path):
    assert mix.estimate_tokens(np.array([0, 1, 4, 5, 400])).tolist() == [0, 1, 1, 2, 100]
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocabulary = {"[UNK]": 0, "the": 1, "cat": 2, "sat": 3}
    tokenizer = Tokenizer(models.WordLevel(vocabulary, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))
    loaded = load_tokenizer(str(path))
    assert mix.count_tokens(["the cat sat", "", None, "the dog"], loaded).tolist() == [3, 0, 0, 2]


def test_power_of_two_chunks_follow_the_binary_digits():
    # 1000 = 512 + 256 + 128 + 64 + 32 + 8; with min 2^4 the 8-token tail is dropped
    assert mix.power_of_two_chunks(1000, 4, 9) == [(0, 512), (512, 256), (768, 128), (896, 64), (960, 32)]
    # longer than the largest bucket: whole 2^max chunks first
    assert mix.power_of_two_chunks(2100, 4, 10) == [(0, 1024), (1024, 1024), (2048, 32), (2080, 16)]
    assert mix.power_of_two_chunks(10, 4, 10) == []


def test_decompose_with_and_without_a_tokenizer():
    import pyarrow as pa
    from tokenizers import Tokenizer, models, pre_tokenizers

    table = pa.table({"doc_id": ["a", "b"], "n_tokens": [5, 3], "text": ["x " * 11, "y y y"]})
    by_chars = mix.decompose(table, 1, 3, chars_per_token=2.0)  # 22 chars = 11 tokens -> 8 + 2 (+1 dropped)
    assert by_chars.column("doc_id").to_pylist() == ["a", "a", "b"]
    assert by_chars.column("bucket").to_pylist() == [8, 2, 2]
    assert by_chars.column("text").to_pylist()[1] == "x x "
    vocabulary = {"[UNK]": 0, "x": 1, "y": 2}
    tokenizer = Tokenizer(models.WordLevel(vocabulary, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    exact = mix.decompose(table, 0, 3, tokenizer=tokenizer)  # 11 = 8 + 2 + 1; 3 = 2 + 1
    assert exact.column("bucket").to_pylist() == [8, 2, 1, 2, 1]
    assert exact.column("input_ids").to_pylist()[3] == [2, 2]
    assert exact.column("chunk_index").to_pylist() == [0, 1, 2, 0, 1]
