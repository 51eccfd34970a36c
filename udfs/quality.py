"""One Arrow batch in, every quality signal out: language ID, Gopher quality and repetition, C4, FineWeb.

``drop_reason`` is the first failing rule in this order: language (``lang_not_kept``,
``lang_low_score``), Gopher quality rules, Gopher repetition rules, C4 document rules, FineWeb rules.
All signals are returned whatever the reason, so thresholds can be re-tuned with SQL alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from udfs import fasttext_models
from udfs.heuristics import (
    C4Settings,
    FineWebThresholds,
    GopherQualityThresholds,
    GopherRepetitionThresholds,
    c4_clean,
    fineweb_reasons,
    fineweb_signals,
    gopher_quality_reasons,
    gopher_quality_signals,
    gopher_repetition_reasons,
    gopher_repetition_signals,
)


@dataclass(frozen=True)
class LanguageRules:
    """Which languages stay, and how sure language ID must be (per language where given)."""

    keep: tuple[str, ...] = ("en",)  # empty keeps every language
    min_score: float = 0.65
    min_score_by_language: Mapping[str, float] = field(default_factory=dict)


class _ProbeModel:
    """Stands in for the language-ID model when only the output schema is asked for."""

    def predict(self, texts: list[str], k: int = 1) -> tuple[list[list[str]], list[list[float]]]:
        return [["__label__en"] for _ in texts], [[1.0] for _ in texts]


@dataclass(frozen=True)
class QualityRules:
    language: LanguageRules | None = field(default_factory=LanguageRules)
    gopher_quality: GopherQualityThresholds | None = field(default_factory=GopherQualityThresholds)
    gopher_repetition: GopherRepetitionThresholds | None = field(default_factory=GopherRepetitionThresholds)
    c4: C4Settings | None = None
    c4_remove_lines: bool = False
    fineweb: FineWebThresholds | None = field(default_factory=FineWebThresholds)


def language_reasons(langs: list[str], scores: np.ndarray, rules: LanguageRules) -> list[str | None]:
    reasons: list[str | None] = []
    for lang, score in zip(langs, scores, strict=True):
        if rules.keep and lang not in rules.keep:
            reasons.append("lang_not_kept")
        elif score < rules.min_score_by_language.get(lang, rules.min_score):
            reasons.append("lang_low_score")
        else:
            reasons.append(None)
    return reasons


def _first(reason_lists: list[list[str | None]], size: int) -> list[str | None]:
    result: list[str | None] = [None] * size
    for reasons in reason_lists:
        result = [current or reason for current, reason in zip(result, reasons, strict=True)]
    return result


def quality_features(batch: pa.RecordBatch, rules: QualityRules,
                     language_model: Any = None) -> pa.RecordBatch:
    """Signals and the first failing rule for each document of ``batch`` (columns doc_id, text).

    ``language_model`` is the loaded fastText language-ID model, needed when ``rules.language`` is set."""
    texts = batch.column("text")
    size = len(texts)
    columns: dict[str, pa.Array] = {"doc_id": batch.column("doc_id")}
    reason_lists: list[list[str | None]] = []

    if rules.language is not None:
        if language_model is None:
            raise ValueError("language rules need the language-ID model")
        langs, scores = fasttext_models.predict_top(language_model, texts.fill_null("").to_pylist())
        columns["lang"] = pa.array(langs, type=pa.string())
        columns["lang_score"] = pa.array(scores, type=pa.float64())
        reason_lists.append(language_reasons(langs, scores, rules.language))

    cleaned = None
    if rules.c4 is not None:
        cleaned, c4_signals = c4_clean(texts, rules.c4)
        for name in ("c4_lines", "c4_lines_kept", "c4_sentences"):
            columns[name] = c4_signals.column(name).combine_chunks()
    scored_texts = cleaned if (cleaned is not None and rules.c4_remove_lines) else texts

    if rules.gopher_quality is not None:
        signals = gopher_quality_signals(scored_texts)
        columns.update({name: signals.column(name).combine_chunks() for name in signals.column_names})
        reason_lists.append(gopher_quality_reasons(signals, rules.gopher_quality).to_pylist())
    if rules.gopher_repetition is not None:
        signals = gopher_repetition_signals(scored_texts)
        columns.update({name: signals.column(name).combine_chunks() for name in signals.column_names})
        reason_lists.append(gopher_repetition_reasons(signals, rules.gopher_repetition).to_pylist())
    if rules.c4 is not None:
        reason_lists.append(c4_signals.column("c4_reason").to_pylist())
    if rules.fineweb is not None:
        signals = fineweb_signals(scored_texts, rules.fineweb.short_line_length)
        columns.update({name: signals.column(name).combine_chunks() for name in signals.column_names})
        reason_lists.append(fineweb_reasons(signals, rules.fineweb).to_pylist())

    columns["drop_reason"] = pa.array(_first(reason_lists, size), type=pa.string())
    columns["cleaned_text"] = (cleaned if rules.c4_remove_lines and cleaned is not None
                               else pa.nulls(size, type=pa.string()))
    return pa.RecordBatch.from_pydict(columns)


def output_schema(rules: QualityRules) -> pa.Schema:
    """The schema :func:`quality_features` produces for these rules (asked of a one-row batch)."""
    probe = pa.RecordBatch.from_pydict({"doc_id": pa.array(["probe"]),
                                        "text": pa.array(["The probe text is here."])})
    return quality_features(probe, rules, _ProbeModel()).schema
