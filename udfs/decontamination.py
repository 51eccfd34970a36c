"""Benchmark decontamination: documents that copy an evaluation item are dropped, or the copied spans cut.

As in GPT-3, DCLM and Dolma: benchmark items (a question with its choices and answer, joined into one text)
and documents are normalised the same way (lower-case, punctuation and symbols to spaces, whitespace-separated
words; digits and accents kept), and every word ``ngram``-gram (13, GPT-3's size) is hashed. A document is
contaminated by an item when they share enough distinct n-grams. The index is the items' sorted n-gram hashes
and their item numbers: compact numpy arrays, built on the driver and broadcast to every worker.

Hashing is MinHash's (:mod:`udfs.minhash`): each distinct token of a batch is hashed once with xxh3-64 and the
tokens of a window are mixed in numpy, so items and documents hash one way. Only full windows are kept: a text
shorter than ``ngram`` words has no n-gram, so it can neither match nor be matched.

Span removal (mode ``remove``) maps words back to the original text through its whitespace tokens (maximal
runs of non-whitespace, whitespace as pyarrow's ``utf8_split_whitespace`` defines it). Each token normalises
to zero or more words (``"don't"`` gives two, ``"--"`` none); the batch's word sequence is these words in
order, because normalisation never moves a word across whitespace (checked per row: a row whose counts
disagree is dropped instead). A token is cut when any of its words lies in a matched n-gram, and so is a
wordless token between two cut ones. The whitespace around and inside a cut run of tokens collapses to one of
its gaps: the leading (trailing) gap of the text when the run starts (ends) it, otherwise the gap with the
most line breaks (the first on ties), so paragraphs and lines around a removed item stay as they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from udfs.minhash import char_codes, mix_windows, shingle_windows, token_hashes
from udfs.normalize import TextNormalization, words

# What GPT-3 / DCLM do before n-gramming: lower-case, punctuation stripped, whitespace words. Digits stay
# (a maths item differs from another by its numbers); accents stay (no Unicode decomposition).
NORMALIZATION = TextNormalization(lowercase=True, accents=False, digits=False, punctuation=True,
                                  whitespace=True)

# pyarrow's whitespace (utf8_split_whitespace; the same set as Python's str.isspace), as code points.
WHITESPACE_CODE_POINTS = np.array(
    [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
     0x2028, 0x2029, 0x202F, 0x205F, 0x3000],
    dtype=np.uint32,
)
# Line breaks (str.splitlines' set): the gap with most of them survives a cut run.
LINE_BREAK_CODE_POINTS = np.array([0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029],
                                  dtype=np.uint32)

ITEM_COLUMNS = ("benchmark", "item_id", "text")
SIGNAL_SCHEMA = pa.schema([
    ("decon_benchmark", pa.string()),
    ("decon_item", pa.string()),
    ("decon_matches", pa.int32()),
    ("decon_item_fraction", pa.float64()),
    ("decon_reason", pa.string()),
    ("decon_removed_words", pa.int32()),
])
REASON_PREFIX = "decontaminated:"
_EVERY_WINDOW = np.iinfo(np.int64).max  # no cap on n-grams per text: a copied item may sit anywhere


@dataclass(frozen=True)
class DecontaminationRules:
    """When a document counts as a copy of a benchmark item, and what happens to it."""

    ngram: int = 13  # words per n-gram (GPT-3's 13)
    min_matching_ngrams: int = 1  # contaminated by an item when sharing at least this many distinct n-grams
    min_item_fraction: float = 0.0  # ... and at least this share of the item's distinct n-grams
    mode: Literal["drop", "remove"] = "drop"  # drop the document, or remove the overlapping spans

    def __post_init__(self) -> None:
        if self.ngram < 1:
            raise ValueError(f"ngram must be at least 1, got {self.ngram}")
        if self.min_matching_ngrams < 1:
            raise ValueError(f"min_matching_ngrams must be at least 1, got {self.min_matching_ngrams}")
        if not 0.0 <= self.min_item_fraction <= 1.0:
            raise ValueError(f"min_item_fraction must be in [0, 1], got {self.min_item_fraction}")
        if self.mode not in ("drop", "remove"):
            raise ValueError(f"mode must be 'drop' or 'remove', got {self.mode!r}")


@dataclass(frozen=True)
class BenchmarkIndex:
    """Every distinct n-gram of every item, sorted by hash (broadcast to the workers, so numpy only)."""

    hashes: np.ndarray  # uint64, sorted
    item_of_hash: np.ndarray  # int32 item number per hash; a hash shared by items appears once per item
    benchmarks: list[str]  # per item: benchmark name
    item_ids: list[str]  # per item: its id
    item_ngrams: np.ndarray  # int32 per item: distinct n-gram count (0: shorter than ngram words)
    ngram: int
    skipped_items: int  # items with fewer than ngram words: they cannot be checked

    @property
    def items(self) -> int:
        return len(self.item_ids)

    def nbytes(self) -> int:
        """Approximate memory footprint: the arrays plus the UTF-8 of the names and ids."""
        arrays = self.hashes.nbytes + self.item_of_hash.nbytes + self.item_ngrams.nbytes
        names = sum(len(name.encode("utf-8")) for name in set(self.benchmarks))
        ids = sum(len(item_id.encode("utf-8")) for item_id in self.item_ids)
        return arrays + names + ids

    @cached_property
    def bucket_starts(self) -> np.ndarray:
        """Where each bucket of hashes starts (and the last ends): a hash's top ``bucket_bits`` bits pick its
        bucket, so a lookup reads about two entries instead of binary-searching (some twenty cache misses).
        Built on first use on each worker, never pickled: int32, about 2 bytes per index entry."""
        counts = np.bincount((self.hashes >> np.uint64(64 - self.bucket_bits)).astype(np.int64),
                             minlength=1 << self.bucket_bits)
        dtype = np.int32 if len(self.hashes) < 2**31 else np.int64
        return np.concatenate([[0], np.cumsum(counts)]).astype(dtype)

    @property
    def bucket_bits(self) -> int:
        """Between one and two index entries per bucket on average."""
        return min(max(len(self.hashes).bit_length() - 1, 1), 32)

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state.pop("bucket_starts", None)  # derived on the worker: not worth broadcasting
        return state


# ------------------------------------------------------------------------------------------- hashing


def _word_ngrams(texts: pa.Array, ngram: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(owner row, start word within the row, hash) of every full word n-gram, and each row's word count."""
    if ngram < 1:
        raise ValueError(f"ngram must be at least 1, got {ngram}")
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    tokens, word_counts = words(texts, NORMALIZATION)
    if len(texts) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.uint64), word_counts
    owners, starts, ends = shingle_windows(word_counts, ngram, _EVERY_WINDOW)
    full = ends - starts == ngram  # texts shorter than ngram words get one partial window: not an n-gram
    owners, starts, ends = owners[full], starts[full], ends[full]
    hashes = mix_windows(token_hashes(tokens), starts, ends, ngram)
    first_word_of_row = np.concatenate([[0], np.cumsum(word_counts)[:-1]]).astype(np.int64)
    return owners, starts - first_word_of_row[owners], hashes, word_counts


def ngram_hashes(texts: pa.Array, ngram: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(owner row, start word position, uint64 hash) of every word n-gram of every text.

    The one hashing of items and documents; texts shorter than ``ngram`` words (and nulls) have none."""
    owners, starts, hashes, _ = _word_ngrams(texts, ngram)
    return owners, starts, hashes


# --------------------------------------------------------------------------------------------- index


def _column(records: pa.Table, path: str) -> pa.Array:
    """The column ``path`` of ``records``; ``a.b`` names member ``b`` of struct column ``a``."""
    name, *members = path.split(".")
    if name not in records.column_names:
        raise ValueError(f"benchmark field '{path}' not found (columns: {', '.join(records.column_names)})")
    values = records.column(name).combine_chunks()
    for member in members:
        if not pa.types.is_struct(values.type) or values.type.get_field_index(member) < 0:
            raise ValueError(f"benchmark field '{path}' not found: no member '{member}' in {values.type}")
        values = pc.struct_field(values, member)
    return values


def _joined_text(values: pa.Array, path: str) -> pa.Array:
    """One string per record: nested lists flattened, scalars stringified, joined by spaces; nulls skipped."""
    records = len(values)
    parents = np.arange(records, dtype=np.int64)
    while pa.types.is_list(values.type) or pa.types.is_large_list(values.type) \
            or pa.types.is_fixed_size_list(values.type):
        parents = parents[pc.list_parent_indices(values).to_numpy(zero_copy_only=False)]
        values = pc.list_flatten(values)
    if pa.types.is_struct(values.type) or pa.types.is_map(values.type):
        raise ValueError(f"benchmark field '{path}' holds {values.type}; name a member: '{path}.<member>'")
    strings = values.cast(pa.string())
    present = strings.is_valid().to_numpy(zero_copy_only=False)
    counts = np.bincount(parents[present], minlength=records)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), strings.filter(pa.array(present)))
    return pc.binary_join(lists, " ")


def benchmark_items(records: pa.Table, benchmark: str, text_fields: Sequence[str],
                    id_field: str | None) -> pa.Table:
    """Join the text fields of benchmark records (lists such as choices flattened, numbers stringified) into
    one text per item; item_id from id_field or the row number. Missing fields: a ValueError naming the field.

    Fields may name struct members as ``parent.member`` (e.g. ARC's ``choices.text``)."""
    if not benchmark:
        raise ValueError("benchmark name must not be empty")
    if not text_fields:
        raise ValueError(f"benchmark '{benchmark}': no text fields given")
    parts = [_joined_text(_column(records, path), path) for path in text_fields]
    texts = pc.binary_join_element_wise(*parts, "\n")
    row_numbers = pc.cast(pa.array(np.arange(records.num_rows, dtype=np.int64)), pa.string())
    if id_field is None:
        item_ids = row_numbers
    else:
        ids = _column(records, id_field).cast(pa.string())
        item_ids = pc.if_else(ids.is_valid(), ids, row_numbers)  # a record without id keeps its row number
    names = pa.array([benchmark] * records.num_rows, type=pa.string())
    return pa.table({"benchmark": names, "item_id": item_ids, "text": texts})


def build_index(items: pa.Table, ngram: int) -> BenchmarkIndex:
    """items: columns benchmark, item_id, text (the configured fields already joined by the caller).

    Sorted by (hash, item), one entry per distinct (hash, item) pair; items keep their row number."""
    missing = [name for name in ITEM_COLUMNS if name not in items.column_names]
    if missing:
        raise ValueError(f"benchmark items lack column(s) {', '.join(missing)}")
    owners, _, hashes, _ = _word_ngrams(items.column("text").combine_chunks(), ngram)
    order = np.lexsort((owners, hashes))
    hashes, owners = hashes[order], owners[order]
    distinct = np.ones(len(hashes), dtype=bool)
    distinct[1:] = (hashes[1:] != hashes[:-1]) | (owners[1:] != owners[:-1])
    hashes, owners = hashes[distinct], owners[distinct]
    item_ngrams = np.bincount(owners, minlength=items.num_rows).astype(np.int32)
    # Python lists by the spec of the broadcast value; names are shared objects so they pickle once each.
    encoded = pc.dictionary_encode(items.column("benchmark").combine_chunks().cast(pa.string()))
    names = encoded.dictionary.to_pylist()
    benchmarks = [names[code] for code in encoded.indices.to_numpy(zero_copy_only=False)]
    return BenchmarkIndex(
        hashes=hashes,
        item_of_hash=owners.astype(np.int32),
        benchmarks=benchmarks,
        item_ids=items.column("item_id").combine_chunks().cast(pa.string()).to_pylist(),
        item_ngrams=item_ngrams,
        ngram=ngram,
        skipped_items=int(np.count_nonzero(item_ngrams == 0)),
    )


# ------------------------------------------------------------------------------------------ matching


def _lookup(hashes: np.ndarray, index: BenchmarkIndex) -> tuple[np.ndarray, np.ndarray]:
    """(n-gram number, item) for every index entry an n-gram's hash equals (one per item holding it).

    Bucketed: each n-gram is compared with the entries of its bucket, one position at a time over all
    n-grams still in play (a loop over the largest bucket's size, about ten, not over n-grams)."""
    if len(index.hashes) == 0 or len(hashes) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    bucket_starts = index.bucket_starts
    buckets = (hashes >> np.uint64(64 - index.bucket_bits)).astype(np.int64)
    first, end = bucket_starts[buckets], bucket_starts[buckets + 1]
    candidates = np.flatnonzero(end > first)
    found_ngrams, found_entries = [], []
    step = 0
    while len(candidates):
        entries = first[candidates] + step
        stored, wanted = index.hashes[entries], hashes[candidates]
        equal = stored == wanted
        found_ngrams.append(candidates[equal])
        found_entries.append(entries[equal])
        step += 1
        # Buckets are sorted: scan on while the entry is not past the hash (several items may hold it).
        candidates = candidates[(stored <= wanted) & (first[candidates] + step < end[candidates])]
    ngrams, entries = np.concatenate(found_ngrams), np.concatenate(found_entries)
    return ngrams, index.item_of_hash[entries].astype(np.int64)


def _first_per_group(groups: np.ndarray) -> np.ndarray:
    """Mask of the first element of each run of equal values (``groups`` sorted)."""
    first = np.ones(len(groups), dtype=bool)
    first[1:] = groups[1:] != groups[:-1]
    return first


def _nullable_take(values: list[str], positions: np.ndarray, present: np.ndarray) -> pa.Array:
    """values[positions] where present, null elsewhere."""
    if not present.any():
        return pa.nulls(len(present), type=pa.string())
    chosen = pa.array([values[i] for i in positions[present]], type=pa.string())  # contaminated rows only
    slots = np.cumsum(present) - 1
    return chosen.take(pa.array(np.where(present, slots, 0), mask=~present))


def find_contamination(texts: pa.Array, index: BenchmarkIndex,
                       rules: DecontaminationRules) -> tuple[pa.Array, pa.Table]:
    """(texts after span removal — unchanged unless mode 'remove' and a match, null-safe;
       signals: decon_benchmark (string, the best-matching item's benchmark or null), decon_item (string),
       decon_matches (int32, distinct n-grams shared with that item), decon_item_fraction (float64),
       decon_reason (string: "decontaminated:<benchmark>" when dropped in mode drop, null otherwise),
       decon_removed_words (int32, words removed in mode remove)).

    Only items meeting both thresholds count: the signals name the one sharing the most distinct n-grams
    (ties: the lowest item number); documents contaminated by none get nulls and zeros. Mode remove cuts the
    n-grams of every qualifying item, not only the best one."""
    if rules.ngram != index.ngram:
        raise ValueError(f"rules.ngram={rules.ngram} but the index was built with ngram={index.ngram}")
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    documents = len(texts)
    owners, starts, hashes, word_counts = _word_ngrams(texts, index.ngram)
    hit_ngrams, hit_items = _lookup(hashes, index)
    hit_pairs = owners[hit_ngrams] * index.items + hit_items  # (document, item) as one int64 key

    # Distinct n-grams per (document, item): a phrase repeated in a page counts once.
    order = np.lexsort((hashes[hit_ngrams], hit_pairs))
    sorted_pairs, sorted_hashes = hit_pairs[order], hashes[hit_ngrams][order]
    distinct = _first_per_group(sorted_pairs) | _first_per_group(sorted_hashes)
    pairs, matches = np.unique(sorted_pairs[distinct], return_counts=True)
    pair_docs, pair_items = pairs // max(index.items, 1), pairs % max(index.items, 1)
    fractions = matches / np.maximum(index.item_ngrams[pair_items], 1)
    qualifies = (matches >= rules.min_matching_ngrams) & (fractions >= rules.min_item_fraction)

    # Best qualifying item per document: most matches, then lowest item number.
    q_docs, q_items = pair_docs[qualifies], pair_items[qualifies]
    q_matches, q_fractions = matches[qualifies], fractions[qualifies]
    best = np.lexsort((q_items, -q_matches, q_docs))
    best = best[_first_per_group(q_docs[best])]
    contaminated = np.zeros(documents, dtype=bool)
    contaminated[q_docs[best]] = True
    best_item = np.zeros(documents, dtype=np.int64)
    best_item[q_docs[best]] = q_items[best]
    best_matches = np.zeros(documents, dtype=np.int32)
    best_matches[q_docs[best]] = q_matches[best]
    best_fraction = np.zeros(documents, dtype=np.float64)
    best_fraction[q_docs[best]] = q_fractions[best]

    benchmark_column = _nullable_take(index.benchmarks, best_item, contaminated)
    removed_words = np.zeros(documents, dtype=np.int32)
    out_texts = texts
    if rules.mode == "drop":
        reasons = pc.binary_join_element_wise(REASON_PREFIX, benchmark_column, "")  # null stays null
    else:
        reasons = pa.nulls(documents, type=pa.string())
        cut = np.isin(hit_pairs, pairs[qualifies])
        out_texts, removed_words, unmappable = _remove_ngrams(
            texts, word_counts, owners[hit_ngrams[cut]], starts[hit_ngrams[cut]], index.ngram)
        if unmappable.any():  # words could not be placed in the original text: drop it instead
            reasons = pc.if_else(pa.array(unmappable), pc.binary_join_element_wise(
                REASON_PREFIX, benchmark_column, ""), reasons)
    signals = pa.Table.from_arrays([
        benchmark_column,
        _nullable_take(index.item_ids, best_item, contaminated),
        pa.array(best_matches, type=pa.int32()),
        pa.array(best_fraction, type=pa.float64()),
        reasons.cast(pa.string()),
        pa.array(removed_words, type=pa.int32()),
    ], schema=SIGNAL_SCHEMA)
    return out_texts, signals


# -------------------------------------------------------------------------------------- span removal


@dataclass
class _Pieces:
    """Matched rows cut into alternating whitespace gaps and tokens: row ``r`` with ``n`` tokens is the
    ``2n + 1`` pieces gap, token, gap, ..., token, gap (a gap may be empty). Indices are code points."""

    texts: pa.Array  # the pieces as strings, in order
    tokens_per_row: np.ndarray  # int64
    token_row: np.ndarray  # int64, per token
    token_piece: np.ndarray  # int64, per token: its piece number
    token_words: np.ndarray  # int64, per token: words after normalisation
    line_breaks: np.ndarray  # int64, per piece


def _pieces(rows: pa.Array) -> _Pieces:
    """Cut rows at whitespace boundaries, all rows at once (numpy over their code points)."""
    codes, lengths = char_codes(rows)
    row_count = len(lengths)
    row_first = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    is_space = np.isin(codes, WHITESPACE_CODE_POINTS)
    starts_row = np.zeros(len(codes), dtype=bool)
    starts_row[row_first[:-1][lengths > 0]] = True
    ends_row = np.zeros(len(codes), dtype=bool)
    ends_row[row_first[1:][lengths > 0] - 1] = True
    previous_space = np.concatenate([[True], is_space[:-1]]) | starts_row
    next_space = np.concatenate([is_space[1:], [True]]) | ends_row
    token_starts = np.flatnonzero(~is_space & previous_space)
    token_ends = np.flatnonzero(~is_space & next_space) + 1
    row_of_code = np.repeat(np.arange(row_count, dtype=np.int64), lengths)
    token_row = row_of_code[token_starts]
    tokens_per_row = np.bincount(token_row, minlength=row_count).astype(np.int64)
    first_token_of_row = np.concatenate([[0], np.cumsum(tokens_per_row)[:-1]]).astype(np.int64)
    # Piece boundaries: each row's start, then every token's start and end; the last row's end closes.
    token_number = np.arange(len(token_starts), dtype=np.int64)
    bounds = np.empty(2 * len(token_starts) + row_count + 1, dtype=np.int64)
    bounds[2 * first_token_of_row + np.arange(row_count)] = row_first[:-1]
    token_piece = 2 * token_number + token_row + 1
    bounds[token_piece] = token_starts
    bounds[token_piece + 1] = token_ends
    bounds[-1] = len(codes)
    utf8_widths = 1 + (codes >= 0x80).astype(np.int64) + (codes >= 0x800) + (codes >= 0x10000)
    byte_of_code = np.concatenate([[0], np.cumsum(utf8_widths)]).astype(np.int64)
    data = "".join(rows.to_pylist()).encode("utf-8")
    texts = pa.LargeStringArray.from_buffers(len(bounds) - 1, pa.py_buffer(byte_of_code[bounds]),
                                             pa.py_buffer(data))
    _, token_words = words(texts.take(pa.array(token_piece)), NORMALIZATION)
    breaks_before = np.concatenate([[0], np.cumsum(np.isin(codes, LINE_BREAK_CODE_POINTS))])
    line_breaks = breaks_before[bounds[1:]] - breaks_before[bounds[:-1]]
    return _Pieces(texts, tokens_per_row, token_row, token_piece, token_words, line_breaks)


def _bridge_wordless(token_cut: np.ndarray, has_words: np.ndarray, token_row: np.ndarray) -> np.ndarray:
    """Also cut tokens without words (``"?!"``, ``"--"``) whose nearest word tokens on both sides, in the same
    row, are cut: they are part of the copied span, not text around it."""
    tokens = len(token_cut)
    numbers = np.arange(tokens, dtype=np.int64)
    previous = np.maximum.accumulate(np.where(has_words, numbers, -1))
    following = np.minimum.accumulate(np.where(has_words, numbers, tokens)[::-1])[::-1]
    padded_cut = np.concatenate([token_cut, [False]])  # index -1 and ``tokens`` land on this False
    padded_row = np.concatenate([token_row, [-1]])
    previous_cut = padded_cut[previous] & (padded_row[previous] == token_row)
    following_cut = padded_cut[following] & (padded_row[following] == token_row)
    return token_cut | (~has_words & previous_cut & following_cut)


def _kept_gaps(pieces: _Pieces, token_cut: np.ndarray) -> np.ndarray:
    """Per gap piece: kept? The gaps touching a run of cut tokens collapse to one (see the module doc)."""
    rows = len(pieces.tokens_per_row)
    gap_row = np.repeat(np.arange(rows, dtype=np.int64), pieces.tokens_per_row + 1)
    gap_number = np.arange(len(gap_row), dtype=np.int64)
    first_gap_of_row = np.concatenate([[0], np.cumsum(pieces.tokens_per_row + 1)[:-1]]).astype(np.int64)
    within = gap_number - first_gap_of_row[gap_row]
    # Gap k of row r sits between the row's tokens k-1 and k; token numbers are global (gap number - row).
    has_left = within > 0
    has_right = within < pieces.tokens_per_row[gap_row]
    token_cut_padded = np.concatenate([token_cut, [False]])
    left_cut = has_left & token_cut_padded[np.where(has_left, gap_number - gap_row - 1, -1)]
    right_cut = has_right & token_cut_padded[np.where(has_right, gap_number - gap_row, -1)]
    touched = left_cut | right_cut
    run = np.cumsum(touched & ~left_cut) - 1  # a gap whose left token is cut continues that token's run
    gap_piece = 2 * first_gap_of_row[gap_row] - gap_row + 2 * within  # 2 * (first token of row) + row + 2k
    score = pieces.line_breaks[gap_piece].astype(np.float64)
    score[~has_left | ~has_right] = np.inf  # a run at the text's edge keeps the edge's own whitespace
    candidates = np.flatnonzero(touched)
    order = candidates[np.lexsort((candidates, -score[candidates], run[candidates]))]
    keepers = order[_first_per_group(run[order])]
    kept = ~touched
    kept[keepers] = True
    return kept


def _remove_ngrams(texts: pa.Array, word_counts: np.ndarray, cut_owners: np.ndarray, cut_starts: np.ndarray,
                   ngram: int) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(texts with the words of the given n-grams cut, words removed per row, rows that could not be mapped).

    Only the rows owning a cut n-gram are processed, all of them at once."""
    documents = len(texts)
    removed_words = np.zeros(documents, dtype=np.int32)
    unmappable = np.zeros(documents, dtype=bool)
    matched = np.unique(cut_owners)
    if len(matched) == 0:
        return texts, removed_words, unmappable
    rows = texts.take(pa.array(matched))
    pieces = _pieces(rows)
    row_words = np.bincount(pieces.token_row, weights=pieces.token_words, minlength=len(matched))
    consistent = row_words == word_counts[matched]
    if not consistent.all():  # cannot happen while WHITESPACE_CODE_POINTS is pyarrow's set; kept sound anyway
        unmappable[matched[~consistent]] = True
        matched = matched[consistent]
        keep = np.isin(cut_owners, matched)
        cut_owners, cut_starts = cut_owners[keep], cut_starts[keep]
        if len(matched) == 0:
            return texts, removed_words, unmappable
        rows = texts.take(pa.array(matched))
        pieces = _pieces(rows)

    # Words covered by a cut n-gram, on the matched rows' words laid end to end (difference array).
    row_of_document = np.full(documents, -1, dtype=np.int64)
    row_of_document[matched] = np.arange(len(matched))
    first_word = np.concatenate([[0], np.cumsum(word_counts[matched])]).astype(np.int64)
    cut_first = first_word[row_of_document[cut_owners]] + cut_starts
    total_words = int(first_word[-1])
    delta = np.bincount(cut_first, minlength=total_words + 1) - np.bincount(cut_first + ngram,
                                                                            minlength=total_words + 1)
    covered = np.cumsum(delta)[:total_words] > 0
    token_of_word = np.repeat(np.arange(len(pieces.token_words), dtype=np.int64), pieces.token_words)
    token_cut = np.bincount(token_of_word, weights=covered, minlength=len(pieces.token_words)) > 0
    token_cut = _bridge_wordless(token_cut, pieces.token_words > 0, pieces.token_row)
    removed_words[matched] = np.bincount(pieces.token_row, weights=pieces.token_words * token_cut,
                                         minlength=len(matched)).astype(np.int32)

    keep_piece = np.ones(len(pieces.texts), dtype=bool)
    keep_piece[pieces.token_piece[token_cut]] = False
    gap_pieces = np.setdiff1d(np.arange(len(pieces.texts)), pieces.token_piece, assume_unique=True)
    keep_piece[gap_pieces] = _kept_gaps(pieces, token_cut)
    piece_row = np.repeat(np.arange(len(matched), dtype=np.int64), 2 * pieces.tokens_per_row + 1)
    kept_per_row = np.bincount(piece_row[keep_piece], minlength=len(matched))
    offsets = np.concatenate([[0], np.cumsum(kept_per_row)]).astype(np.int64)
    kept_pieces = pa.LargeListArray.from_arrays(pa.array(offsets), pieces.texts.filter(pa.array(keep_piece)))
    rebuilt = pc.binary_join(kept_pieces, pa.scalar("", type=pa.large_string()))
    replace = np.zeros(documents, dtype=bool)
    replace[matched] = True
    return pc.replace_with_mask(texts, pa.array(replace), rebuilt.cast(texts.type)), removed_words, unmappable
