"""Builders for small input files of every format, each with a known mix of good and malformed records."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

# kind -> raw JSONL line; "document" lines are kept, the others are quarantined with that reason.
JSONL_LINES: list[tuple[str, bytes]] = [
    ("document", json.dumps({"id": "a", "url": "https://Example.COM/x", "text": "Hello world, fine page.",
                             "date": "2024-03-01T10:00:00Z"}).encode()),
    ("document", json.dumps({"id": "b", "text": "Cafe\u0301 con leche", "date": 1709287200}).encode()),
    ("invalid_json", b'{"id": "c", "text": "unterminated'),
    ("invalid_utf8", b'{"id": "d", "text": "bad \xff byte"}'),
    ("invalid_utf8", b'{"id": "e", "text": "lone \\ud800 surrogate"}'),
    ("not_an_object", b'["a", "list"]'),
    ("missing_text", json.dumps({"id": "f", "body": "wrong field"}).encode()),
    ("missing_text", json.dumps({"id": "g", "text": None}).encode()),
    ("non_string_text", json.dumps({"id": "h", "text": 12}).encode()),
    ("non_string_text", json.dumps({"id": "i", "text": ["x"]}).encode()),
    ("empty_text", json.dumps({"id": "j", "text": ""}).encode()),
    ("empty_text", json.dumps({"id": "k", "text": " \n\t "}).encode()),
    ("text_too_large", json.dumps({"id": "l", "text": "x" * 5000}).encode()),
    ("document", json.dumps({"id": "m", "text": "Last good line here."}).encode()),
]
MAX_TEXT_BYTES = 4000


def expected_counts(kinds: list[str]) -> dict[str | None, int]:
    counts: dict[str | None, int] = {}
    for kind in kinds:
        key = None if kind == "document" else kind
        counts[key] = counts.get(key, 0) + 1
    return counts


def jsonl_payload() -> bytes:
    lines = [line for _, line in JSONL_LINES]
    lines.insert(3, b"")  # a blank line is a separator, not a record
    return b"\n".join(lines) + b"\n"


def write_jsonl(path: Path) -> Path:
    payload = jsonl_payload()
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(payload))
    elif path.name.endswith(".zst"):
        path.write_bytes(zstandard.ZstdCompressor().compress(payload))
    else:
        path.write_bytes(payload)
    return path


PARQUET_KINDS = ["document", "document", "missing_text", "empty_text", "text_too_large", "invalid_utf8"]


def write_parquet(path: Path) -> Path:
    texts = [b"A parquet document.", "Zweites Dokument über Ä".encode(), None, b"   ", b"y" * 5000,
             b"\xc3\x28"]
    table = pa.table({
        "id": [f"p{i}" for i in range(len(texts))],
        "url": ["https://parquet.example.org/p"] * len(texts),
        "text": pa.array(texts, type=pa.binary()),
        "date": pa.array(["2024-01-02"] * len(texts)),
    })
    pq.write_table(table, path)
    return path


def write_parquet_wrong_type(path: Path) -> Path:
    pq.write_table(pa.table({"id": ["n1", "n2"], "text": [1, 2]}), path)
    return path


WARC_KINDS = ["document", "document", "unsupported_content", "invalid_utf8", "empty_text"]


def write_warc(path: Path) -> Path:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    writer.write_record(writer.create_warcinfo_record("info.warc.gz", {"software": "test"}))

    def response(url: str, body: bytes, content_type: str) -> None:
        headers = StatusAndHeaders("200 OK", [("Content-Type", content_type)], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body),
                                                      http_headers=headers))

    def conversion(url: str, body: bytes) -> None:
        writer.write_record(writer.create_warc_record(url, "conversion", payload=io.BytesIO(body),
                                                      warc_content_type="text/plain"))

    html = (b"<html><body><nav>Home | About</nav><article><p>The main article of this page talks about "
            b"rivers and mountains in considerable detail, with several sentences.</p></article>"
            b"</body></html>")
    response("https://warc.example.com/article", html, "text/html; charset=utf-8")
    writer.write_record(writer.create_warc_record("https://warc.example.com/article", "request",
                                                  payload=io.BytesIO(b"GET / HTTP/1.1\r\n\r\n")))
    conversion("https://warc.example.com/wet", "Plain WET text extracted earlier. Ünïcode.".encode())
    response("https://warc.example.com/logo.png", b"\x89PNG\r\n\x1a\n....", "image/png")
    conversion("https://warc.example.com/broken", b"not \xff utf8")
    conversion("https://warc.example.com/blank", b"   ")
    path.write_bytes(buffer.getvalue())
    return path
