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
    "invalid_utf8": "bytes are not valid UTF-8 (or the text has unpaired surrogate escapes)",
    "invalid_json": "the line is not valid JSON",
    "not_an_object": "the JSON value is not an object",
    "unsupported_content": "a WARC payload that is not HTML or plain text",
    "missing_text": "the text field is absent or null",
    "non_string_text": "the text field is not a string",
    "empty_text": "the text is empty or only whitespace",
    "text_too_large": "the text's UTF-8 size exceeds ingest.max_text_bytes",
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
    batch_rows: int = 2048
    raw_preview_chars: int = 500
    html_main_content: bool = True


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
        except ValueError:
            return None, "invalid_json", str(fast_error)


def read_jsonl(source_file: InputFile, settings: ReaderSettings,
               opener: Opener = open_local) -> Iterator[pa.RecordBatch]:
    batch = _Batch(settings, source_file)
    line_number = 0
    try:
        with opener(source_file.path) as raw:
            stream = _decompressed(raw, source_file.path)
            for line_number, line in enumerate(stream, start=1):
                stripped = line.rstrip(b"\r\n")
                if not stripped.strip():
                    continue  # blank lines are separators, not records
                value, reason, detail = _parse_json_line(stripped)
                if reason:
                    batch.quarantine(line_number, reason, detail or reason, stripped)
                elif not isinstance(value, dict):
                    batch.quarantine(line_number, "not_an_object", f"JSON {type(value).__name__}", stripped)
                else:
                    batch.check_text(
                        line_number,
                        _lookup(value, settings.text_field),
                        stripped,
                        url=_lookup(value, settings.url_field),
                        source_id=_lookup(value, settings.id_field),
                        crawl_time=_lookup(value, settings.crawl_time_field),
                    )
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
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    wanted = WarcRecordType.response | WarcRecordType.conversion | WarcRecordType.resource
    batch = _Batch(settings, source_file)
    position = 0
    try:
        with opener(source_file.path) as raw:
            for record in ArchiveIterator(raw, record_types=wanted, parse_http=True):
                position = int(record.stream_pos)
                url = record.headers.get("WARC-Target-URI")
                record_id = record.record_id
                crawl_time = record.headers.get("WARC-Date")
                payload = record.reader.read()
                text, reason, detail = _warc_text(record, payload, settings)
                if reason:
                    batch.quarantine(position, reason, detail or reason, payload, url, record_id)
                else:
                    batch.check_text(position, text, payload, url, record_id, crawl_time)
                if len(batch) >= settings.batch_rows:
                    yield batch.to_arrow()
                    batch = _Batch(settings, source_file)
    except (OSError, EOFError, ValueError) as exc:
        batch.quarantine(position + 1, "unreadable_file", f"{type(exc).__name__}: {exc}", None)
    if len(batch):
        yield batch.to_arrow()


def _warc_text(record: Any, payload: bytes,
               settings: ReaderSettings) -> tuple[str | None, str | None, str | None]:
    """Plain text for WET conversions, extracted main text for HTML responses."""
    from fastwarc.warc import WarcRecordType

    if record.record_type == WarcRecordType.conversion:
        try:
            return payload.decode("utf-8"), None, None
        except UnicodeDecodeError as exc:
            return None, "invalid_utf8", f"byte {exc.start}: {exc.reason}"
    content_type = (record.http_content_type if record.is_http
                    else record.headers.get("Content-Type", "")) or ""
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

    charset = (record.http_charset if record.is_http else None) or detect_encoding(payload)
    html = bytes_to_str(payload, charset)
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

