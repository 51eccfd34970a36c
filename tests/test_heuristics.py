"""Gopher quality signals and rules, pinned on hand-computed examples."""

from __future__ import annotations

import pyarrow as pa
import pytest

from udfs.demo_corpus import DemoSpec, original_page
from udfs.heuristics import (
    C4Settings,
    FineWebThresholds,
    GopherQualityThresholds,
    GopherRepetitionThresholds,
    c4_clean,
    count_sentences,
    fineweb_reasons,
    fineweb_signals,
    gopher_quality_reasons,
    gopher_quality_signals,
    gopher_repetition_reasons,
    gopher_repetition_signals,
)


@pytest.fixture(scope="module")
def english_pages() -> list:
    """English demo pages (3000 generated once for the module) with their planted quality labels."""
    spec = DemoSpec(docs=3000, seed=5, workers=1)
    return [page for page in (original_page(spec, index) for index in range(3000)) if page.lang == "en"]


def _reasons_by_quality(pages: list, reasons: list) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for page, reason in zip(pages, reasons, strict=True):
        grouped.setdefault(page.quality, []).append(reason)
    return grouped


def _signals(text: str) -> dict:
    return gopher_quality_signals(pa.array([text])).to_pylist()[0]


def test_words_symbols_and_alpha():
    # words: "Hello," "world!" "##" "..." "ok"; symbol words: "##" "..."
    row = _signals("Hello, world! ## ... ok")
    assert row["n_words"] == 5 and row["n_non_symbol_words"] == 3
    assert row["mean_word_length"] == pytest.approx((6 + 6 + 2) / 3)
    assert row["symbol_word_ratio"] == pytest.approx(3 / 5)  # two '#' and one '...'
    assert row["alpha_words_ratio"] == pytest.approx(3 / 5)
    assert row["stop_words"] == 0
    assert row["bullet_lines_ratio"] == 0 and row["ellipsis_lines_ratio"] == 0


def test_bullet_and_ellipsis_lines():
    row = _signals("- item one\n- item two\nplain line...\n• third")
    assert row["bullet_lines_ratio"] == pytest.approx(3 / 4)
    assert row["ellipsis_lines_ratio"] == pytest.approx(1 / 4)
    assert row["n_words"] == 10 and row["n_non_symbol_words"] == 7
    assert row["mean_word_length"] == pytest.approx(31 / 7)
    assert row["symbol_word_ratio"] == pytest.approx(1 / 10)
    assert row["alpha_words_ratio"] == pytest.approx(7 / 10)


def test_stop_words_ignore_case_and_attached_punctuation():
    assert _signals("The cat, and THE dog; to be... with")["stop_words"] == 6


def test_empty_text():
    row = _signals("")
    assert row["n_words"] == 0 and row["mean_word_length"] == 0 and row["alpha_words_ratio"] == 0


def test_first_failing_rule_wins():
    line = "the cat and the dog sat with a friend in the park"
    texts = pa.array([
        "only four words here",  # 4 words < 50 (also no stop words: the first rule wins)
        " ".join([line] * 5),  # 60 words, passes everything
        " ".join(["the and with a a a a a a a"] * 10),  # mean word length 17/10 < 3
        " ".join(["the and word more #"] * 20),  # 20 '#' over 100 words = 0.2 > 0.1
        "\n".join(["- " + line] * 20),  # every line is a bullet
        "\n".join([line + "..."] * 20),  # every line ends with '...' (1 symbol per 12 words)
        " ".join(["the and with 123 456 789 101 202 303 404"] * 10),  # 30% of words have a letter
        " ".join(["zzz"] * 60),  # no stop words
    ])
    reasons = gopher_quality_reasons(gopher_quality_signals(texts), GopherQualityThresholds()).to_pylist()
    assert reasons == ["gopher_min_words", None, "gopher_avg_word_length", "gopher_symbol_ratio",
                       "gopher_bullet_lines", "gopher_ellipsis_lines", "gopher_alpha_words",
                       "gopher_stop_words"]
    loose = GopherQualityThresholds(min_doc_words=1)
    first_only = gopher_quality_reasons(gopher_quality_signals(texts[:1]), loose).to_pylist()
    assert first_only == ["gopher_stop_words"]


def test_demo_pages_behave_as_planted(english_pages):
    signals = gopher_quality_signals(pa.array([page.text for page in english_pages]))
    reasons = gopher_quality_reasons(signals, GopherQualityThresholds()).to_pylist()
    grouped = _reasons_by_quality(english_pages, reasons)
    assert sum(reason is None for reason in grouped["good"]) / len(grouped["good"]) > 0.95
    assert grouped["too_short"] and all(reason == "gopher_min_words" for reason in grouped["too_short"])
    assert grouped["keyword_stuffing"] and all(reason is not None for reason in grouped["keyword_stuffing"])


def _repetition(text: str) -> dict:
    return gopher_repetition_signals(pa.array([text])).to_pylist()[0]


def test_duplicate_lines_and_paragraphs():
    row = _repetition("a\nb\na\nc")  # 7 characters, lines a b a c
    assert row["dup_line_frac"] == pytest.approx(1 / 4)
    assert row["dup_line_char_frac"] == pytest.approx(1 / 7)
    assert row["dup_para_frac"] == 0
    row = _repetition("x y\n\nx y\n\nz")  # 11 characters, paragraphs "x y" "x y" "z"
    assert row["dup_para_frac"] == pytest.approx(1 / 3)
    assert row["dup_para_char_frac"] == pytest.approx(3 / 11)


def test_top_and_duplicated_ngrams():
    row = _repetition("a b a b c")  # 2-grams: "a b" x2, "b a", "b c"; 9 characters
    assert row["top_2gram_char_frac"] == pytest.approx(6 / 9)
    assert row["top_3gram_char_frac"] == pytest.approx(5 / 9)  # each 3-gram once, 5 characters
    row = _repetition("a b c d e a b c d e")  # the second "abcde" repeats the first; 19 characters
    assert row["dup_5gram_char_frac"] == pytest.approx(5 / 19)
    assert row["dup_6gram_char_frac"] == 0


def test_repetition_rules_in_order():
    texts = pa.array([
        "intro\n\n" + "\n\n".join(["same paragraph here"] * 4),  # 3 of 5 paragraphs repeat
        " ".join(f"w{i}" for i in range(200)),  # nothing repeats
        " ".join(["buy cheap shoes now"] * 30),  # a 2-gram covers far more than 20%
    ])
    reasons = gopher_repetition_reasons(gopher_repetition_signals(texts), GopherRepetitionThresholds())
    assert reasons.to_pylist() == ["gopher_dup_para_frac", None, "gopher_top_2gram"]


def test_demo_repeated_line_pages_fail_repetition_rules(english_pages):
    signals = gopher_repetition_signals(pa.array([page.text for page in english_pages]))
    reasons = gopher_repetition_reasons(signals, GopherRepetitionThresholds()).to_pylist()
    grouped = _reasons_by_quality(english_pages, reasons)
    assert grouped["repeated_lines"] and all(reason is not None for reason in grouped["repeated_lines"])
    assert sum(reason is None for reason in grouped["good"]) / len(grouped["good"]) > 0.95


def test_fineweb_signals_by_hand():
    text = "A full sentence.\nshort\n\nAnother full line here!\nshort"
    row = fineweb_signals(pa.array([text])).to_pylist()[0]
    assert row["non_blank_lines"] == 4
    assert row["line_punct_ratio"] == pytest.approx(2 / 4)
    assert row["short_line_ratio"] == pytest.approx(4 / 4)  # every line has at most 30 characters
    assert row["char_dup_ratio"] == pytest.approx(5 / len(text.replace("\n", "")))  # the second "short"
    assert row["newline_word_ratio"] == pytest.approx(4 / 9)  # 4 newlines, 9 words


def test_fineweb_rules_in_order():
    sentence = "This line is long enough to count as a full sentence of prose."
    texts = pa.array([
        "   \n\n",
        "\n".join(["no punctuation at the end of this rather long line", "x" * 40]),
        "\n".join([sentence, "tiny", "tiny2", "tiny3"]),
        "\n".join([sentence, sentence, "Another different and equally long sentence of plain prose."]),
        "\n".join(f"Pneumonoultramicroscopicsilicovolcanoconiosis{i}." for i in range(10)),  # one word a line
        " ".join([sentence] * 3),
    ])
    reasons = fineweb_reasons(fineweb_signals(texts), FineWebThresholds()).to_pylist()
    assert reasons == ["fineweb_empty", "fineweb_line_punct_ratio", "fineweb_short_line_ratio",
                       "fineweb_char_dup_ratio", "fineweb_list_ratio", None]


def test_demo_boilerplate_pages_fail_fineweb_rules(english_pages):
    signals = fineweb_signals(pa.array([page.text for page in english_pages]))
    grouped = _reasons_by_quality(english_pages, fineweb_reasons(signals, FineWebThresholds()).to_pylist())
    assert grouped["boilerplate"] and all(reason is not None for reason in grouped["boilerplate"])
    assert sum(reason is None for reason in grouped["good"]) / len(grouped["good"]) > 0.95


def test_c4_line_removal_by_hand():
    text = "\n".join([
        "Home | About",  # no terminal punctuation: removed
        "This sentence stays. So does this one!",  # kept, 2 sentences
        "Too short.",  # 2 words: removed
        "Please enable JavaScript to view this page.",  # javascript: removed
        "Read our privacy policy before you continue.",  # policy: removed
        "A cited claim holds[1]. It really does.",  # citation stripped, kept, 2 sentences
        "Ends with an ellipsis...",  # removed
        "The last line is fine.",  # kept, 1 sentence
    ])
    cleaned, signals = c4_clean(pa.array([text]), C4Settings())
    assert cleaned.to_pylist()[0] == ("This sentence stays. So does this one!\n"
                                      "A cited claim holds. It really does.\nThe last line is fine.")
    row = signals.to_pylist()[0]
    assert (row["c4_lines"], row["c4_lines_kept"], row["c4_sentences"]) == (8, 3, 5)
    assert row["c4_reason"] is None


def test_c4_document_rules():
    texts = pa.array(["Lorem ipsum dolor sit amet. " * 6, "Some code { here } in text. " * 6,
                      "One fine sentence."])
    _, signals = c4_clean(texts, C4Settings())
    assert signals.column("c4_reason").to_pylist() == ["c4_lorem_ipsum", "c4_curly_bracket",
                                                       "c4_too_few_sentences"]
    assert count_sentences("Hi there. And you?! Fine... ok") == 3
