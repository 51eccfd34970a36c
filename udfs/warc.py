"""WARC/WET framing that trusts no header: every record's ``Content-Length`` is checked against the
``\\r\\n\\r\\n`` that must follow its block, and a record whose length is missing, not a number, too large,
or wrong is reported as a :class:`FramingError` while reading resumes at the next ``WARC/1.`` line.

A reader that trusts the length (as most do) lets an overlong record swallow the records after it,
headers included, and a non-numeric one end the file. Here one bad record costs one record.

Reads are bounded: header lines by :data:`MAX_HEADER_LINE`, the header block by :data:`MAX_HEADER_BYTES`,
a record's block by ``max_block_bytes`` (a larger one is skipped in chunks, never held), so a hostile or
decompression-bomb file cannot exhaust a worker's memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

VERSION_PREFIX = b"WARC/1."
MAX_HEADER_LINE = 64 * 1024
MAX_HEADER_BYTES = 1024 * 1024
SKIP_CHUNK = 1024 * 1024
DOCUMENT_TYPES = ("response", "conversion", "resource")  # the others describe the crawl
_NEXT_RECORD = re.compile(rb"\r?\n\r?\n(?=WARC/1\.[0-9]\r?\n)")


@dataclass
class WarcRecord:
    """One well-framed record: its offset in the (decompressed) stream, headers and content block."""

    offset: int
    headers: dict[str, str]
    block: bytes

    @property
    def record_type(self) -> str:
        return self.headers.get("warc-type", "").lower()


@dataclass
class FramingError:
    """A stretch of the stream that is not a well-framed record (``reason`` and ``detail`` say why)."""

    offset: int
    reason: str  # bad_warc_header | bad_warc_framing | record_too_large
    detail: str
    headers: dict[str, str] = field(default_factory=dict)
    preview: bytes = b""


class _Stream:
    """A binary stream with a push-back buffer and a byte counter (the offset of the next byte)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.pending = b""
        self.offset = 0

    def push_back(self, data: bytes) -> None:
        self.pending = data + self.pending
        self.offset -= len(data)

    def read(self, size: int) -> bytes:
        if self.pending:
            data, self.pending = self.pending[:size], self.pending[size:]
            if len(data) < size:
                data += self.raw.read(size - len(data))
        else:
            data = self.raw.read(size)
        self.offset += len(data)
        return data

    def readline(self, limit: int) -> bytes:
        if self.pending:
            end = self.pending.find(b"\n", 0, limit)
            if end >= 0 or len(self.pending) >= limit:
                cut = end + 1 if end >= 0 else limit
                data, self.pending = self.pending[:cut], self.pending[cut:]
            else:
                data, self.pending = self.pending, b""
                data += self.raw.readline(limit - len(data))
        else:
            data = self.raw.readline(limit)
        self.offset += len(data)
        return data


def _skip(stream: _Stream, size: int) -> int:
    """Skip ``size`` bytes without holding them; returns how many there were."""
    skipped = 0
    while skipped < size:
        chunk = stream.read(min(SKIP_CHUNK, size - skipped))
        if not chunk:
            break
        skipped += len(chunk)
    return skipped


@dataclass
class _Skipped:
    offset: int = -1
    size: int = 0
    preview: bytes = b""


def _resync(stream: _Stream, skipped: _Skipped) -> bytes | None:
    """Skip lines until one starts a record (returned); None at the end. Non-blank bytes skipped on the
    way are counted in ``skipped``."""
    while True:
        line = stream.readline(MAX_HEADER_LINE)
        if not line:
            return None
        if line.startswith(VERSION_PREFIX):
            return line
        if line.strip():
            if skipped.offset < 0:
                skipped.offset = stream.offset - len(line)
                skipped.preview = line[:200]
            skipped.size += len(line)


def _headers(stream: _Stream) -> tuple[dict[str, str], str | None]:
    """Header fields up to the blank line (names lower-cased); an error text when they are not sane."""
    headers: dict[str, str] = {}
    size = 0
    while True:
        line = stream.readline(MAX_HEADER_LINE)
        size += len(line)
        if not line:
            return headers, "the file ends inside a record's headers"
        if size > MAX_HEADER_BYTES or (len(line) == MAX_HEADER_LINE and not line.endswith(b"\n")):
            return headers, f"headers longer than {MAX_HEADER_BYTES} bytes"
        stripped = line.strip()
        if not stripped:
            return headers, None
        if stripped.startswith(VERSION_PREFIX):
            stream.push_back(line)
            return headers, "a new record starts before the headers end"
        name, sep, value = stripped.partition(b":")
        if not sep:
            return headers, f"header line without a colon: {stripped[:80]!r}"
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()


def iter_records(raw: IO[bytes], max_block_bytes: int) -> Iterator[WarcRecord | FramingError]:
    """Every record (or framing error) of a decompressed WARC stream, in order."""
    for item in _records(_Stream(raw), max_block_bytes):
        if isinstance(item, _Skipped):
            if item.size:
                yield FramingError(item.offset, "bad_warc_framing",
                                   f"{item.size} bytes between records that do not start a record",
                                   preview=item.preview)
        else:
            yield item


def _records(stream: _Stream, max_block_bytes: int) -> Iterator[WarcRecord | FramingError | _Skipped]:
    """The records, each run of skipped bytes reported as a :class:`_Skipped` as soon as it ends."""
    skipped = _Skipped()
    line = _resync(stream, skipped)
    while line is not None:
        yield skipped
        skipped = _Skipped()
        offset = stream.offset - len(line)
        headers, problem = _headers(stream)
        if problem is not None:
            yield FramingError(offset, "bad_warc_header", problem, headers)
            line = _resync(stream, _Skipped())  # what follows until the next record is this record's
            continue
        raw_length = headers.get("content-length", "")
        if not raw_length.isdigit():
            yield FramingError(offset, "bad_warc_header", f"Content-Length is {raw_length or 'missing'!r}",
                               headers)
            line = _resync(stream, _Skipped())
            continue
        length = int(raw_length)
        if length > max_block_bytes:
            got = _skip(stream, length)
            yield FramingError(offset, "record_too_large",
                               f"Content-Length {length} > {max_block_bytes} bytes", headers)
            if got < length:
                return
            line = _resync(stream, _Skipped())
            continue
        block = stream.read(length)
        if len(block) < length:
            yield FramingError(offset, "bad_warc_framing", f"the file ends after {len(block)} of the "
                               f"{length} bytes the Content-Length announces", headers, block[:200])
            return
        trailer = stream.read(4)
        if trailer == b"\r\n\r\n" or (len(trailer) < 4 and not trailer.strip()):
            yield WarcRecord(offset, headers, block)
            line = _resync(stream, skipped)
            continue
        swallowed = _NEXT_RECORD.search(block)
        if swallowed is not None:  # the length overruns the next record: start again where it begins
            stream.push_back(block[swallowed.end():] + trailer)
            yield FramingError(offset, "bad_warc_framing", f"Content-Length {length} runs into the next "
                               f"record (which starts {swallowed.end()} bytes into the block)", headers,
                               block[:200])
        else:  # too short (or garbage after the block): the next record starts further on
            stream.push_back(trailer)
            yield FramingError(offset, "bad_warc_framing", f"no record end after the {length} bytes the "
                               "Content-Length announces", headers, block[:200])
        line = _resync(stream, _Skipped())
    yield skipped


@dataclass(frozen=True)
class HttpParts:
    content_type: str  # media type, lower-cased, without parameters ("" when absent)
    charset: str | None
    body: bytes


_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9._:-]+)", re.IGNORECASE)


def http_parts(block: bytes, max_header_bytes: int = MAX_HEADER_BYTES) -> HttpParts | None:
    """Content type, charset and body of an HTTP response block; None when it is not one."""
    if not block.startswith(b"HTTP/"):
        return None
    end = block.find(b"\r\n\r\n", 0, max_header_bytes)
    separator = 4
    if end < 0:
        end = block.find(b"\n\n", 0, max_header_bytes)
        separator = 2
    if end < 0:
        return None
    content_type = ""
    for line in block[:end].split(b"\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"content-type":
            content_type = value.decode("latin-1").strip()
    match = _CHARSET.search(content_type)
    media = content_type.split(";")[0].strip().lower()
    return HttpParts(media, match.group(1) if match else None, block[end + separator:])
