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
    # budget 600, capacity 2 epochs each: a gets min(600/3, 20) = 20; b min(580/2, 200) = 200; c 380
    weights = mix.unimax_weights({"a": 20, "b": 200, "c": 2000}, budget=600)
    assert weights == pytest.approx({"a": 20 / 600, "b": 200 / 600, "c": 380 / 600})
    # a large capacity gives the uniform split; a domain with no room left gets nothing
    assert mix.unimax_weights({"a": 100, "b": 1000}, budget=20) == pytest.approx({"a": 0.5, "b": 0.5})
    assert mix.unimax_weights({"a": 0, "b": 1000}, budget=20) == pytest.approx({"a": 0.0, "b": 1.0})


CAPS = {"a": 2.0, "b": 2.0, "c": 2.0}


def test_plan_takes_its_stretch_of_each_domain_stream_and_flags_caps():
    available = {"a": (10, 100), "b": (5, 50), "c": (3, 30)}
    plans = {plan.domain: plan for plan in
             mix.plan_phase("main", available, {"a": 1, "b": 1}, budget=300, max_epochs=CAPS)}
    a, b, c = plans["a"], plans["b"], plans["c"]
    assert (a.target_tokens, a.planned_tokens, a.stream_start, a.stream_end) == (150, 150, 0, 150)
    assert a.feasible and not a.cap_bound and a.factor == 1.5 and a.cap_tokens == 200
    # b asks for 150 tokens but 2 epochs of 50 is 100: capped, flagged, not renormalised onto a
    assert (b.planned_tokens, b.feasible, b.cap_bound) == (100, False, True)
    assert (c.target_weight, c.planned_tokens, c.cap_bound) == (0.0, 0.0, False)


def test_a_later_phase_starts_where_the_earlier_ones_stopped_and_shares_their_cap():
    available = {"a": (10, 100)}
    caps = {"a": 1.0}
    main = mix.plan_phase("main", available, {"a": 1.0}, budget=80, max_epochs=caps)[0]
    anneal = mix.plan_phase("anneal", available, {"a": 1.0}, budget=20, max_epochs=caps,
                            taken={"a": main.planned_tokens})[0]
    assert (anneal.stream_start, anneal.stream_end, anneal.feasible) == (80, 100, True)
    # one token more than the cap leaves over the whole schedule is infeasible, however the phases split
    greedy = mix.plan_phase("anneal", available, {"a": 1.0}, budget=21, max_epochs=caps, taken={"a": 80})[0]
    assert (greedy.planned_tokens, greedy.feasible, greedy.cap_bound) == (20, False, True)
    assert mix.schedule_epochs([main, anneal]) == {"a": 1.0}


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
    by_chars, tails = mix.decompose(table, 1, 3, chars_per_token=2.0)  # 22 chars = 11 tokens -> 8 + 2 (+1)
    assert tails.tolist() == [1, 0]  # 5 chars = 2 tokens -> 2; the 1-token tail of "a" is reported
    assert by_chars.column("doc_id").to_pylist() == ["a", "a", "b"]
    assert by_chars.column("bucket").to_pylist() == [8, 2, 2]
    assert by_chars.column("text").to_pylist()[1] == "x x "
    vocabulary = {"[UNK]": 0, "x": 1, "y": 2}
    tokenizer = Tokenizer(models.WordLevel(vocabulary, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    exact, tails = mix.decompose(table, 0, 3, tokenizer=tokenizer)  # 11 = 8 + 2 + 1; 3 = 2 + 1
    assert tails.tolist() == [0, 0]
    assert exact.column("bucket").to_pylist() == [8, 2, 1, 2, 1]
    assert exact.column("input_ids").to_pylist()[3] == [2, 2]
    assert exact.column("chunk_index").to_pylist() == [0, 1, 2, 0, 1]


def byte_level_tokenizer(vocab_size: int = 400):
    """A small lossless byte-level BPE with an EOS token, trained here on a few phrases."""
    from udfs.demo_corpus import byte_level_bpe

    return byte_level_bpe(["the cat sat on the mat", "URL: en.wiki.example", "Grüße 日本語"] * 20, vocab_size)


def test_tokenized_documents_round_trip_with_prefix_and_eos():
    import pyarrow as pa

    tokenizer = byte_level_tokenizer()
    eos_token, eos_id = mix.resolve_eos(tokenizer)
    assert eos_token == "<|endoftext|>"
    texts = pa.array(["the cat sat", "Grüße aus 日本語 ✓", "", None])
    prefixes = pa.array(["URL: en.wiki.example\n\n", None, "URL: x\n\n", None])
    shard = mix.tokenize_documents(texts, prefixes, tokenizer, eos_id, mix.token_dtype(400))
    assert shard.tokens.dtype == np.dtype("<u2") and shard.offsets[0] == 0
    assert shard.offsets[-1] == len(shard.tokens) and len(shard.offsets) == 5
    for row, (text, prefix) in enumerate(zip(texts.to_pylist(), prefixes.to_pylist(), strict=True)):
        ids = shard.tokens[shard.offsets[row]:shard.offsets[row + 1]].tolist()
        cut = int(shard.prefix_tokens[row])
        assert ids[-1] == eos_id and eos_id not in ids[:-1]
        assert tokenizer.decode(ids[:cut]) == (prefix or "")
        assert tokenizer.decode(ids[cut:-1]) == (text or "")


def test_eos_and_token_width():
    tokenizer = byte_level_tokenizer()
    with pytest.raises(ValueError, match="no end-of-document token '</s>'"):
        mix.resolve_eos(tokenizer, "</s>")
    assert mix.token_dtype(65_536) == np.dtype("<u2") and mix.token_dtype(65_537) == np.dtype("<u4")


def test_meco_rows_and_prefixes():
    import pyarrow as pa

    # rows of 10 tokens from token 25 of the export on; the first 40 tokens are conditioned: the rows
    # starting at 25 and 35 are, the one at 45 is not
    assert mix.conditioned_rows(np.array([10, 10, 10]), 25, 40).tolist() == [True, True, False]
    hosts = pa.array(["en.wiki.example", None, "", "b.example"])
    urls = pa.array(["https://en.wiki.example/a", "https://x/", "https://y/", "https://b.example/p"])
    mask = np.array([True, True, True, False])
    assert mix.meta_prefixes(hosts, urls, "URL: {host}\n\n", mask).to_pylist() == [
        "URL: en.wiki.example\n\n", None, None, None]  # no host, empty host, not conditioned
    assert mix.meta_prefixes(hosts, urls, "{url} | ", mask).to_pylist()[:2] == [
        "https://en.wiki.example/a | ", "https://x/ | "]
    for bad in ("URL: {domain}", "no field"):
        with pytest.raises(ValueError, match="template must name"):
            mix.check_meta_template(bad)
