"""Heuristic quality signals, vectorised over Arrow string arrays (first part of the quality stage).

Gopher quality rules (Rae et al. 2021, "Scaling Language Models", appendix A; defaults as in datatrove's
``GopherQualityFilter``). Words are whitespace-separated tokens; a *symbol word* consists only of
punctuation/symbol characters and is not counted as a word for the word-count and mean-length rules.
Lines are the text split on ``\\n``.

Rules are checked in the order of :data:`GOPHER_QUALITY_RULES`; a document's ``drop_reason`` is the first
rule it fails (null when it passes all). Every signal is returned so thresholds can be re-tuned later
without recomputing anything.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def gopher_quality_signals(texts: pa.Array) -> pa.Table:
    """One row per text: the signals the Gopher quality rules read."""
    texts = texts.fill_null("")
    documents = len(texts)
    word_lists = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(texts))
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
    stop = pc.is_in(bare, value_set=pa.array(STOP_WORDS)).to_numpy(zero_copy_only=False)
    stop = stop.astype(np.float64)

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


def gopher_quality_reasons(signals: pa.Table, limits: GopherQualityThresholds) -> pa.Array:
    """The first failing rule per document (null when none fails), in GOPHER_QUALITY_RULES order."""
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
    reasons = np.full(signals.num_rows, None, dtype=object)
    for rule, failed in zip(reversed(GOPHER_QUALITY_RULES), reversed(failures), strict=True):
        reasons[failed] = rule  # later rules first, so the earliest failing rule is written last
    return pa.array(reasons.tolist(), type=pa.string())
