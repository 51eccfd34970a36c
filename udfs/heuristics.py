"""Heuristic quality signals over Arrow string arrays (first part of the quality stage).

Gopher quality rules (Rae et al. 2021, "Scaling Language Models", appendix A; defaults as in datatrove's
``GopherQualityFilter``). Words are whitespace-separated tokens; a *symbol word* consists only of
punctuation/symbol characters and is not counted as a word for the word-count and mean-length rules.
Lines are the text split on ``\\n``.

Gopher repetition rules (same source; defaults as in datatrove's ``GopherRepetitionFilter``) count
duplicated paragraphs (split on blank lines), lines and word n-grams; they need per-document hashing of
strings, so they loop over the documents of a batch.

Rules are checked in a documented order; a document's ``drop_reason`` is the first rule it fails (null
when it passes all). Every signal is returned so thresholds can be re-tuned later
without recomputing anything.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
BULLET_PATTERN = r"^\s*[•\-\*‣⁃◦▪●·]"
ELLIPSIS_LINE_PATTERN = r"(\.\.\.|…)\s*$"


@dataclass(frozen=True)
class GopherQualityThresholds:
    min_doc_words: int = 50
    max_doc_words: int = 100_000
    min_avg_word_length: float = 3.0
    max_avg_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    min_alpha_words_ratio: float = 0.8
    min_stop_words: int = 2


GOPHER_QUALITY_RULES = (
    "gopher_min_words",
    "gopher_max_words",
    "gopher_avg_word_length",
    "gopher_symbol_ratio",
    "gopher_bullet_lines",
    "gopher_ellipsis_lines",
    "gopher_alpha_words",
    "gopher_stop_words",
)


def _per_document(values: np.ndarray, owners: np.ndarray, documents: int) -> np.ndarray:
    """Sum of per-item values for each document (items are words or lines, owners their document)."""
    return np.bincount(owners, weights=values, minlength=documents)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1), 0.0)


def _stop_word_flags(bare: pa.Array, word_owner: np.ndarray, stop_word_sets: Sequence[frozenset[str]] | None,
                     group_of_row: np.ndarray | None) -> np.ndarray:
    """Per word: is it a stop word of its document's language? One ``is_in`` per language of the batch."""
    if stop_word_sets is None:
        return pc.is_in(bare, value_set=pa.array(STOP_WORDS)).to_numpy(zero_copy_only=False)
    groups = np.zeros(len(word_owner), dtype=np.int64) if group_of_row is None else group_of_row[word_owner]
    flags = np.zeros(len(bare), dtype=bool)
    for group, stop_words in enumerate(stop_word_sets):
        members = np.flatnonzero(groups == group)
        if len(members) and stop_words:
            chosen = bare.take(pa.array(members))
            listed = pa.array(sorted(stop_words), type=pa.string())
            flags[members] = pc.is_in(chosen, value_set=listed).to_numpy(zero_copy_only=False)
    return flags


def gopher_quality_signals(texts: pa.Array, word_texts: pa.Array | None = None,
                           stop_word_sets: Sequence[frozenset[str]] | None = None,
                           group_of_row: np.ndarray | None = None) -> pa.Table:
    """One row per text: the signals the Gopher quality rules read.

    Words come from ``word_texts`` when given (the texts segmented for languages without spaces), lines
    from ``texts``; stop words are ``stop_word_sets[group_of_row[row]]`` (default: Gopher's English eight)."""
    texts = texts.fill_null("")
    documents = len(texts)
    segmented = texts if word_texts is None else word_texts.fill_null("")
    word_lists = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(segmented))
    words = pc.list_flatten(word_lists)
    word_owner = pc.list_parent_indices(word_lists).to_numpy(zero_copy_only=False)
    real = pc.greater(pc.utf8_length(words), 0).to_numpy(zero_copy_only=False)
    words, word_owner = words.filter(pa.array(real)), word_owner[real]

    n_words = np.bincount(word_owner, minlength=documents).astype(np.int64)
    non_symbol = pc.match_substring_regex(words, r"[^\p{P}\p{S}]").to_numpy(zero_copy_only=False)
    n_non_symbol = _per_document(non_symbol.astype(np.float64), word_owner, documents)
    lengths = pc.utf8_length(words).to_numpy(zero_copy_only=False).astype(np.float64)
    total_length = _per_document(lengths * non_symbol, word_owner, documents)
    alpha = pc.match_substring_regex(words, r"\p{L}").to_numpy(zero_copy_only=False).astype(np.float64)
    bare = pc.utf8_lower(pc.replace_substring_regex(words, r"^[\p{P}\p{S}]+|[\p{P}\p{S}]+$", ""))
    stop = _stop_word_flags(bare, word_owner, stop_word_sets, group_of_row).astype(np.float64)

    symbols = (pc.count_substring(texts, "#").to_numpy(zero_copy_only=False)
               + pc.count_substring(texts, "...").to_numpy(zero_copy_only=False)
               + pc.count_substring(texts, "…").to_numpy(zero_copy_only=False)).astype(np.float64)

    line_lists = pc.split_pattern(texts, "\n")
    lines = pc.list_flatten(line_lists)
    line_owner = pc.list_parent_indices(line_lists).to_numpy(zero_copy_only=False)
    n_lines = np.bincount(line_owner, minlength=documents).astype(np.float64)
    bullets = pc.match_substring_regex(lines, BULLET_PATTERN).to_numpy(zero_copy_only=False)
    ellipses = pc.match_substring_regex(lines, ELLIPSIS_LINE_PATTERN).to_numpy(zero_copy_only=False)

    bullet_lines = _per_document(bullets.astype(np.float64), line_owner, documents)
    ellipsis_lines = _per_document(ellipses.astype(np.float64), line_owner, documents)
    alpha_words = _per_document(alpha, word_owner, documents)
    return pa.table({
        "n_words": pa.array(n_words),
        "n_non_symbol_words": pa.array(n_non_symbol.astype(np.int64)),
        "mean_word_length": pa.array(_ratio(total_length, n_non_symbol)),
        "symbol_word_ratio": pa.array(_ratio(symbols, n_words.astype(np.float64))),
        "bullet_lines_ratio": pa.array(_ratio(bullet_lines, n_lines)),
        "ellipsis_lines_ratio": pa.array(_ratio(ellipsis_lines, n_lines)),
        "alpha_words_ratio": pa.array(_ratio(alpha_words, n_words.astype(np.float64))),
        "stop_words": pa.array(_per_document(stop, word_owner, documents).astype(np.int64)),
    })


def first_failing(checks: list[tuple[str, np.ndarray]], size: int) -> pa.Array:
    """Per document, the name of the first check (in list order) whose mask is true; null if none."""
    reasons = np.full(size, None, dtype=object)
    for rule, failed in reversed(checks):  # earlier rules are written last, so they win
        reasons[failed] = rule
    return pa.array(reasons.tolist(), type=pa.string())


def gopher_quality_reasons(signals: pa.Table, limits: GopherQualityThresholds) -> pa.Array:
    """The first failing rule per document (null when none fails), in GOPHER_QUALITY_RULES order."""
    return first_failing(gopher_quality_checks(signals, limits), signals.num_rows)


def gopher_quality_checks(signals: pa.Table, limits: GopherQualityThresholds) -> list[tuple[str, np.ndarray]]:
    """(rule, failed mask) per Gopher quality rule, in GOPHER_QUALITY_RULES order."""
    column = {name: signals.column(name).to_numpy() for name in signals.column_names}
    failures = [
        column["n_non_symbol_words"] < limits.min_doc_words,
        column["n_non_symbol_words"] > limits.max_doc_words,
        (column["mean_word_length"] < limits.min_avg_word_length)
        | (column["mean_word_length"] > limits.max_avg_word_length),
        column["symbol_word_ratio"] > limits.max_symbol_word_ratio,
        column["bullet_lines_ratio"] > limits.max_bullet_lines_ratio,
        column["ellipsis_lines_ratio"] > limits.max_ellipsis_lines_ratio,
        column["alpha_words_ratio"] < limits.min_alpha_words_ratio,
        column["stop_words"] < limits.min_stop_words,
    ]
    return list(zip(GOPHER_QUALITY_RULES, failures, strict=True))


# ----------------------------------------------------------------------------------- Gopher repetition

TOP_NGRAMS = (2, 3, 4)
DUPLICATED_NGRAMS = (5, 6, 7, 8, 9, 10)
_PARAGRAPH_BREAK = re.compile(r"\n{2,}")
_LINE_BREAK = re.compile(r"\n+")


@dataclass(frozen=True)
class GopherRepetitionThresholds:
    """Published Gopher repetition limits (fractions of documents' lines, paragraphs or characters)."""

    max_dup_para_frac: float = 0.3
    max_dup_para_char_frac: float = 0.2
    max_dup_line_frac: float = 0.3
    max_dup_line_char_frac: float = 0.2
    max_top_ngram_char_frac: dict[int, float] = field(
        default_factory=lambda: {2: 0.20, 3: 0.18, 4: 0.16})
    max_dup_ngram_char_frac: dict[int, float] = field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10})


def _duplicates(elements: list[str]) -> tuple[int, int]:
    """(elements seen before, their characters): every repeat after the first occurrence counts."""
    seen: set[str] = set()
    count = chars = 0
    for element in elements:
        if element in seen:
            count += 1
            chars += len(element)
        else:
            seen.add(element)
    return count, chars


def _top_ngram_chars(words: list[str], n: int) -> int:
    """Characters covered by the most frequent word n-gram (joined by spaces) times its count."""
    if len(words) < n:
        return 0
    counts = Counter(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    gram, count = counts.most_common(1)[0]
    return len(gram) * count


def _duplicated_ngram_chars(words: list[str], n: int) -> int:
    """Characters (of the words, without spaces) of n-grams that repeat an earlier n-gram; a repeat is
    skipped over as a whole so overlapping repeats are not counted twice."""
    seen: set[tuple[str, ...]] = set()
    chars, index = 0, 0
    while index < len(words) - n + 1:
        gram = tuple(words[index : index + n])
        if gram in seen:
            chars += sum(len(word) for word in gram)
            index += n
        else:
            seen.add(gram)
            index += 1
    return chars


def gopher_repetition_signals(texts: pa.Array, word_texts: pa.Array | None = None) -> pa.Table:
    """Per text: duplicate paragraph/line fractions (by count and by characters), the top 2-4-gram
    character fractions and the duplicated 5-10-gram character fractions (words from ``word_texts`` when
    given: the texts segmented for languages without spaces)."""
    columns: dict[str, list[float]] = {name: [] for name in repetition_signal_names()}
    segmented = (texts if word_texts is None else word_texts).fill_null("").to_pylist()
    for text, word_text in zip(texts.fill_null("").to_pylist(), segmented, strict=True):
        size = max(len(text), 1)
        paragraphs = _PARAGRAPH_BREAK.split(text.strip())
        dup_paragraphs, dup_paragraph_chars = _duplicates(paragraphs)
        lines = _LINE_BREAK.split(text)
        dup_lines, dup_line_chars = _duplicates(lines)
        words = word_text.split()
        columns["dup_para_frac"].append(dup_paragraphs / max(len(paragraphs), 1))
        columns["dup_para_char_frac"].append(dup_paragraph_chars / size)
        columns["dup_line_frac"].append(dup_lines / max(len(lines), 1))
        columns["dup_line_char_frac"].append(dup_line_chars / size)
        for n in TOP_NGRAMS:
            columns[f"top_{n}gram_char_frac"].append(_top_ngram_chars(words, n) / size)
        for n in DUPLICATED_NGRAMS:
            columns[f"dup_{n}gram_char_frac"].append(_duplicated_ngram_chars(words, n) / size)
    return pa.table({name: pa.array(values, type=pa.float64()) for name, values in columns.items()})


def repetition_signal_names() -> list[str]:
    return (["dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"]
            + [f"top_{n}gram_char_frac" for n in TOP_NGRAMS]
            + [f"dup_{n}gram_char_frac" for n in DUPLICATED_NGRAMS])


def repetition_rule_names() -> list[str]:
    """The drop reasons of the repetition rules, in order."""
    return (["gopher_dup_para_frac", "gopher_dup_para_char_frac", "gopher_dup_line_frac",
             "gopher_dup_line_char_frac"] + [f"gopher_top_{n}gram" for n in TOP_NGRAMS]
            + [f"gopher_dup_{n}gram" for n in DUPLICATED_NGRAMS])


def gopher_repetition_reasons(signals: pa.Table, limits: GopherRepetitionThresholds) -> pa.Array:
    """First failing repetition rule per document, in the order of :func:`repetition_signal_names`."""
    return first_failing(gopher_repetition_checks(signals, limits), signals.num_rows)


def gopher_repetition_checks(signals: pa.Table,
                             limits: GopherRepetitionThresholds) -> list[tuple[str, np.ndarray]]:
    """(rule, failed mask) per repetition rule, in the order of :func:`repetition_signal_names`."""
    checks = [("gopher_dup_para_frac", "dup_para_frac", limits.max_dup_para_frac),
              ("gopher_dup_para_char_frac", "dup_para_char_frac", limits.max_dup_para_char_frac),
              ("gopher_dup_line_frac", "dup_line_frac", limits.max_dup_line_frac),
              ("gopher_dup_line_char_frac", "dup_line_char_frac", limits.max_dup_line_char_frac)]
    checks += [(f"gopher_top_{n}gram", f"top_{n}gram_char_frac", limit)
               for n, limit in sorted(limits.max_top_ngram_char_frac.items())]
    checks += [(f"gopher_dup_{n}gram", f"dup_{n}gram_char_frac", limit)
               for n, limit in sorted(limits.max_dup_ngram_char_frac.items())]
    return [(rule, signals.column(column).to_numpy() > limit) for rule, column, limit in checks]


# ------------------------------------------------------------------------------------------- FineWeb

# Characters that end a "complete" line (FineWeb's line-punctuation rule), ASCII and common Unicode ones.
TERMINAL_PUNCTUATION = (".", "!", "?", '"', "'", "”", "’", "…", "。", "！", "？", "»", ")")


@dataclass(frozen=True)
class FineWebThresholds:
    """FineWeb's published defaults (Penedo et al. 2024; datatrove's ``FineWebQualityFilter``)."""

    min_line_punct_ratio: float = 0.12
    max_short_line_ratio: float = 0.67
    short_line_length: int = 30
    max_char_dup_ratio: float = 0.01
    max_newline_word_ratio: float = 0.3


def fineweb_signals(texts: pa.Array, short_line_length: int = 30,
                    word_texts: pa.Array | None = None) -> pa.Table:
    """Per text, over its non-blank lines: share ending in terminal punctuation, share of short lines,
    characters in repeated lines over all non-newline characters, and newlines per word (words from
    ``word_texts`` when given)."""
    columns: dict[str, list[float]] = {"line_punct_ratio": [], "short_line_ratio": [], "char_dup_ratio": [],
                                       "newline_word_ratio": [], "non_blank_lines": []}
    segmented = (texts if word_texts is None else word_texts).fill_null("").to_pylist()
    for text, word_text in zip(texts.fill_null("").to_pylist(), segmented, strict=True):
        lines = [line for line in text.split("\n") if line.strip()]
        count = max(len(lines), 1)
        columns["non_blank_lines"].append(len(lines))
        columns["line_punct_ratio"].append(sum(line.endswith(TERMINAL_PUNCTUATION) for line in lines) / count)
        columns["short_line_ratio"].append(sum(len(line) <= short_line_length for line in lines) / count)
        columns["char_dup_ratio"].append(_duplicates(lines)[1] / max(len(text.replace("\n", "")), 1))
        columns["newline_word_ratio"].append(text.count("\n") / max(len(word_text.split()), 1))
    return pa.table({"line_punct_ratio": pa.array(columns["line_punct_ratio"], type=pa.float64()),
                     "short_line_ratio": pa.array(columns["short_line_ratio"], type=pa.float64()),
                     "char_dup_ratio": pa.array(columns["char_dup_ratio"], type=pa.float64()),
                     "newline_word_ratio": pa.array(columns["newline_word_ratio"], type=pa.float64()),
                     "non_blank_lines": pa.array(columns["non_blank_lines"], type=pa.int64())})


def fineweb_reasons(signals: pa.Table, limits: FineWebThresholds) -> pa.Array:
    """First failing FineWeb rule: empty, line punctuation, short lines, duplicated line chars, list-like."""
    return first_failing(fineweb_checks(signals, limits), signals.num_rows)


FINEWEB_RULES = ("fineweb_empty", "fineweb_line_punct_ratio", "fineweb_short_line_ratio",
                 "fineweb_char_dup_ratio", "fineweb_list_ratio")


def fineweb_checks(signals: pa.Table, limits: FineWebThresholds) -> list[tuple[str, np.ndarray]]:
    """(rule, failed mask) per FineWeb rule, in FINEWEB_RULES order."""
    column = {name: signals.column(name).to_numpy() for name in signals.column_names}
    failures = [
        column["non_blank_lines"] == 0,
        column["line_punct_ratio"] < limits.min_line_punct_ratio,
        column["short_line_ratio"] > limits.max_short_line_ratio,
        column["char_dup_ratio"] > limits.max_char_dup_ratio,
        column["newline_word_ratio"] > limits.max_newline_word_ratio,
    ]
    return list(zip(FINEWEB_RULES, failures, strict=True))


# ------------------------------------------------------------------------------------------------ C4

C4_DOCUMENT_RULES = ("c4_lorem_ipsum", "c4_curly_bracket", "c4_too_few_sentences")
C4_POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
                     "use cookies")
C4_LINE_ENDINGS = (".", "?", "!", '"', "'")
_CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")


@dataclass(frozen=True)
class C4Settings:
    """C4's rules (Raffel et al. 2020) with their published defaults. In line-removal mode failing lines
    are removed and the document survives if enough sentences remain."""

    min_sentences: int = 5
    min_words_per_line: int = 3
    max_word_length: int = 1000
    remove_citations: bool = True
    require_terminal_punctuation: bool = True
    drop_javascript_lines: bool = True
    drop_policy_lines: bool = True
    drop_lorem_ipsum: bool = True
    drop_curly_bracket: bool = True


def count_sentences(text: str) -> int:
    """Sentence ends: runs of . ! ? followed by whitespace or the end (a tokenizer-free approximation)."""
    return len(_SENTENCE_END.findall(text))


def _c4_line(line: str, settings: C4Settings) -> str | None:
    """The cleaned line, or None when C4 removes it."""
    line = line.strip()
    if settings.remove_citations:
        line = _CITATION.sub("", line)
    words = line.split()
    if any(len(word) > settings.max_word_length for word in words):
        return None
    if settings.require_terminal_punctuation and (not line.endswith(C4_LINE_ENDINGS) or line.endswith("...")):
        return None
    if len(words) < settings.min_words_per_line:
        return None
    lowered = line.lower()
    if settings.drop_javascript_lines and "javascript" in lowered:
        return None
    if settings.drop_policy_lines and any(phrase in lowered for phrase in C4_POLICY_PHRASES):
        return None
    return line


def c4_clean(texts: pa.Array, settings: C4Settings) -> tuple[pa.Array, pa.Table]:
    """(cleaned texts, signals): lines kept/total, sentences left, and the document-level reason
    (``c4_lorem_ipsum``, ``c4_curly_bracket``, ``c4_too_few_sentences``) or null."""
    cleaned: list[str] = []
    lines_total: list[int] = []
    lines_kept: list[int] = []
    sentences: list[int] = []
    reasons: list[str | None] = []
    for text in texts.fill_null("").to_pylist():
        lowered = text.lower()
        lines = text.split("\n")
        kept = [line for line in (_c4_line(line, settings) for line in lines) if line is not None]
        joined = "\n".join(kept)
        lines_total.append(len(lines))
        lines_kept.append(len(kept))
        sentences.append(count_sentences(joined))
        cleaned.append(joined)
        lorem, curly, too_few = C4_DOCUMENT_RULES
        if settings.drop_lorem_ipsum and "lorem ipsum" in lowered:
            reasons.append(lorem)
        elif settings.drop_curly_bracket and "{" in text:
            reasons.append(curly)
        elif sentences[-1] < settings.min_sentences:
            reasons.append(too_few)
        else:
            reasons.append(None)
    signals = pa.table({"c4_lines": pa.array(lines_total, type=pa.int32()),
                        "c4_lines_kept": pa.array(lines_kept, type=pa.int32()),
                        "c4_sentences": pa.array(sentences, type=pa.int32()),
                        "c4_reason": pa.array(reasons, type=pa.string())})
    return pa.array(cleaned, type=pa.string()), signals
