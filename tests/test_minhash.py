"""MinHash math without Spark: datasketch bit-compatibility, exact multiply-shift, LSH parameters."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from udfs.minhash import (
    MAX_HASH32,
    MinHashSpec,
    apply_fast_permutations,
    band_keys,
    candidate_probability,
    estimate_jaccard,
    fast_permutations,
    fast_shingles,
    fmix64,
    optimal_lsh_params,
    shingle_strings,
    signatures,
)
from udfs.normalize import TextNormalization, normalize

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho".split()


def _random_documents(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    docs = []
    for _ in range(count):
        length = rng.choice([0, 1, 3, 5, 6, 40, 200])
        words = [rng.choice(WORDS) + rng.choice(["", ",", ".", "!"]) for _ in range(length)]
        docs.append(" ".join(words).capitalize() if rng.random() < 0.5 else " ".join(words))
    return docs


@pytest.mark.parametrize(("unit", "ngram", "num_perm", "seed"),
                         [("word", 5, 128, 1), ("word", 3, 64, 42), ("char", 5, 32, 7)])
def test_datasketch_mode_is_bit_identical(unit, ngram, num_perm, seed):
    spec = MinHashSpec(num_perm=num_perm, seed=seed, ngram=ngram, unit=unit, hash_mode="datasketch")
    docs = _random_documents(300, seed)
    ours, has = signatures(pa.array(docs), spec)
    normalized = normalize(pa.array(docs), spec.normalization).to_pylist()
    for index, text in enumerate(normalized):
        reference = MinHash(num_perm=num_perm, seed=seed)
        grams = shingle_strings(text, spec)
        reference.update_batch([gram.encode("utf-8") for gram in grams])
        assert np.array_equal(ours[index], reference.hashvalues), index
        assert has[index] == bool(grams)


def test_multiply_shift_matches_big_integer_arithmetic():
    a, b = fast_permutations(64, seed=3)
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, np.iinfo(np.uint64).max, size=500, dtype=np.uint64, endpoint=True)
    hashes[:4] = [0, 1, (1 << 64) - 1, 1 << 63]
    ours = apply_fast_permutations(hashes, a, b)
    for i, x in enumerate(hashes.tolist()):
        for j in (0, 17, 63):
            exact = ((int(a[j]) * x + int(b[j])) % (1 << 64)) >> 32
            assert int(ours[i, j]) == exact
    assert np.all(a % 2 == 1)


def test_fast_mode_estimates_jaccard():
    spec = MinHashSpec(num_perm=256)
    rng = random.Random(5)
    def word() -> str:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6))

    base = [word() for _ in range(400)]
    variant = list(base)
    for position in rng.sample(range(400), 40):
        variant[position] = word()

    def true_jaccard(left, right):
        grams = [{" ".join(d[i:i + 5]) for i in range(len(d) - 4)} for d in (left, right)]
        return len(grams[0] & grams[1]) / len(grams[0] | grams[1])

    sigs, _ = signatures(pa.array([" ".join(base), " ".join(variant)]), spec)
    assert abs(estimate_jaccard(sigs[0], sigs[1]) - true_jaccard(base, variant)) < 0.08


def test_fast_mode_is_deterministic_and_batch_independent():
    docs = _random_documents(200, 9)
    spec = MinHashSpec(num_perm=32)
    whole, _ = signatures(pa.array(docs), spec)
    parts = np.vstack([signatures(pa.array(docs[i:i + 37]), spec)[0] for i in range(0, 200, 37)])
    assert np.array_equal(whole, parts)


def test_empty_and_short_documents():
    spec = MinHashSpec(num_perm=16, ngram=5)
    texts = pa.array(["", "   ", None, "only three words", "only three words!", "other short"])
    sigs, has = signatures(texts, spec)
    assert has.tolist() == [False, False, False, True, True, True]
    assert np.all(sigs[:3] == MAX_HASH32)
    assert np.array_equal(sigs[3], sigs[4])  # punctuation is normalised away
    assert not np.array_equal(sigs[3], sigs[5])


def test_long_documents_are_capped():
    spec = MinHashSpec(num_perm=16, max_shingles=10)
    head = " ".join(f"w{i}" for i in range(14))
    long_a = head + " " + " ".join(f"a{i}" for i in range(1000))
    long_b = head + " " + " ".join(f"b{i}" for i in range(1000))
    sigs, _ = signatures(pa.array([long_a, long_b]), spec)
    assert np.array_equal(sigs[0], sigs[1])  # only the first 10 shingles count


def test_normalization_switches():
    text = pa.array(["Crème  Brûlée, 1984 edition!"])
    assert normalize(text, TextNormalization()).to_pylist() == ["creme brulee 0 edition"]
    assert normalize(text, TextNormalization(lowercase=False, accents=False, digits=False)).to_pylist() == [
        "Crème Brûlée 1984 edition"]
    assert normalize(text, TextNormalization(False, False, False, False, False)).to_pylist() == [
        "Crème  Brûlée, 1984 edition!"]


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.8, 0.9])
@pytest.mark.parametrize("num_perm", [64, 128])
def test_lsh_parameters_match_datasketch(threshold, num_perm):
    assert optimal_lsh_params(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


def test_candidate_probability_and_band_keys():
    assert candidate_probability(1.0, 9, 13) == pytest.approx(1.0)
    assert candidate_probability(0.0, 9, 13) == pytest.approx(0.0)
    assert candidate_probability(0.8, 14, 8) == pytest.approx(1 - (1 - 0.8 ** 8) ** 14)
    sig = np.arange(24, dtype=np.uint32).reshape(2, 12)
    sig[1, 4:8] = sig[0, 4:8]
    keys = band_keys(sig, bands=3, rows=4)
    assert keys.shape == (2, 3) and keys.dtype == np.int64
    assert keys[0, 1] == keys[1, 1] and keys[0, 0] != keys[1, 0]
    with pytest.raises(ValueError):
        band_keys(sig, bands=4, rows=4)


def test_fmix64_is_a_bijection_on_a_sample():
    values = np.arange(100_000, dtype=np.uint64)
    assert len(np.unique(fmix64(values))) == len(values)


def test_signatures_equal_the_reference_multiply_shift_minimum():
    docs = _random_documents(60, 4)
    spec = MinHashSpec(num_perm=24, seed=8)
    shingles = fast_shingles(pa.array(docs), spec)
    a, b = fast_permutations(spec.num_perm, spec.seed)
    ours, has = signatures(pa.array(docs), spec)
    for index in np.flatnonzero(has):
        lo, hi = shingles.offsets[index], shingles.offsets[index + 1]
        reference = apply_fast_permutations(shingles.hashes[lo:hi], a, b).min(axis=0)
        assert np.array_equal(ours[index], reference)
