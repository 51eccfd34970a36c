"""Readers (no Spark): every record is a document or a quarantine row with a reason."""

from __future__ import annotations

import gzip
import unicodedata
from pathlib import Path

import pyarrow as pa
import pytest

from tests import inputs
from udfs.readers import InputFile, ReaderSettings, count_reasons, detect_format, parse_timestamps, read_file

SETTINGS = ReaderSettings(source="test", crawl_time_field="date", max_text_bytes=inputs.MAX_TEXT_BYTES,
                          batch_rows=4)


def _read(path: Path, settings: ReaderSettings = SETTINGS) -> pa.Table:
    source = InputFile(str(path), path.name, detect_format(str(path)))
    return pa.Table.from_batches(list(read_file(source, settings)))


@pytest.mark.parametrize("name", ["in.jsonl", "in.jsonl.gz", "in.jsonl.zst"])
def test_jsonl_every_malformed_kind_is_quarantined(tmp_path, name):
    table = _read(inputs.write_jsonl(tmp_path / name))
    kinds = [kind for kind, _ in inputs.JSONL_LINES]
    assert count_reasons(table.to_batches()) == inputs.expected_counts(kinds)
    assert table.num_rows == len(inputs.JSONL_LINES)  # the blank line is not a record


def test_jsonl_positions_and_previews_point_at_the_bad_line(tmp_path):
    table = _read(inputs.write_jsonl(tmp_path / "in.jsonl")).to_pylist()
    bad_json = next(r for r in table if r["reason"] == "invalid_json")
    assert bad_json["input_position"] == 3 and bad_json["raw_preview"].startswith('{"id": "c"')
    bad_bytes = next(r for r in table if r["reason"] == "invalid_utf8" and "\\xff" in r["raw_preview"])
    assert bad_bytes["input_position"] == 5  # line 4 is blank and still counted as a line
    assert "byte" in bad_bytes["detail"]
    assert all(r["input_file"].endswith("in.jsonl") for r in table)


def test_documents_are_normalised_and_measured(tmp_path):
    docs = [r for r in _read(inputs.write_jsonl(tmp_path / "in.jsonl")).to_pylist() if r["reason"] is None]
    first, second = docs[0], docs[1]
    assert first["domain"] == "example.com" and first["url"] == "https://Example.COM/x"
    assert first["n_words"] == 4 and first["n_chars"] == len("Hello world, fine page.")
    assert first["crawl_time"].isoformat() == "2024-03-01T10:00:00+00:00"
    assert second["text"] == unicodedata.normalize("NFC", "Cafe\u0301 con leche") == "Café con leche"
    assert second["n_chars"] == 14
    assert second["crawl_time"].isoformat() == "2024-03-01T10:00:00+00:00"  # epoch seconds
    assert first["source_id"] == "a" and len(first["doc_id"]) == 32
    assert len({d["doc_id"] for d in docs}) == len(docs)
    assert len(first["content_hash"]) == 32


def test_doc_ids_are_deterministic_and_depend_on_the_relative_path(tmp_path):
    path = inputs.write_jsonl(tmp_path / "in.jsonl")
    one = _read(path).column("doc_id").to_pylist()
    two = _read(path).column("doc_id").to_pylist()
    moved_file = InputFile(str(path), "other/in.jsonl", "jsonl")
    moved = pa.Table.from_batches(list(read_file(moved_file, SETTINGS)))
    assert one == two
    assert set(one).isdisjoint(moved.column("doc_id").to_pylist())


def test_truncated_gzip_keeps_the_good_prefix_and_quarantines_the_rest(tmp_path):
    payload = gzip.compress(inputs.jsonl_payload() * 200)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(payload[: len(payload) // 2])
    table = _read(path)
    reasons = count_reasons(table.to_batches())
    assert reasons["unreadable_file"] == 1
    assert reasons[None] > 10
    unreadable = next(r for r in table.to_pylist() if r["reason"] == "unreadable_file")
    assert unreadable["input_position"] == max(table.column("input_position").to_pylist())


def test_dotted_field_paths_reach_nested_values(tmp_path):
    path = tmp_path / "nested.jsonl"
    path.write_text('{"doc": {"body": "Nested text works."}, "metadata": {"url": "http://a.org/x"}}\n')
    settings = ReaderSettings(source="s", text_field="doc.body", url_field="metadata.url")
    row = _read(path, settings).to_pylist()[0]
    assert row["reason"] is None and row["text"] == "Nested text works." and row["domain"] == "a.org"


def test_parquet_rows_and_malformed_kinds(tmp_path):
    table = _read(inputs.write_parquet(tmp_path / "in.parquet"))
    assert count_reasons(table.to_batches()) == inputs.expected_counts(inputs.PARQUET_KINDS)
    assert table.column("input_position").to_pylist() == list(range(len(inputs.PARQUET_KINDS)))
    docs = [r for r in table.to_pylist() if r["reason"] is None]
    assert docs[1]["text"] == "Zweites Dokument über Ä" and docs[0]["domain"] == "parquet.example.org"
    assert docs[0]["crawl_time"].isoformat() == "2024-01-02T00:00:00+00:00"


def test_parquet_with_non_string_text_column(tmp_path):
    table = _read(inputs.write_parquet_wrong_type(tmp_path / "numbers.parquet"))
    assert count_reasons(table.to_batches()) == {"non_string_text": 2}


def test_parquet_without_the_text_column(tmp_path):
    settings = ReaderSettings(source="s", text_field="body")
    table = _read(inputs.write_parquet(tmp_path / "in.parquet"), settings)
    assert count_reasons(table.to_batches()) == {"missing_text": len(inputs.PARQUET_KINDS)}


def test_warc_records(tmp_path):
    table = _read(inputs.write_warc(tmp_path / "crawl.warc.gz"))
    assert count_reasons(table.to_batches()) == inputs.expected_counts(inputs.WARC_KINDS)
    docs = [r for r in table.to_pylist() if r["reason"] is None]
    html_doc = next(d for d in docs if d["url"].endswith("/article"))
    assert "rivers and mountains" in html_doc["text"] and "Home | About" not in html_doc["text"]
    assert html_doc["source_id"].startswith("<urn:uuid:") and html_doc["crawl_time"] is not None
    wet_doc = next(d for d in docs if d["url"].endswith("/wet"))
    assert wet_doc["text"] == "Plain WET text extracted earlier. Ünïcode."
    positions = table.column("input_position").to_pylist()
    assert positions == sorted(positions) and len(set(positions)) == len(positions)


def test_parse_timestamps_handles_mixed_inputs():
    parsed = parse_timestamps(["2024-05-01T00:00:00Z", 1714521600, 1714521600000, "not a date", None, ""])
    values = [None if v is None else v.isoformat() for v in parsed.to_pylist()]
    assert values == ["2024-05-01T00:00:00+00:00"] * 3 + [None, None, None]


def test_unknown_extension_is_an_error():
    with pytest.raises(ValueError, match=r"set input\.format"):
        detect_format("data/file.txt")
