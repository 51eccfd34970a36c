"""The run's log, ``runs/<run_id>/run.log``: one line per attempt and stage outcome, and the full
traceback of every failure (the terminal gets one line). Kept across attempts of the same run; written
whole and atomically on every flush, with credentials redacted."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import traceback
from collections.abc import Iterator

from jobs.core import storage
from jobs.core.redaction import redact


class RunLog:
    def __init__(self, run_dir: str, storage_options: dict[str, str] | None = None) -> None:
        self.uri = storage.join(run_dir, "run.log")
        self.options = dict(storage_options or {})
        self.lines: list[str] = []
        try:
            if storage.exists(self.uri, self.options):
                text = storage.read_bytes(self.uri, self.options).decode("utf-8", "replace")
                self.lines = text.splitlines()
        except Exception:  # an unreadable old log does not stop a run; it is replaced
            self.lines = []

    def write(self, message: str) -> None:
        stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self.lines.extend(f"{stamp} {line}" if index == 0 else f"    {line}"
                          for index, line in enumerate(redact(message).splitlines() or [""]))
        self.flush()

    def failure(self, what: str, exc: BaseException) -> None:
        self.write(f"{what}: {type(exc).__name__}: {exc}\n" + "".join(traceback.format_exception(exc)))

    def flush(self) -> None:
        storage.write_bytes(self.uri, ("\n".join(self.lines) + "\n").encode("utf-8"), self.options)


@contextlib.contextmanager
def process_output_to(path: str) -> Iterator[None]:
    """Send everything written to file descriptor 2 (Spark's JVM and its Python workers inherit it) to
    ``path``, while ``sys.stderr`` (curate's own progress lines and one-line errors) keeps the terminal."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    sys.stderr.flush()
    terminal = os.dup(2)
    with open(path, "ab") as sink:
        os.dup2(sink.fileno(), 2)
    previous = sys.stderr
    sys.stderr = os.fdopen(os.dup(terminal), "w", buffering=1, encoding="utf-8", errors="replace")
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = previous
        os.dup2(terminal, 2)
        os.close(terminal)
