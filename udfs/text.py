"""Vectorised text helpers on Arrow arrays (no per-row Python except where hashing needs it)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from publicsuffixlist import PublicSuffixList

# scheme://[userinfo@]host[:port]... ; the host is lower-cased and a trailing dot dropped.
_HOST_PATTERN = r"^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^@/?#]*@)?(?P<host>\[[^\]]*\]|[^:/?#]+)"


def nfc(texts: pa.Array) -> pa.Array:
    """Unicode NFC, so visually identical strings have identical bytes (and hashes)."""
    return pc.utf8_normalize(texts, form="NFC")


def char_counts(texts: pa.Array) -> pa.Array:
    """Length in Unicode code points."""
    return pc.cast(pc.utf8_length(texts), pa.int32())


def word_counts(texts: pa.Array) -> pa.Array:
    """Number of whitespace-separated tokens (Unicode whitespace)."""
    return pc.cast(pc.list_value_length(pc.utf8_split_whitespace(texts)), pa.int32())


def url_hosts(urls: pa.Array) -> pa.Array:
    """Host part of each URL, lower-cased; null when the URL is null or has no scheme://host."""
    extracted = pc.struct_field(pc.extract_regex(urls, _HOST_PATTERN), "host")
    hosts = pc.utf8_rtrim(pc.utf8_lower(extracted), characters=".")
    return pc.if_else(pc.equal(pc.utf8_length(hosts), 0), pa.scalar(None, pa.string()), hosts)


def content_hashes(texts: pa.Array) -> pa.Array:
    """xxh3-128 (hex) of the UTF-8 bytes; 128 bits keep collisions negligible at 10^12 documents."""
    return pa.array([xxhash.xxh3_128_hexdigest(text.encode("utf-8")) if text is not None else None
                     for text in texts.to_pylist()], type=pa.string())


def stable_ids(parts: Sequence[Sequence[object]]) -> list[str]:
    """xxh3-128 hex of the parts joined by the ASCII unit separator; the doc_id recipe."""
    return [xxhash.xxh3_128_hexdigest("\x1f".join(str(value) for value in row).encode("utf-8"))
            for row in zip(*parts, strict=True)]


@functools.cache
def public_suffixes(icann_only: bool = False) -> PublicSuffixList:
    """The public suffix list bundled with publicsuffixlist (no download), parsed once per process (~60 ms).

    ``icann_only``: only the ICANN section (real top-level domains); else private suffixes such as github.io
    count too (registered domains for blocklists)."""
    return PublicSuffixList(only_icann=icann_only)
