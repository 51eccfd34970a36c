"""Mixture math: token counts, target weights (explicit, temperature, UniMax, imported), and the per-domain
sampling plan (whole copies plus an exact token remainder), all in tokens rather than documents.

Sampling itself happens in Spark (``jobs/mix.py``); this module decides how many tokens of each domain a
phase takes and how that splits into ``full_copies`` of every document plus ``remainder_tokens`` taken by
hash rank, which is what makes realised proportions match targets to within one document per domain.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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


def unimax_weights(capacity: Mapping[str, float], budget: float) -> dict[str, float]:
    """UniMax (Chung et al., 2023): spread the budget uniformly, smallest domains first, none above its
    ``capacity`` (tokens it may still give: the epoch cap times its tokens, less what earlier phases
    took); what a capped domain cannot take goes to the larger ones."""
    if budget <= 0:
        raise ValueError("budget must be > 0")
    remaining = float(budget)
    allocation: dict[str, float] = {}
    ordered = sorted(capacity.items(), key=lambda item: (item[1], item[0]))
    for position, (name, room) in enumerate(ordered):
        share = remaining / (len(ordered) - position)
        allocation[name] = min(share, max(0.0, float(room)))
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
    """How one phase samples one domain.

    Each domain is read as one stream over the whole schedule: its documents in hash order, epoch after
    epoch; a phase takes the stretch ``[stream_start, stream_start + planned_tokens)`` of it. So a document
    is repeated only once every document of its domain has been used, and the copies of a document over
    all phases never exceed ``ceil(max_epochs)``. ``target_tokens`` is what the weights ask for; when the
    schedule's cap (``cap_tokens`` = max_epochs x available, less what earlier phases took) cannot give it,
    the target is infeasible: the plan takes what is left and says so (never renormalised onto others)."""

    phase: str
    domain: str
    available_docs: int
    available_tokens: int
    target_weight: float
    target_tokens: float
    planned_tokens: float
    stream_start: float  # tokens of this domain the earlier phases planned
    cap_tokens: float  # the whole schedule's cap: max_epochs x available tokens
    max_epochs: float
    feasible: bool
    cap_bound: bool

    @property
    def factor(self) -> float:
        """Planned tokens in epochs of the domain."""
        return self.planned_tokens / self.available_tokens if self.available_tokens else 0.0

    @property
    def stream_end(self) -> float:
        return self.stream_start + self.planned_tokens


def room_left(available_tokens: int, max_epochs: float, taken: float) -> float:
    """Tokens a domain may still give: its cap over the whole schedule less what earlier phases took."""
    return max(0.0, available_tokens * max_epochs - taken)


def plan_phase(phase: str, available: Mapping[str, tuple[int, int]], weights: Mapping[str, float],
               budget: float, max_epochs: Mapping[str, float], taken: Mapping[str, float] | None = None,
               ) -> list[DomainPlan]:
    """One :class:`DomainPlan` per domain (available: domain -> (docs, tokens); max_epochs: domain -> the
    cap over the whole schedule; taken: domain -> tokens earlier phases planned). Weights are normalised
    over the domains named in them; domains without a weight get none of the budget."""
    shares = normalized(weights)
    taken = taken or {}
    plans = []
    for domain in sorted(set(available) | set(shares)):
        docs, tokens = available.get(domain, (0, 0))
        weight = shares.get(domain, 0.0)
        target = weight * budget
        epochs = max_epochs[domain]
        start = float(taken.get(domain, 0.0))
        room = room_left(tokens, epochs, start)
        feasible = target <= room * (1 + 1e-12)
        plans.append(DomainPlan(phase, domain, docs, tokens, weight, target, min(target, room), start,
                                tokens * epochs, epochs, feasible, not feasible and target > 0))
    return plans


def schedule_epochs(plans: list[DomainPlan]) -> dict[str, float]:
    """Planned epochs of each domain over the whole schedule."""
    totals: dict[str, float] = {}
    for plan in plans:
        totals[plan.domain] = totals.get(plan.domain, 0.0) + plan.factor
    return totals


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
              chars_per_token: float = ESTIMATE_CHARS_PER_TOKEN) -> tuple[pa.Table, np.ndarray]:
    """One row per chunk (``bucket`` = its size in tokens, ``chunk_index`` in document order), and the
    tokens of each document that no chunk holds (its tail below 2^min_log2), so none are lost unsaid.

    With a tokenizer, chunks are exact token ids (``input_ids``); without one, they are text cut every
    ``bucket * chars_per_token`` characters (the token counts are then the documented estimate)."""
    texts = table.column("text").fill_null("").to_pylist()
    keep = [name for name in table.column_names if name not in ("text", "n_tokens")]
    source_rows, buckets, positions, pieces = [], [], [], []
    if tokenizer is not None:
        encoded = [encoding.ids for encoding in tokenizer.encode_batch(texts, add_special_tokens=False)]
        lengths = np.fromiter((len(ids) for ids in encoded), dtype=np.int64, count=len(encoded))
    else:
        lengths = (pc.utf8_length(table.column("text").fill_null("")).to_numpy(zero_copy_only=False)
                   // chars_per_token).astype(np.int64)
    for row, text in enumerate(texts):
        length = int(lengths[row])
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
    tails = decomposition_tails(lengths, min_log2)
    if tokenizer is not None:
        return chunks.append_column("input_ids", pa.array(pieces, type=pa.list_(pa.int32()))), tails
    return chunks.append_column("text", pa.array(pieces, type=pa.string())), tails


def decomposition_tails(lengths: np.ndarray, min_log2: int) -> np.ndarray:
    """Tokens of each document that :func:`power_of_two_chunks` leaves out: every chunk is a multiple of
    2^min_log2, so what is left is the length modulo it."""
    return np.asarray(lengths, dtype=np.int64) % (1 << min_log2)


# ------------------------------------------------------------------------------ training-ready export

EOS_CANDIDATES = ("<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>", "[EOS]")


def resolve_eos(tokenizer: Any, eos_token: str | None = None) -> tuple[str, int]:
    """(token, id) of the end-of-document token: the configured one, else the first of the usual names the
    vocabulary has. A tokenizer without one is an error: a trainer could not tell documents apart."""
    names = [eos_token] if eos_token else list(EOS_CANDIDATES)
    for name in names:
        token_id = tokenizer.token_to_id(name)
        if token_id is not None:
            return name, int(token_id)
    wanted = repr(eos_token) if eos_token else f"any of {list(EOS_CANDIDATES)}"
    raise ValueError(f"the tokenizer has no end-of-document token {wanted}")


def token_dtype(vocab_size: int) -> np.dtype:
    """The narrowest unsigned type that holds every id: uint16 up to 65,536 ids, else uint32."""
    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


@dataclass(frozen=True)
class TokenizedShard:
    """Whole documents as one flat token array: document i is ``tokens[offsets[i]:offsets[i + 1]]``, its
    metadata prefix (MeCo) the first ``prefix_tokens[i]`` of them, its end-of-document token the last."""

    tokens: np.ndarray
    offsets: np.ndarray  # int64, rows + 1
    prefix_tokens: np.ndarray  # int32, rows


def _flat_ids(encodings: list[Any], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(all ids in order, length of each) of a batch of encodings, through one Arrow list array."""
    ids = pa.array([encoding.ids for encoding in encodings], type=pa.list_(pa.uint32()))
    lengths = pc.list_value_length(ids).to_numpy(zero_copy_only=False).astype(np.int64)
    return ids.flatten().to_numpy(zero_copy_only=False).astype(dtype), lengths


def _placed(values: np.ndarray, lengths: np.ndarray, starts: np.ndarray, out: np.ndarray) -> None:
    """Write run i of ``values`` (``lengths[i]`` long) at ``out[starts[i]:]``, without a loop over rows."""
    if not len(values):
        return
    run_starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[np.repeat(starts, lengths) + (np.arange(len(values)) - run_starts)] = values


def tokenize_documents(texts: pa.Array, prefixes: pa.Array, tokenizer: Any, eos_id: int,
                       dtype: np.dtype) -> TokenizedShard:
    """prefix ids + text ids + EOS per document, batched in Rust; the prefix is encoded on its own so a
    trainer can mask its loss and a reader can tell where the document starts."""
    text_ids, text_lengths = _flat_ids(
        tokenizer.encode_batch(texts.fill_null("").to_pylist(), add_special_tokens=False), dtype)
    prefix_ids, prefix_lengths = _flat_ids(
        tokenizer.encode_batch(prefixes.fill_null("").to_pylist(), add_special_tokens=False), dtype)
    offsets = np.zeros(len(text_lengths) + 1, dtype=np.int64)
    np.cumsum(prefix_lengths + text_lengths + 1, out=offsets[1:])
    flat = np.empty(int(offsets[-1]), dtype=dtype)
    _placed(prefix_ids, prefix_lengths, offsets[:-1], flat)
    _placed(text_ids, text_lengths, offsets[:-1] + prefix_lengths, flat)
    flat[offsets[1:] - 1] = eos_id
    return TokenizedShard(flat, offsets, prefix_lengths.astype(np.int32))


# ------------------------------------------------------------------------ metadata conditioning (MeCo)

META_FIELDS = ("host", "url")


def check_meta_template(template: str) -> None:
    """A template may name only the fields :func:`meta_prefixes` fills (``{host}``, ``{url}``)."""
    names = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    unknown = sorted(names - set(META_FIELDS))
    if unknown or not names:
        raise ValueError(f"template must name {{host}} or {{url}} and nothing else (it names "
                         f"{sorted(names)})")


def conditioned_rows(n_tokens: np.ndarray, first_token: int, conditioned_tokens: float) -> np.ndarray:
    """Rows (in trainer order, the first at token ``first_token`` of the whole export) that start before
    the ``conditioned_tokens`` mark: MeCo conditions the first share of training and cools down after."""
    starts = first_token + np.concatenate(([0], np.cumsum(np.asarray(n_tokens, dtype=np.int64))[:-1]))
    return starts < conditioned_tokens


def meta_prefixes(hosts: pa.Array, urls: pa.Array, template: str, conditioned: np.ndarray) -> pa.Array:
    """The metadata line of each conditioned row (null elsewhere, and where the field is missing)."""
    names = {"host": hosts, "url": urls}
    pieces: list[pa.Array | str] = []
    present = pa.array(conditioned, type=pa.bool_())
    for literal, field, _, _ in string.Formatter().parse(template):
        if literal:
            pieces.append(literal)
        if field is not None:
            values = names[field].cast(pa.string())
            present = pc.and_kleene(present, pc.invert(pc.or_kleene(pc.is_null(values),
                                                                    pc.equal(values, ""))))
            pieces.append(values)
    joined = pc.binary_join_element_wise(*pieces, "")
    return pc.if_else(pc.fill_null(present, False), joined, pa.scalar(None, pa.string()))
