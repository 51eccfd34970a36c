"""Input readers for the ingest stage: JSONL (plain/.gz/.zst), Parquet and WARC/WET.

Each reader turns one input file into Arrow record batches of :data:`RECORD_SCHEMA`. Every record of the
file becomes exactly one row: a document (``reason`` null) or a quarantined record (``reason`` set, with
``detail`` and a ``raw_preview``). Nothing is skipped silently, so ``records in == bronze + quarantine``.

What counts as a record: a non-blank line (JSONL), a row (Parquet), a ``response``/``conversion``/
``resource`` record (WARC; ``warcinfo``/``request``/``metadata`` records describe the crawl, not documents).
``input_position`` is the 1-based line number (JSONL), the 0-based row number (Parquet) or the byte offset
of the record in the (compressed) file (WARC).
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from udfs import warc
from udfs.text import char_counts, content_hashes, nfc, stable_ids, url_hosts, word_counts

RECORD_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("source_id", pa.string()),
        ("url", pa.string()),
        ("domain", pa.string()),
        ("text", pa.string()),
        ("n_chars", pa.int32()),
        ("n_words", pa.int32()),
        ("crawl_time", pa.timestamp("us", tz="UTC")),
        ("content_hash", pa.string()),
        ("input_file", pa.string()),
        ("input_position", pa.int64()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw_preview", pa.string()),
    ]
)

# Quarantine reasons, in the order they are checked for a record.
REASONS = {
    "unreadable_file": "the file (or its rest) could not be opened or decompressed",
    "line_too_large": "a JSONL line longer than ingest.max_record_bytes (read no further than that)",
    "bad_warc_header": "WARC headers that cannot be parsed (e.g. a Content-Length that is not a number)",
    "bad_warc_framing": "a WARC record whose Content-Length does not end where the next record begins",
    "record_too_large": "a WARC record block longer than ingest.max_record_bytes (skipped unread)",
    "invalid_utf8": "bytes are not valid UTF-8 (or the text has unpaired surrogate escapes)",
    "invalid_json": "the line is not valid JSON",
    "not_an_object": "the JSON value is not an object",
    "unsupported_content": "a WARC payload that is not HTML or plain text",
    "missing_text": "the text field is absent or null",
    "non_string_text": "the text field is not a string",
    "empty_text": "the text is empty or only whitespace",
    "text_too_large": "the text's UTF-8 size exceeds ingest.max_text_bytes",
    "unreadable_record": "reading the record raised an unexpected error (the detail names it)",
}

FORMATS = ("jsonl", "parquet", "warc")

Opener = Callable[[str], IO[bytes]]


def open_local(path: str) -> IO[bytes]:
    return open(path, "rb")


def detect_format(path: str) -> str:
    name = path.lower()
    for suffix in (".gz", ".zst", ".zstd"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".warc", ".wet", ".arc")):
        return "warc"
    raise ValueError(f"cannot tell the format of {path} from its name; set input.format")


@dataclass(frozen=True)
class ReaderSettings:
    source: str
    text_field: str = "text"
    url_field: str | None = "url"
    id_field: str | None = "id"
    crawl_time_field: str | None = None
    max_text_bytes: int = 1_000_000
    max_record_bytes: int | None = None  # a JSONL line or WARC block; None: see record_limit()
    batch_rows: int = 2048
    raw_preview_chars: int = 500
    html_main_content: bool = True


def record_limit(settings: ReaderSettings) -> int:
    """The most bytes one record may take before it is quarantined unread: by default six times the
    largest text (JSON escapes every control byte as ``\\u00XX``) plus 64 KiB for the other fields."""
    if settings.max_record_bytes is not None:
        return settings.max_record_bytes
    return 6 * settings.max_text_bytes + 64 * 1024


@dataclass(frozen=True)
class InputFile:
    path: str
    relative_path: str  # doc ids hash this, so moving the corpus root keeps them stable
    format: str
    size: int = 0
    etag: str = ""  # with path and size, identifies this version of the file for incremental ingest


class _Batch:
    """Column buffers for one output batch; finished into Arrow with vectorised normalisation."""

    def __init__(self, settings: ReaderSettings, source_file: InputFile) -> None:
        self.settings = settings
        self.file = source_file
        self.positions: list[int] = []
        self.texts: list[str | None] = []
        self.urls: list[str | None] = []
        self.source_ids: list[str | None] = []
        self.crawl_times: list[Any] = []
        self.reasons: list[str | None] = []
        self.details: list[str | None] = []
        self.previews: list[str | None] = []

    def __len__(self) -> int:
        return len(self.positions)

    def _preview(self, raw: bytes | str | None) -> str | None:
        if raw is None:
            return None
        limit = self.settings.raw_preview_chars
        if isinstance(raw, bytes):
            raw = raw[: limit * 4].decode("utf-8", errors="backslashreplace")
        return raw[:limit]

    def document(self, position: int, text: str, url: Any, source_id: Any, crawl_time: Any) -> None:
        self.positions.append(position)
        self.texts.append(text)
        self.urls.append(url if isinstance(url, str) and url else None)
        self.source_ids.append(None if source_id is None or source_id == "" else str(source_id))
        self.crawl_times.append(crawl_time)
        self.reasons.append(None)
        self.details.append(None)
        self.previews.append(None)

    def quarantine(self, position: int, reason: str, detail: str, raw: bytes | str | None,
                   url: Any = None, source_id: Any = None) -> None:
        assert reason in REASONS, reason
        self.positions.append(position)
        self.texts.append(None)
        self.urls.append(url if isinstance(url, str) and url else None)
        self.source_ids.append(None if source_id is None or source_id == "" else str(source_id))
        self.crawl_times.append(None)
        self.reasons.append(reason)
        self.details.append(detail[:1000])
        self.previews.append(self._preview(raw))

    def check_text(self, position: int, text: Any, raw: bytes | str | None, url: Any = None,
                   source_id: Any = None, crawl_time: Any = None) -> None:
        """Route a candidate text to the documents or to quarantine with the first failing reason."""
        if text is None:
            self.quarantine(position, "missing_text", f"field '{self.settings.text_field}' is absent or null",
                            raw, url, source_id)
        elif not isinstance(text, str):
            detail = f"field '{self.settings.text_field}' is {type(text).__name__}"
            self.quarantine(position, "non_string_text", detail, raw, url, source_id)
        elif not text.strip():
            self.quarantine(position, "empty_text", "text is empty or whitespace", raw, url, source_id)
        else:
            try:
                size = len(text.encode("utf-8"))
            except UnicodeEncodeError as exc:
                self.quarantine(position, "invalid_utf8", f"unpaired surrogate in text: {exc.reason}",
                                raw, url, source_id)
                return
            if size > self.settings.max_text_bytes:
                self.quarantine(position, "text_too_large",
                                f"{size} bytes > max_text_bytes {self.settings.max_text_bytes}",
                                raw[:200] if raw is not None else None, url, source_id)
            else:
                self.document(position, text, url, source_id, crawl_time)

    def to_arrow(self) -> pa.RecordBatch:
        size = len(self)
        texts = nfc(pa.array(self.texts, type=pa.string()))
        urls = pa.array(self.urls, type=pa.string())
        source = self.settings.source
        ids = stable_ids([[source] * size, [self.file.relative_path] * size, self.positions])
        columns = {
            "doc_id": pa.array(ids, type=pa.string()),
            "source": pa.array([source] * size, type=pa.string()),
            "source_id": pa.array(self.source_ids, type=pa.string()),
            "url": urls,
            "domain": url_hosts(urls),
            "text": texts,
            "n_chars": char_counts(texts),
            "n_words": word_counts(texts),
            "crawl_time": parse_timestamps(self.crawl_times),
            "content_hash": content_hashes(texts),
            "input_file": pa.array([self.file.path] * size, type=pa.string()),
            "input_position": pa.array(self.positions, type=pa.int64()),
            "reason": pa.array(self.reasons, type=pa.string()),
            "detail": pa.array(self.details, type=pa.string()),
            "raw_preview": pa.array(self.previews, type=pa.string()),
        }
        return pa.RecordBatch.from_pydict(columns, schema=RECORD_SCHEMA)


def parse_timestamps(values: list[Any]) -> pa.Array:
    """ISO-8601 strings, epoch seconds/milliseconds or datetimes -> UTC timestamps (null if unparseable)."""
    series = pd.Series(values, dtype=object)
    result = pd.Series(pd.NaT, index=series.index, dtype="datetime64[us, UTC]")
    is_number = series.map(lambda v: isinstance(v, int | float) and not isinstance(v, bool))
    if is_number.any():
        seconds = series[is_number].astype("float64")
        seconds = seconds.where(seconds.abs() < 1e11, seconds / 1000.0)  # epoch milliseconds
        result[is_number] = pd.to_datetime(seconds, unit="s", utc=True, errors="coerce")
    is_text = series.map(lambda v: isinstance(v, str) and bool(v))
    if is_text.any():
        result[is_text] = pd.to_datetime(series[is_text], utc=True, errors="coerce", format="ISO8601")
    is_datetime = series.map(lambda v: isinstance(v, pd.Timestamp | np.datetime64) or hasattr(v, "isoformat"))
    is_datetime &= ~is_text & ~is_number
    if is_datetime.any():
        result[is_datetime] = pd.to_datetime(series[is_datetime], utc=True, errors="coerce")
    return pa.array(result, type=pa.timestamp("us", tz="UTC"), from_pandas=True)


def _lookup(record: Mapping[str, Any], dotted: str | None) -> Any:
    """Field by name, or by a dotted path into nested objects (``metadata.url``)."""
    if dotted is None:
        return None
    if dotted in record:
        return record[dotted]
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


# ----------------------------------------------------------------------------------------------- JSONL


def _decompressed(raw: IO[bytes], path: str) -> IO[bytes]:
    name = path.lower()
    if name.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw)
    if name.endswith((".zst", ".zstd")):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True))
    return raw


def _parse_json_line(line: bytes) -> tuple[Any, str | None, str | None]:
    """(value, reason, detail): strict UTF-8 JSON first, then the stdlib for surrogate escapes."""
    try:
        return orjson.loads(line), None, None
    except orjson.JSONDecodeError as fast_error:
        try:
            decoded = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, "invalid_utf8", f"byte {exc.start}: {exc.reason}"
        try:
            return json.loads(decoded), None, None  # accepts lone surrogates; check_text rejects them
        except RecursionError:
            return None, "invalid_json", f"nested too deeply ({fast_error})"
        except ValueError:
            return None, "invalid_json", str(fast_error)


UTF8_BOM = b"\xef\xbb\xbf"


def bounded_lines(stream: IO[bytes], limit: int) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, line without its end, whether it was whole) for each line of ``stream``.

    No line is held beyond ``limit`` bytes: a longer one gives its first ``limit`` bytes with ``False``,
    and the rest of it is skipped in chunks. A UTF-8 byte-order mark at the very start is dropped."""
    number = 0
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        number += 1
        if number == 1 and line.startswith(UTF8_BOM):
            line = line[len(UTF8_BOM):]
        if len(line) > limit and not line.endswith(b"\n"):
            while True:
                rest = stream.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
            yield number, line[:limit], False
        else:
            yield number, line.rstrip(b"\r\n"), True


def _jsonl_record(batch: _Batch, number: int, line: bytes, settings: ReaderSettings) -> None:
    value, reason, detail = _parse_json_line(line)
    if reason:
        batch.quarantine(number, reason, detail or reason, line)
    elif not isinstance(value, dict):
        batch.quarantine(number, "not_an_object", f"JSON {type(value).__name__}", line)
    else:
        batch.check_text(number, _lookup(value, settings.text_field), line,
                         url=_lookup(value, settings.url_field), source_id=_lookup(value, settings.id_field),
                         crawl_time=_lookup(value, settings.crawl_time_field))


def read_jsonl(source_file: InputFile, settings: ReaderSettings,
               opener: Opener = open_local) -> Iterator[pa.RecordBatch]:
    batch = _Batch(settings, source_file)
    limit = record_limit(settings)
    line_number = 0
    try:
        with opener(source_file.path) as raw:
            for line_number, line, whole in bounded_lines(_decompressed(raw, source_file.path), limit):
                if not whole:
                    batch.quarantine(line_number, "line_too_large", f"longer than {limit} bytes", line[:200])
                elif line.strip():  # blank lines are separators, not records
                    try:
                        _jsonl_record(batch, line_number, line, settings)
                    except Exception as exc:  # whatever a hostile record raises costs that record only
                        batch.quarantine(line_number, "unreadable_record", f"{type(exc).__name__}: {exc}",
                                         line[:200])
                if len(batch) >= settings.batch_rows:
                    yield batch.to_arrow()
                    batch = _Batch(settings, source_file)
    except (OSError, EOFError, ValueError) as exc:  # truncated/corrupt compression, unreadable object
        batch.quarantine(line_number + 1, "unreadable_file", f"{type(exc).__name__}: {exc}", None)
    if len(batch):
        yield batch.to_arrow()


# --------------------------------------------------------------------------------------------- Parquet


def _seekable_copy(stream: IO[bytes]) -> IO[bytes]:
    """Parquet needs random access: a stream that cannot seek (an S3 body) is spooled to a temp file."""
    if stream.seekable():
        return stream
    spooled = tempfile.TemporaryFile(prefix="curate-in-")  # noqa: SIM115 (the caller closes it)
    with stream:
        shutil.copyfileobj(stream, spooled, 1 << 20)
    spooled.seek(0)
    return spooled


def read_parquet(source_file: InputFile, settings: ReaderSettings,
                 opener: Opener = open_local) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    row = 0
    batch = _Batch(settings, source_file)
    handle: IO[bytes] | None = None
    try:
        handle = _seekable_copy(opener(source_file.path))
        parquet = pq.ParquetFile(handle)
        names = set(parquet.schema_arrow.names)
        wanted = [name for name in (settings.text_field, settings.url_field, settings.id_field,
                                    settings.crawl_time_field) if name and name in names]
        for record_batch in parquet.iter_batches(batch_size=settings.batch_rows, columns=wanted):
            columns = {name: record_batch.column(name) for name in wanted}
            text_column = columns.get(settings.text_field)
            texts = _parquet_texts(text_column, record_batch.num_rows)
            urls = _column_values(columns.get(settings.url_field or ""), record_batch.num_rows)
            ids = _column_values(columns.get(settings.id_field or ""), record_batch.num_rows)
            times = _column_values(columns.get(settings.crawl_time_field or ""), record_batch.num_rows)
            for index, text in enumerate(texts):
                if isinstance(text, _InvalidBytes):
                    batch.quarantine(row, "invalid_utf8", text.detail, text.raw, urls[index], ids[index])
                elif text is None and text_column is None:
                    batch.quarantine(row, "missing_text", f"no column '{settings.text_field}' in file", None,
                                     urls[index], ids[index])
                else:
                    raw = text if isinstance(text, str) or text is None else repr(text)
                    batch.check_text(row, text, raw, urls[index], ids[index], times[index])
                row += 1
            if len(batch) >= settings.batch_rows:
                yield batch.to_arrow()
                batch = _Batch(settings, source_file)
    except (OSError, ValueError, pa.ArrowException) as exc:
        batch.quarantine(row, "unreadable_file", f"{type(exc).__name__}: {exc}", None)
    finally:
        if handle is not None:
            handle.close()
    if len(batch):
        yield batch.to_arrow()


@dataclass(frozen=True)
class _InvalidBytes:
    raw: bytes
    detail: str


def _column_values(column: pa.Array | None, rows: int) -> list[Any]:
    return [None] * rows if column is None else column.to_pylist()


def _parquet_texts(column: pa.Array | None, rows: int) -> list[Any]:
    if column is None:
        return [None] * rows
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.to_pylist()
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        values: list[Any] = []
        for raw in column.to_pylist():
            if raw is None:
                values.append(None)
                continue
            try:
                values.append(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                values.append(_InvalidBytes(raw, f"byte {exc.start}: {exc.reason}"))
        return values
    return column.to_pylist()  # numbers, lists, structs: check_text reports non_string_text


# ------------------------------------------------------------------------------------------------ WARC


def read_warc(source_file: InputFile, settings: ReaderSettings,
              opener: Opener = open_local) -> Iterator[pa.RecordBatch]:
    """Documents from response/conversion/resource records; every framing problem is one quarantined
    record and reading resumes at the next record (see :mod:`udfs.warc`). ``input_position`` is the
    record's byte offset in the decompressed stream."""
    batch = _Batch(settings, source_file)
    position = 0
    try:
        with opener(source_file.path) as raw:
            for item in warc.iter_records(_decompressed(raw, source_file.path), record_limit(settings)):
                position = item.offset
                _warc_record(batch, item, settings)
                if len(batch) >= settings.batch_rows:
                    yield batch.to_arrow()
                    batch = _Batch(settings, source_file)
    except (OSError, EOFError, ValueError) as exc:
        batch.quarantine(position + 1, "unreadable_file", f"{type(exc).__name__}: {exc}", None)
    if len(batch):
        yield batch.to_arrow()


def _warc_record(batch: _Batch, item: warc.WarcRecord | warc.FramingError, settings: ReaderSettings) -> None:
    url = item.headers.get("warc-target-uri")
    record_id = item.headers.get("warc-record-id")
    if isinstance(item, warc.FramingError):
        batch.quarantine(item.offset, item.reason, item.detail, item.preview, url, record_id)
        return
    if item.record_type not in warc.DOCUMENT_TYPES:
        return
    try:
        text, reason, detail = _warc_text(item, settings)
    except Exception as exc:  # whatever a hostile payload raises costs that record only
        text, reason, detail = None, "unreadable_record", f"{type(exc).__name__}: {exc}"
    if reason:
        batch.quarantine(item.offset, reason, detail or reason, item.block[:2000], url, record_id)
    else:
        batch.check_text(item.offset, text, item.block[:2000], url, record_id, item.headers.get("warc-date"))


def _warc_text(record: warc.WarcRecord,
               settings: ReaderSettings) -> tuple[str | None, str | None, str | None]:
    """Plain text for WET conversions, extracted main text for HTML responses."""
    payload, content_type, charset = record.block, record.headers.get("content-type", ""), None
    if record.record_type == "conversion":
        try:
            return payload.decode("utf-8"), None, None
        except UnicodeDecodeError as exc:
            return None, "invalid_utf8", f"byte {exc.start}: {exc.reason}"
    http = warc.http_parts(payload) if record.record_type == "response" else None
    if http is not None:
        payload, content_type, charset = http.body, http.content_type, http.charset
    content_type = content_type.split(";")[0].strip().lower()
    if content_type in ("text/plain", ""):
        try:
            return payload.decode("utf-8"), None, None
        except UnicodeDecodeError:
            if content_type == "text/plain":
                return None, "invalid_utf8", "text/plain payload is not UTF-8"
    if content_type not in ("text/html", "application/xhtml+xml", ""):
        return None, "unsupported_content", f"content type {content_type}"
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    html = bytes_to_str(payload, charset or detect_encoding(payload))
    return extract_plain_text(html, main_content=settings.html_main_content), None, None


READERS = {"jsonl": read_jsonl, "parquet": read_parquet, "warc": read_warc}


def read_file(source_file: InputFile, settings: ReaderSettings,
              opener: Opener = open_local) -> Iterator[pa.RecordBatch]:
    """Every record of one file as rows of :data:`RECORD_SCHEMA`; ``opener`` turns its path into a binary
    stream (local files by default; the ingest job passes one that reaches s3://)."""
    yield from READERS[source_file.format](source_file, settings, opener)


def count_reasons(batches: list[pa.RecordBatch]) -> dict[str | None, int]:
    """Rows per reason (None = document); used by tests and the funnel."""
    table = pa.Table.from_batches(batches, schema=RECORD_SCHEMA)
    grouped = table.group_by("reason").aggregate([("doc_id", "count")]).to_pydict()
    return dict(zip(grouped["reason"], grouped["doc_id_count"], strict=True))

