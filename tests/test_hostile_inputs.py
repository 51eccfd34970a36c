"""Hostile records cost one record, never the file or the run: each is quarantined with a precise reason,
the rest of the file is read, and every record is accounted for (records in == documents + quarantine)."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from udfs import warc
from udfs.readers import InputFile, ReaderSettings, count_reasons, read_file

GOOD = [json.dumps({"id": str(i), "text": f"A perfectly ordinary page number {i}."}).encode()
        for i in range(3)]


def _read(path: Path, fmt: str, **settings) -> dict[str | None, int]:
    source = InputFile(str(path), path.name, fmt, path.stat().st_size)
    return count_reasons(list(read_file(source, ReaderSettings(source="t", **settings))))


def test_deeply_nested_json_is_quarantined_not_raised(tmp_path):
    path = tmp_path / "nested.jsonl"
    nested_field = b'{"text": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    path.write_bytes(b"\n".join([GOOD[0], b"[" * 10_000, GOOD[1], nested_field, GOOD[2]]) + b"\n")
    assert _read(path, "jsonl") == {None: 3, "invalid_json": 2}


def test_an_overlong_line_is_cut_off_and_the_next_lines_are_read(tmp_path):
    path = tmp_path / "long.jsonl"
    long_line = json.dumps({"text": "word " * 50_000}).encode()  # 250 kB
    path.write_bytes(b"\n".join([GOOD[0], long_line, GOOD[1], GOOD[2]]) + b"\n")
    counts = _read(path, "jsonl", max_text_bytes=4_000, max_record_bytes=10_000)
    assert counts == {None: 3, "line_too_large": 1}


def test_a_decompression_bomb_is_one_quarantined_line(tmp_path):
    """50 MB of zeros without a newline, 50 kB compressed, between good lines; the limit is 100 kB."""
    path = tmp_path / "bomb.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=9) as handle:
        handle.write(GOOD[0] + b"\n")
        for _ in range(50):
            handle.write(b"\0" * 1_000_000)
        handle.write(b"\n" + GOOD[1] + b"\n")
    assert path.stat().st_size < 200_000
    counts = _read(path, "jsonl", max_text_bytes=10_000, max_record_bytes=100_000)
    assert counts == {None: 2, "line_too_large": 1}


def test_a_utf8_byte_order_mark_does_not_cost_the_first_record(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(GOOD) + b"\n")
    assert _read(path, "jsonl") == {None: 3}


# ------------------------------------------------------------------------------------------------ WARC


def _record(kind: str, url: str, block: bytes, length: str | None = None) -> bytes:
    headers = [b"WARC/1.0", f"WARC-Type: {kind}".encode(), f"WARC-Target-URI: {url}".encode(),
               f"WARC-Record-ID: <urn:uuid:{abs(hash(url)):032x}>".encode(),
               b"WARC-Date: 2024-03-01T10:00:00Z", b"Content-Type: text/plain",
               f"Content-Length: {length if length is not None else len(block)}".encode()]
    return b"\r\n".join(headers) + b"\r\n\r\n" + block + b"\r\n\r\n"


def _page(index: int) -> bytes:
    return f"Plain page {index} with a few words of text in it.".encode()


def _warc_file(tmp_path: Path, records: list[bytes], name: str = "t.warc.gz") -> Path:
    path = tmp_path / name
    buffer = io.BytesIO()
    for record in records:  # one gzip member per record, as Common Crawl writes them
        buffer.write(gzip.compress(record) if name.endswith(".gz") else record)
    path.write_bytes(buffer.getvalue())
    return path


def test_an_overlong_content_length_does_not_swallow_the_next_record(tmp_path):
    records = [_record("conversion", "https://a.example/0", _page(0)),
               _record("conversion", "https://a.example/1", _page(1), length=str(len(_page(1)) + 300)),
               _record("conversion", "https://a.example/2", _page(2)),
               _record("conversion", "https://a.example/3", _page(3))]
    path = _warc_file(tmp_path, records)
    batches = list(read_file(InputFile(str(path), path.name, "warc"), ReaderSettings(source="t")))
    assert count_reasons(batches) == {None: 3, "bad_warc_framing": 1}
    texts = [text for batch in batches for text in batch.column("text").to_pylist() if text]
    assert texts == [_page(i).decode() for i in (0, 2, 3)]  # record 2 intact, headers not in any text


def test_a_non_numeric_content_length_costs_one_record(tmp_path):
    records = [_record("conversion", "https://a.example/0", _page(0)),
               _record("conversion", "https://a.example/1", _page(1), length="12abc"),
               _record("conversion", "https://a.example/2", _page(2)),
               _record("conversion", "https://a.example/3", _page(3))]
    assert _read(_warc_file(tmp_path, records), "warc") == {None: 3, "bad_warc_header": 1}


def test_a_short_content_length_and_garbage_between_records(tmp_path):
    records = [_record("conversion", "https://a.example/0", _page(0), length="5"),
               _record("conversion", "https://a.example/1", _page(1)),
               b"some garbage that is no record\r\n\r\n",
               _record("conversion", "https://a.example/2", _page(2))]
    assert _read(_warc_file(tmp_path, records, "plain.warc"), "warc") == {None: 2, "bad_warc_framing": 2}


def test_a_huge_record_is_skipped_unread(tmp_path):
    records = [_record("conversion", "https://a.example/0", b"x" * 300_000),
               _record("conversion", "https://a.example/1", _page(1))]
    counts = _read(_warc_file(tmp_path, records), "warc", max_text_bytes=1_000, max_record_bytes=50_000)
    assert counts == {None: 1, "record_too_large": 1}


def test_a_payload_that_raises_costs_that_record_only(tmp_path, monkeypatch):
    from udfs import readers

    real = readers._warc_text

    def exploding(record, settings):
        if b"page 1 " in record.block:
            raise MemoryError("hostile payload")
        return real(record, settings)

    monkeypatch.setattr(readers, "_warc_text", exploding)
    records = [_record("conversion", f"https://a.example/{i}", _page(i)) for i in range(3)]
    assert _read(_warc_file(tmp_path, records), "warc") == {None: 2, "unreadable_record": 1}


def test_non_document_records_are_not_records(tmp_path):
    records = [_record("warcinfo", "", b"software: test"),
               _record("request", "https://a.example/0", b"GET /"),
               _record("conversion", "https://a.example/0", _page(0))]
    assert _read(_warc_file(tmp_path, records), "warc") == {None: 1}


@pytest.mark.parametrize("block", [
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>hi</p>",
    b"HTTP/1.1 200 OK\nContent-Type: text/html\n\n<p>hi</p>"])
def test_http_parts(block):
    parts = warc.http_parts(block)
    assert parts is not None and parts.content_type == "text/html" and parts.body == b"<p>hi</p>"
