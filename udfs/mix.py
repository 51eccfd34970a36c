"""Mixture math: token counts, target weights (explicit, temperature, UniMax, imported), and the per-domain
sampling plan (whole copies plus an exact token remainder), all in tokens rather than documents.

Sampling itself happens in Spark (``jobs/mix.py``); this module decides how many tokens of each domain a
phase takes and how that splits into ``full_copies`` of every document plus ``remainder_tokens`` taken by
hash rank, which is what makes realised proportions match targets to within one document per domain.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa

ESTIMATE_CHARS_PER_TOKEN = 4.0  # English web text with GPT-2/Llama-style BPE: ~4 characters per token


def estimate_tokens(n_chars: np.ndarray, chars_per_token: float = ESTIMATE_CHARS_PER_TOKEN) -> np.ndarray:
    """The documented estimate used when no tokenizer is configured: ceil(chars / chars_per_token)."""
    return np.ceil(np.asarray(n_chars, dtype=np.float64) / chars_per_token).astype(np.int64)


# ------------------------------------------------------------------------------------------ weights


def normalized(weights: Mapping[str, float]) -> dict[str, float]:
    bad = {name: value for name, value in weights.items() if not math.isfinite(value) or value < 0}
    if bad:
        raise ValueError(f"weights must be finite and >= 0: {bad}")
    total = float(sum(weights.values()))
    if total <= 0:
        raise ValueError("weights sum to zero")
    return {name: float(value) / total for name, value in weights.items()}


def temperature_weights(tokens: Mapping[str, float], temperature: float) -> dict[str, float]:
    """p_i proportional to n_i^(1/T): T=1 keeps natural proportions, larger T flattens towards uniform."""
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    return normalized({name: float(count) ** (1.0 / temperature) if count > 0 else 0.0
                       for name, count in tokens.items()})


def unimax_weights(tokens: Mapping[str, float], budget: float, max_epochs: float) -> dict[str, float]:
    """UniMax (Chung et al., 2023): spread the budget uniformly, smallest domains first, none above
    ``max_epochs`` passes over its data; what a capped domain cannot take goes to the larger ones."""
    if budget <= 0 or max_epochs <= 0:
        raise ValueError("budget and max_epochs must be > 0")
    remaining = float(budget)
    allocation: dict[str, float] = {}
    ordered = sorted(tokens.items(), key=lambda item: (item[1], item[0]))
    for position, (name, count) in enumerate(ordered):
        share = remaining / (len(ordered) - position)
        allocation[name] = min(share, float(count) * max_epochs)
        remaining -= allocation[name]
    return normalized(allocation) if sum(allocation.values()) > 0 else allocation


def parse_weights(data: Any, source: str = "weights") -> dict[str, float]:
    """Domain weights from a parsed DoReMi/RegMix-style JSON document: ``{"domain": weight}``, or the same
    map under ``domain_weights``/``weights``, or a list of ``{"domain": ..., "weight": ...}``."""
    if isinstance(data, dict):
        for key in ("domain_weights", "weights"):
            if isinstance(data.get(key), dict | list):
                data = data[key]
                break
    if isinstance(data, list):
        data = {str(row["domain"]): row["weight"] for row in data}
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{source}: expected a JSON map of domain -> weight")
    return {str(name): float(value) for name, value in data.items()}


# ----------------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class DomainPlan:
    """How one phase samples one domain. ``target_tokens`` is what the weights ask for; when that exceeds
    ``max_epochs`` passes over the domain the target is infeasible: the plan takes the cap instead and says
    so (it is never silently renormalised onto the other domains)."""

    phase: str
    domain: str
    available_docs: int
    available_tokens: int
    target_weight: float
    target_tokens: float
    planned_tokens: float
    factor: float  # planned / available tokens
    full_copies: int
    remainder_tokens: float
    feasible: bool
    cap_bound: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_phase(phase: str, available: Mapping[str, tuple[int, int]], weights: Mapping[str, float],
               budget: float, max_epochs: float) -> list[DomainPlan]:
    """One :class:`DomainPlan` per domain (available: domain -> (docs, tokens)); weights are normalised
    over the domains named in them. Domains without a weight get none of the budget."""
    shares = normalized(weights)
    plans = []
    for domain in sorted(set(available) | set(shares)):
        docs, tokens = available.get(domain, (0, 0))
        weight = shares.get(domain, 0.0)
        target = weight * budget
        cap = tokens * max_epochs
        planned = min(target, cap)
        feasible = target <= cap * (1 + 1e-12)
        factor = planned / tokens if tokens else 0.0
        full = math.floor(factor + 1e-12)
        plans.append(DomainPlan(phase, domain, docs, tokens, weight, target, planned, factor, full,
                                max(0.0, planned - full * tokens), feasible, not feasible and target > 0))
    return plans


# --------------------------------------------------------------------------------------- tokenizer


def count_tokens(texts: pa.Array | list[str | None], tokenizer: Any) -> np.ndarray:
    """Exact token counts of the training tokenizer (no special tokens), batched in Rust."""
    values = texts.fill_null("").to_pylist() if isinstance(texts, pa.Array) else [t or "" for t in texts]
    encodings = tokenizer.encode_batch(values, add_special_tokens=False)
    return np.fromiter((len(encoding.ids) for encoding in encodings), dtype=np.int64, count=len(values))


# ----------------------------------------------------------------------------- dataset decomposition


def power_of_two_chunks(length: int, min_log2: int, max_log2: int) -> list[tuple[int, int]]:
    """(start, size) chunks of a ``length``-token document for dataset decomposition: as many 2^max
    chunks as fit, then the binary digits of the rest from large to small; a tail under 2^min is dropped."""
    chunks: list[tuple[int, int]] = []
    start, largest = 0, 1 << max_log2
    while length - start >= largest:
        chunks.append((start, largest))
        start += largest
    for power in range(max_log2 - 1, min_log2 - 1, -1):
        size = 1 << power
        if length - start >= size:
            chunks.append((start, size))
            start += size
    return chunks


def decompose(table: pa.Table, min_log2: int, max_log2: int, tokenizer: Any = None,
              chars_per_token: float = ESTIMATE_CHARS_PER_TOKEN) -> pa.Table:
    """One row per chunk (``bucket`` = its size in tokens, ``chunk_index`` in document order).

    With a tokenizer, chunks are exact token ids (``input_ids``); without one, they are text cut every
    ``bucket * chars_per_token`` characters (the token counts are then the documented estimate)."""
    texts = table.column("text").fill_null("").to_pylist()
    keep = [name for name in table.column_names if name not in ("text", "n_tokens")]
    source_rows, buckets, positions, pieces = [], [], [], []
    if tokenizer is not None:
        encoded = [encoding.ids for encoding in tokenizer.encode_batch(texts, add_special_tokens=False)]
    for row, text in enumerate(texts):
        length = len(encoded[row]) if tokenizer is not None else int(len(text) // chars_per_token)
        for position, (start, size) in enumerate(power_of_two_chunks(length, min_log2, max_log2)):
            source_rows.append(row)
            buckets.append(size)
            positions.append(position)
            if tokenizer is not None:
                pieces.append(encoded[row][start : start + size])
            else:
                low = int(start * chars_per_token)
                pieces.append(text[low : low + int(size * chars_per_token)])
    chunks = table.select(keep).take(pa.array(source_rows, type=pa.int64()))
    chunks = chunks.append_column("bucket", pa.array(buckets, type=pa.int32()))
    chunks = chunks.append_column("chunk_index", pa.array(positions, type=pa.int32()))
    chunks = chunks.append_column("n_tokens", pa.array(buckets, type=pa.int64()))
    if tokenizer is not None:
        return chunks.append_column("input_ids", pa.array(pieces, type=pa.list_(pa.int32())))
    return chunks.append_column("text", pa.array(pieces, type=pa.string()))
