"""Per-language rule sets: which words count as stop words, what a "word" is, which rules apply.

The Gopher/C4/FineWeb rules were written for English: they count English stop words and treat whitespace as
the word boundary. FineWeb-2 adapts them per language; so does this module:

* stop words come from ``stopwordsiso`` (a maintained multilingual list), except English, which keeps
  Gopher's published eight; entries without a letter (digits, punctuation) are left out;
* languages written without spaces between words (Chinese, Japanese, Thai) are segmented by character:
  every Han/Hiragana/Katakana/Thai character counts as one word, runs of other scripts stay words, and only
  the one-character stop words can match;
* a rule that means nothing for a language is skipped for it, never failed: mean word length, C4's
  sentence rule and the word n-gram repetition rules for character-segmented languages (duplicated lines and
  paragraphs still count), the stop-word rule where the language has no list.

Thresholds default to the rule's published ones; ``overrides`` changes any threshold for one language.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from udfs.heuristics import DUPLICATED_NGRAMS, STOP_WORDS, TOP_NGRAMS

WHITESPACE = "whitespace"
CHARACTERS = "characters"
CHARACTER_SCRIPT_PATTERN = r"([\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}])"
CHARACTER_LANGUAGES = ("zh", "ja", "th")
# Rules that assume whitespace words or Latin sentence punctuation: skipped where words are characters. The
# n-gram repetition rules are calibrated on word n-grams; character 2-10-grams are sub-word units that
# natural Chinese/Japanese repeats all the time (ています, することが), so they are skipped too.
CHARACTER_SKIPPED_RULES = ("gopher_avg_word_length", "c4_too_few_sentences",
                           *(f"gopher_top_{n}gram" for n in TOP_NGRAMS),
                           *(f"gopher_dup_{n}gram" for n in DUPLICATED_NGRAMS))
STOP_WORD_RULE = "gopher_stop_words"
_HAS_LETTER = re.compile(r"\w", re.UNICODE)
_NO_DIGIT_OR_UNDERSCORE = re.compile(r"^[^\d_]+$")


@dataclass(frozen=True)
class LanguageRuleSet:
    """How the quality rules read one language."""

    segmentation: str = WHITESPACE  # whitespace | characters
    stop_words: frozenset[str] = frozenset()  # empty: the stop-word rule is skipped
    skip_rules: frozenset[str] = frozenset()  # rule names (drop reasons) never applied to this language
    overrides: Mapping[str, float] = field(default_factory=dict)  # threshold name -> value


@functools.cache
def packaged_stop_words(lang: str) -> frozenset[str]:
    """stopwordsiso's list for ``lang`` (lower-cased, words with a letter and no digit); empty without one."""
    import stopwordsiso

    if not stopwordsiso.has_lang(lang):
        return frozenset()
    return frozenset(word.lower() for word in stopwordsiso.stopwords(lang)
                     if _HAS_LETTER.search(word) and _NO_DIGIT_OR_UNDERSCORE.match(word))


def _complete(segmentation: str, stop_words: frozenset[str], skip_rules: set[str],
              overrides: Mapping[str, float]) -> LanguageRuleSet:
    """A rule set with the rules that mean nothing for it skipped."""
    if segmentation == CHARACTERS:
        skip_rules |= set(CHARACTER_SKIPPED_RULES)
    if not stop_words:
        skip_rules.add(STOP_WORD_RULE)
    return LanguageRuleSet(segmentation, stop_words, frozenset(skip_rules), dict(overrides))


def default_rule_set(lang: str) -> LanguageRuleSet:
    """The built-in rule set of a language (before any configured change)."""
    if lang == "en":
        return _complete(WHITESPACE, frozenset(STOP_WORDS), set(), {})
    if lang in CHARACTER_LANGUAGES:
        single = frozenset(word for word in packaged_stop_words(lang) if len(word) == 1)
        return _complete(CHARACTERS, single, set(), {})
    return _complete(WHITESPACE, packaged_stop_words(lang), set(), {})


def rule_set(lang: str, segmentation: str | None = None, stop_words: frozenset[str] | None = None,
             skip_rules: frozenset[str] = frozenset(), overrides: Mapping[str, float] | None = None
             ) -> LanguageRuleSet:
    """The built-in rule set of ``lang`` with the configured changes (None keeps the built-in value)."""
    base = default_rule_set(lang)
    chosen = segmentation or base.segmentation
    words = base.stop_words if stop_words is None else frozenset(word.lower() for word in stop_words)
    if chosen == CHARACTERS:
        words = frozenset(word for word in words if len(word) == 1)
    built_in = set(base.skip_rules) - {STOP_WORD_RULE} if words else set(base.skip_rules)
    if chosen != base.segmentation == CHARACTERS:
        built_in -= set(CHARACTER_SKIPPED_RULES)
    return _complete(chosen, words, built_in | set(skip_rules), overrides or {})


def segment_words(texts: pa.Array, by_character: np.ndarray) -> pa.Array:
    """``texts`` with a space around every Han/Kana/Thai character of the rows where ``by_character`` is set,
    so whitespace splitting yields one word per character there (other rows are unchanged)."""
    if not by_character.any():
        return texts
    spaced = pc.replace_substring_regex(texts, pattern=CHARACTER_SCRIPT_PATTERN, replacement=r" \1 ")
    return pc.if_else(pa.array(by_character), spaced, texts)


@dataclass(frozen=True)
class LanguageGroups:
    """The rows of a batch grouped by the rule set that reads them (one group per distinct language)."""

    rule_sets: list[LanguageRuleSet]
    group_of_row: np.ndarray  # int, index into rule_sets

    def rows(self, group: int) -> np.ndarray:
        return np.flatnonzero(self.group_of_row == group)

    def by_character(self) -> np.ndarray:
        groups = [index for index, rules in enumerate(self.rule_sets) if rules.segmentation == CHARACTERS]
        return np.isin(self.group_of_row, groups)

    def skipped(self, rule: str) -> np.ndarray:
        """Per row: is ``rule`` skipped for the row's language?"""
        skipping = [index for index, rules in enumerate(self.rule_sets) if rule in rules.skip_rules]
        return np.isin(self.group_of_row, skipping)


def group_rows(langs: pa.Array | None, size: int, rule_set_of: Mapping[str, LanguageRuleSet],
               default_language: str) -> LanguageGroups:
    """Group rows by language (null or absent language IDs read as ``default_language``); languages without
    a configured rule set get their built-in one."""
    if langs is None:
        return LanguageGroups([rule_set_of.get(default_language) or default_rule_set(default_language)],
                              np.zeros(size, dtype=np.int64))
    encoded = pc.dictionary_encode(langs.fill_null(default_language))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    # One rule set per distinct language of the batch (a handful), not per row.
    rule_sets = [rule_set_of.get(lang) or default_rule_set(lang) for lang in encoded.dictionary.to_pylist()]
    return LanguageGroups(rule_sets, encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64))
