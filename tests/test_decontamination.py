"""Benchmark decontamination without Spark: n-gram hashing, the index, matching thresholds, span removal."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import udfs.decontamination as decontamination
from udfs.decontamination import (
    SIGNAL_SCHEMA,
    BenchmarkIndex,
    DecontaminationRules,
    benchmark_items,
    build_index,
    find_contamination,
    ngram_hashes,
)

# 23 normalised words: which gas do green plants absorb from the air during photosynthesis a oxygen b carbon
# dioxide c nitrogen d helium answer carbon dioxide -> 11 distinct 13-grams.
PHOTOSYNTHESIS = ("Which gas do green plants absorb from the air during photosynthesis? (A) oxygen "
                  "(B) carbon dioxide (C) nitrogen (D) helium. Answer: carbon dioxide")
PHOTOSYNTHESIS_WORDS = 23
# 25 words -> 13 n-grams; it shares "the results of the study show that" (7 words) with everyday prose.
STUDY = ("The results of the study show that the new drug lowers blood pressure in adults. Which conclusion "
         "is supported? (A) none (B) the drug works")
SHORT = "What is the capital of France? Paris"  # 7 words: shorter than an n-gram

PROSE = "Gardening in spring is a pleasure for many people who enjoy fresh air and long evenings outside."


def _items(*rows: tuple[str, str, str]) -> pa.Table:
    benchmarks, ids, texts = zip(*rows, strict=True)
    return pa.table({"benchmark": list(benchmarks), "item_id": list(ids), "text": list(texts)})


@pytest.fixture(scope="module")
def index() -> BenchmarkIndex:
    return build_index(_items(("arc", "arc-17", PHOTOSYNTHESIS), ("pubmedqa", "pq-3", STUDY),
                              ("triviaqa", "tq-1", SHORT)), ngram=13)


def _signals(texts: list[str | None], index: BenchmarkIndex, **rules: object) -> tuple[list, list[dict]]:
    out, signals = find_contamination(pa.array(texts, type=pa.string()), index, DecontaminationRules(**rules))
    assert signals.schema == SIGNAL_SCHEMA
    return out.to_pylist(), signals.to_pylist()


# ------------------------------------------------------------------------------------------- hashing


def test_ngram_hashes_are_positional_normalised_and_full_windows_only():
    texts = pa.array(["A b c d", None, "a, B c. d e", "x y", ""])
    owners, starts, hashes = ngram_hashes(texts, 3)
    assert owners.tolist() == [0, 0, 2, 2, 2]
    assert starts.tolist() == [0, 1, 0, 1, 2]  # word positions within each text
    assert hashes.dtype == np.uint64
    assert hashes[0] == hashes[2] and hashes[1] == hashes[3]  # case and punctuation do not matter
    assert len(set(hashes.tolist())) == 3  # "a b c", "b c d", "c d e"
    # A text shorter than the n-gram has no window at all: "x y" cannot equal a full 3-gram.
    assert ngram_hashes(pa.array(["x y"]), 3)[2].size == 0
    assert ngram_hashes(pa.array(["x y z"]), 3)[2].size == 1
    # Digits are kept: items differing only in their numbers do not collide.
    twelve, thirteen = ngram_hashes(pa.array(["add 12 and 30", "add 13 and 30"]), 4)[2]
    assert twelve != thirteen
    with pytest.raises(ValueError, match="ngram"):
        ngram_hashes(texts, 0)


def test_whitespace_code_points_are_pyarrows():
    """Span removal splits original texts on these code points: they must be exactly the whitespace that
    words() splits on, or words would be placed in the wrong tokens."""
    code_points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    split = pc.utf8_split_whitespace(pa.array(["a" + chr(c) + "b" for c in code_points]))
    arrow_whitespace = np.asarray(code_points)[pc.list_value_length(split).to_numpy() == 2]
    assert arrow_whitespace.tolist() == sorted(decontamination.WHITESPACE_CODE_POINTS.tolist())


# --------------------------------------------------------------------------------------------- index


def test_build_index_counts_ngrams_and_skips_short_items(index):
    assert index.ngram == 13
    assert index.items == 3
    assert index.benchmarks == ["arc", "pubmedqa", "triviaqa"]
    assert index.item_ids == ["arc-17", "pq-3", "tq-1"]
    assert index.item_ngrams.tolist() == [PHOTOSYNTHESIS_WORDS - 12, 25 - 12, 0]
    assert index.skipped_items == 1  # SHORT: 7 words < 13
    assert index.hashes.dtype == np.uint64 and index.item_of_hash.dtype == np.int32
    assert np.all(index.hashes[1:] >= index.hashes[:-1])
    assert len(index.hashes) == 11 + 13
    assert np.bincount(index.item_of_hash, minlength=3).tolist() == [11, 13, 0]


def test_an_item_of_exactly_ngram_words_is_indexed_and_one_word_less_is_skipped():
    thirteen = " ".join(f"word{i}" for i in range(13))
    twelve = " ".join(f"word{i}" for i in range(12))
    index = build_index(_items(("b", "13", thirteen), ("b", "12", twelve), ("b", "empty", "")), ngram=13)
    assert index.item_ngrams.tolist() == [1, 0, 0]
    assert index.skipped_items == 2


def test_repeated_ngrams_count_once_per_item():
    # 20 words made of the same 13-word phrase's tail repeated: duplicates within an item are one entry.
    repeated = "one two three four five six seven eight nine ten eleven twelve thirteen " * 3
    index = build_index(_items(("b", "r", repeated)), ngram=13)
    assert index.item_ngrams.tolist() == [13]  # 39 words, 27 windows, 13 distinct rotations
    assert len(index.hashes) == 13 and len(np.unique(index.hashes)) == 13


def test_a_hash_shared_by_two_items_appears_once_per_item_and_ties_go_to_the_lower_item():
    shared = "the quick brown fox jumps over the lazy dog near the old river"  # 13 words
    first = shared + " bank today"  # 15 words: 3 n-grams
    second = "yesterday " + shared + " bank again and again"  # 18 words: 6 n-grams
    index = build_index(_items(("alpha", "a1", first), ("beta", "b1", second)), ngram=13)
    (shared_hash,) = ngram_hashes(pa.array([shared]), 13)[2]
    entries = np.flatnonzero(index.hashes == shared_hash)
    assert index.item_of_hash[entries].tolist() == [0, 1]

    _, signals = _signals(["intro " + shared + " outro", "intro " + second + " outro"], index)
    tie, whole_second = signals
    assert (tie["decon_benchmark"], tie["decon_item"], tie["decon_matches"]) == ("alpha", "a1", 1)
    # The whole second item: 6 n-grams with it beat the 2 it shares with the first ("... river bank").
    assert (whole_second["decon_item"], whole_second["decon_matches"]) == ("b1", 6)
    assert whole_second["decon_item_fraction"] == 1.0


def test_index_pickles_without_its_lookup_table(index):
    texts = [PROSE + " " + PHOTOSYNTHESIS]
    before = _signals(texts, index)
    assert "bucket_starts" in index.__dict__  # built by the lookup above
    restored = pickle.loads(pickle.dumps(index))
    assert "bucket_starts" not in restored.__dict__
    assert np.array_equal(restored.hashes, index.hashes) and restored.item_ids == index.item_ids
    assert _signals(texts, restored) == before


def test_build_index_requires_its_columns():
    with pytest.raises(ValueError, match="item_id"):
        build_index(pa.table({"benchmark": ["b"], "text": ["t"]}), ngram=13)


# ------------------------------------------------------------------------------------------ matching


def test_verbatim_copy_in_a_longer_page_is_dropped(index):
    page = PROSE + "\nQuiz of the day: " + PHOTOSYNTHESIS + "\nSee you tomorrow."
    out, signals = _signals([page, PROSE], index)
    assert out == [page, PROSE]  # drop mode never edits text
    assert signals[0] == {
        "decon_benchmark": "arc", "decon_item": "arc-17", "decon_matches": 11, "decon_item_fraction": 1.0,
        "decon_reason": "decontaminated:arc", "decon_removed_words": 0,
    }
    assert signals[1] == {
        "decon_benchmark": None, "decon_item": None, "decon_matches": 0, "decon_item_fraction": 0.0,
        "decon_reason": None, "decon_removed_words": 0,
    }


def test_different_case_and_punctuation_is_still_caught(index):
    variant = ("WHICH gas do Green Plants absorb -- from the AIR -- during photosynthesis?! a) Oxygen; "
               "b) Carbon Dioxide; c) Nitrogen; d) Helium ... answer = carbon-dioxide")
    _, signals = _signals([variant], index)
    assert signals[0]["decon_item"] == "arc-17"
    assert signals[0]["decon_matches"] == 11


def test_short_common_phrases_are_not_contamination(index):
    pages = [
        # Two 8-word stretches of the item, separated by other words.
        "Which gas do green plants absorb from the garden? Nobody knows. During photosynthesis (A) oxygen "
        "(B) carbon dioxide (C) is made.",
        # A 12-word stretch: one word short of an n-gram.
        "Quiz: which gas do green plants absorb from the air during photosynthesis (A) nothing else matters.",
        # The everyday phrase the STUDY item starts with, continued differently.
        "The results of the study show that the garden grows faster when watered in the evening hours.",
        SHORT + " is a question everyone can answer about France and Paris.",  # a skipped item cannot match
    ]
    _, signals = _signals(pages, index)
    assert [s["decon_item"] for s in signals] == [None] * 4
    assert [s["decon_matches"] for s in signals] == [0] * 4


def test_thirteen_consecutive_words_are_enough_by_default(index):
    first_thirteen = "which gas do green plants absorb from the air during photosynthesis a oxygen"
    _, signals = _signals([f"Intro. {first_thirteen} and more."], index)
    assert (signals[0]["decon_item"], signals[0]["decon_matches"]) == ("arc-17", 1)
    assert signals[0]["decon_item_fraction"] == pytest.approx(1 / 11)


# 15 consecutive item words: 3 of the item's 11 n-grams.
FIFTEEN_WORDS = ("Intro. Which gas do green plants absorb from the air during photosynthesis? (A) oxygen "
                 "(B) carbon.")


def test_min_matching_ngrams_threshold(index):
    page = FIFTEEN_WORDS
    _, caught = _signals([page], index, min_matching_ngrams=3)
    _, missed = _signals([page], index, min_matching_ngrams=4)
    assert (caught[0]["decon_item"], caught[0]["decon_matches"]) == ("arc-17", 3)
    assert missed[0] == _signals([PROSE], index)[1][0]  # below the threshold: as clean as clean prose


def test_min_item_fraction_threshold(index):
    page = FIFTEEN_WORDS
    _, caught = _signals([page], index, min_item_fraction=0.27)
    _, missed = _signals([page], index, min_item_fraction=0.28)
    assert caught[0]["decon_item_fraction"] == pytest.approx(3 / 11)
    assert caught[0]["decon_reason"] == "decontaminated:arc"
    assert missed[0]["decon_item"] is None and missed[0]["decon_reason"] is None


def test_a_page_repeating_one_ngram_counts_it_once(index):
    first_thirteen = "which gas do green plants absorb from the air during photosynthesis a oxygen"
    _, signals = _signals([f"{first_thirteen}. {first_thirteen}. {first_thirteen}."], index,
                          min_matching_ngrams=2)
    assert signals[0]["decon_item"] is None


def test_the_item_with_most_shared_ngrams_wins(index):
    page = "which gas do green plants absorb from the air during photosynthesis a oxygen. " + STUDY
    _, signals = _signals([page], index)
    assert (signals[0]["decon_benchmark"], signals[0]["decon_matches"]) == ("pubmedqa", 13)


def test_empty_and_null_texts(index):
    out, signals = _signals([None, "", "   \n ", PHOTOSYNTHESIS], index, mode="remove")
    assert out[:3] == [None, "", "   \n "]
    assert [s["decon_item"] for s in signals] == [None, None, None, "arc-17"]
    out, signals = _signals([], index)
    assert out == [] and signals == []
    out, signals = _signals([None, None], index, mode="drop")
    assert out == [None, None] and [s["decon_reason"] for s in signals] == [None, None]


def test_rules_validate_and_must_match_the_index(index):
    for bad in ({"ngram": 0}, {"min_matching_ngrams": 0}, {"min_item_fraction": 1.5}, {"mode": "cut"}):
        with pytest.raises(ValueError):
            DecontaminationRules(**bad)
    with pytest.raises(ValueError, match="ngram"):
        find_contamination(pa.array(["x"]), index, DecontaminationRules(ngram=8))


# -------------------------------------------------------------------------------------- span removal


def test_remove_mode_cuts_the_item_and_keeps_lines_around_it(index):
    page = "Title line\n\nSome intro words here.\n" + PHOTOSYNTHESIS + "\nClosing remarks stay.\n\nLast one."
    out, signals = _signals([page, PROSE + "\n\n" + PROSE, None], index, mode="remove")
    assert out[0] == "Title line\n\nSome intro words here.\nClosing remarks stay.\n\nLast one."
    assert out[1:] == [PROSE + "\n\n" + PROSE, None]  # unmatched rows untouched
    assert signals[0]["decon_removed_words"] == PHOTOSYNTHESIS_WORDS
    assert signals[0]["decon_reason"] is None  # kept, with the spans cut
    assert (signals[0]["decon_benchmark"], signals[0]["decon_item"]) == ("arc", "arc-17")
    assert [s["decon_removed_words"] for s in signals[1:]] == [0, 0]


def test_remove_mode_within_a_line_and_at_the_edges(index):
    pages = [
        "before words " + PHOTOSYNTHESIS + " after words",
        PHOTOSYNTHESIS + "\n\nRest of the page.",
        "Start of the page.\n" + PHOTOSYNTHESIS,
        "Twice:\n" + PHOTOSYNTHESIS + "\nand again\n\n" + PHOTOSYNTHESIS + "\n\nend",
        PHOTOSYNTHESIS,
    ]
    out, signals = _signals(pages, index, mode="remove")
    assert out == ["before words after words", "Rest of the page.", "Start of the page.",
                   "Twice:\nand again\n\nend", ""]
    assert [s["decon_removed_words"] for s in signals] == [23, 23, 23, 46, 23]


def test_remove_mode_cuts_whole_tokens_and_bridges_wordless_ones(index):
    glued = "Notes:xyz-" + PHOTOSYNTHESIS.replace("photosynthesis?", "photosynthesis ?! --") + " -- thanks"
    out, signals = _signals([glued], index, mode="remove")
    # "Notes:xyz-which" is one token holding a matched word: it goes whole (3 words: notes, xyz, which).
    # "?!" and the first "--" sit between cut words and go; the last "--" is followed by kept text and stays.
    assert out == ["-- thanks"]
    assert signals[0]["decon_removed_words"] == PHOTOSYNTHESIS_WORDS + 2


def test_remove_mode_keeps_string_type_and_other_rows(index):
    texts = pa.array([PROSE, "x " + PHOTOSYNTHESIS + " y", None], type=pa.large_string())
    out, signals = find_contamination(texts, index, DecontaminationRules(mode="remove"))
    assert out.type == pa.large_string()
    assert signals.column("decon_removed_words").to_pylist() == [0, PHOTOSYNTHESIS_WORDS, 0]
    assert out.to_pylist() == [PROSE, "x y", None]


def test_rows_whose_words_cannot_be_placed_are_dropped_instead(index, monkeypatch):
    # Pretend "q" (absent from the item) were whitespace: "Aqua." then splits into two tokens holding two
    # words where the batch saw one, so its words cannot be placed; the row without a "q" is still cut.
    monkeypatch.setattr(decontamination, "WHITESPACE_CODE_POINTS",
                        np.append(decontamination.WHITESPACE_CODE_POINTS, np.uint32(ord("q"))))
    pages = ["Aqua. " + PHOTOSYNTHESIS, "Plain " + PHOTOSYNTHESIS]
    out, signals = _signals(pages, index, mode="remove")
    assert out == [pages[0], "Plain"]
    assert [s["decon_reason"] for s in signals] == ["decontaminated:arc", None]
    assert [s["decon_removed_words"] for s in signals] == [0, PHOTOSYNTHESIS_WORDS]


# ---------------------------------------------------------------------------------------- benchmark items


def test_benchmark_items_join_fields_flatten_lists_and_stringify_numbers():
    records = pa.table({
        "id": [7, 8, None],
        "question": ["What is 2+2?", "Pick one", None],
        "choices": [["3", "4"], ["x", None], None],
        "answer": [1, 0, 2],
        "extra": [{"text": ["a", "b"], "label": ["A", "B"]}, {"text": [], "label": []}, None],
        "nested": [[[1, 2], [3]], [], None],
    })
    items = benchmark_items(records, "toy", ["question", "choices", "answer"], "id")
    assert items.column_names == ["benchmark", "item_id", "text"]
    assert items.to_pylist() == [
        {"benchmark": "toy", "item_id": "7", "text": "What is 2+2?\n3 4\n1"},
        {"benchmark": "toy", "item_id": "8", "text": "Pick one\nx\n0"},
        {"benchmark": "toy", "item_id": "2", "text": "\n\n2"},  # no id: its row number
    ]
    by_row = benchmark_items(records, "toy", ["extra.text", "nested"], None)
    assert by_row.column("item_id").to_pylist() == ["0", "1", "2"]
    assert by_row.column("text").to_pylist() == ["a b\n1 2 3", "\n", "\n"]


def test_benchmark_items_name_the_missing_field():
    records = pa.table({"question": ["q"], "extra": [{"text": "t"}]})
    with pytest.raises(ValueError, match="'answr'"):
        benchmark_items(records, "toy", ["question", "answr"], None)
    with pytest.raises(ValueError, match=r"'extra\.label'"):
        benchmark_items(records, "toy", ["extra.label"], None)
    with pytest.raises(ValueError, match="'qid'"):
        benchmark_items(records, "toy", ["question"], "qid")
    with pytest.raises(ValueError, match=r"'extra'.*member"):
        benchmark_items(records, "toy", ["extra"], None)


def test_benchmark_items_feed_the_index():
    records = pa.table({"question": [PHOTOSYNTHESIS.split("(A)")[0]],
                        "choices": [["(A) oxygen", "(B) carbon dioxide", "(C) nitrogen", "(D) helium."]],
                        "answer": ["Answer: carbon dioxide"]})
    index = build_index(benchmark_items(records, "arc", ["question", "choices", "answer"], None), ngram=13)
    _, signals = _signals(["Read this: " + PHOTOSYNTHESIS], index)
    assert (signals[0]["decon_item"], signals[0]["decon_matches"]) == ("0", 11)


# ------------------------------------------------------------------------------------------------ scale


def _synthetic_texts(rng: np.random.Generator, count: int, low: int, high: int) -> pa.Array:
    vocabulary = pa.array([f"w{i}" for i in range(50_000)])
    lengths = rng.integers(low, high + 1, size=count)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    word_ids = np.minimum(rng.zipf(1.3, size=int(offsets[-1])) - 1, len(vocabulary) - 1)
    word_lists = pa.ListArray.from_arrays(pa.array(offsets), vocabulary.take(pa.array(word_ids)))
    return pc.binary_join(word_lists, " ")


@pytest.mark.slow
def test_index_of_100k_items_builds_in_seconds(record_property):
    rng = np.random.default_rng(5)
    texts = _synthetic_texts(rng, 100_000, 30, 50)
    items = pa.table({"benchmark": ["synthetic"] * 100_000, "item_id": [f"s{i}" for i in range(100_000)],
                      "text": texts})
    started = time.perf_counter()
    index = build_index(items, ngram=13)
    seconds = time.perf_counter() - started
    megabytes = index.nbytes() / 1e6
    pickled_megabytes = len(pickle.dumps(index)) / 1e6
    record_property("build_seconds", round(seconds, 2))
    record_property("index_mb", round(megabytes, 1))
    print(f"\nbuild_index: 100,000 items in {seconds:.1f}s, {len(index.hashes):,} entries, "
          f"{megabytes:.1f} MB ({pickled_megabytes:.1f} MB pickled)")
    assert seconds < 30
    assert index.skipped_items == 0
    assert megabytes < 60 and pickled_megabytes < 60  # ~12 bytes per n-gram plus ids
    # Copies of two items among clean synthetic pages are found with the right ids.
    pages = _synthetic_texts(rng, 200, 400, 600).to_pylist()
    pages[3] += "\n" + texts[17].as_py()
    pages[150] = texts[99_999].as_py() + "\n" + pages[150]
    _, signals = find_contamination(pa.array(pages), index, DecontaminationRules())
    contaminated = {row: item for row, item in enumerate(signals.column("decon_item").to_pylist()) if item}
    assert contaminated == {3: "s17", 150: "s99999"}
