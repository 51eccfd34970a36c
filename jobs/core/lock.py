"""One run at a time per ``output.root``: the run lock.

* Local disk: ``flock`` on ``<root>/_lock/run.lock``. The kernel releases it when the holder dies
  (``kill -9`` included), so a stale lock cannot exist; the file holds the holder's run id for messages.
* S3: a lease object ``<root>/_lock/run.lock`` written with a conditional put (``If-None-Match: *``)
  and renewed by a heartbeat with ``If-Match: <its etag>``. A lease whose expiry has passed (its holder
  died or hung) is taken over with ``If-Match`` on the etag that was read, so of two runs taking over the
  same stale lease exactly one wins. Releasing writes an expired lease the same way.

A second run waits up to ``run.lock.wait_seconds`` and then fails with :class:`ConcurrentRunError`, one
line naming the holder. Keyed writes (``TableStore.merge``) keep tables free of duplicates even if two
runs get past the lock (a different root spelling, a clock gone wrong).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from jobs.core import storage

LOCK_PATH = ("_lock", "run.lock")
POLL_SECONDS = 1.0


class ConcurrentRunError(Exception):
    """Another run holds the output root (or took it over from this one)."""


@dataclass(frozen=True)
class Holder:
    run_id: str
    host: str
    pid: int
    token: str
    acquired_at: str
    expires_at: float  # seconds since the epoch (S3 leases); 0 = released

    def describe(self) -> str:
        return f"run {self.run_id} (host {self.host}, pid {self.pid}, since {self.acquired_at})"

    @classmethod
    def parse(cls, payload: bytes) -> Holder | None:
        try:
            return cls(**json.loads(payload))
        except (ValueError, TypeError):
            return None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class RunLock:
    """``with RunLock(root, run_id, ...):`` holds the output root for one run."""

    def __init__(self, root: str, run_id: str, storage_options: Mapping[str, str] | None = None,
                 lease_seconds: float = 600.0, wait_seconds: float = 0.0) -> None:
        self.root = root
        self.run_id = run_id
        self.options = dict(storage_options or {})
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.uri = storage.join(root, *LOCK_PATH)
        self.holder = Holder(run_id, socket.gethostname(), os.getpid(), secrets.token_hex(8), _now(), 0.0)
        self._local_fd: int | None = None
        self._etag: str | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.lost: str | None = None  # set when another run took the lease over (S3)

    # -- the protocol ----------------------------------------------------------------------------------

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            other = self._try_acquire()
            if other is None:
                return
            if time.monotonic() >= deadline:
                waited = f" after waiting {self.wait_seconds:g} s" if self.wait_seconds else ""
                raise ConcurrentRunError(f"output root {self.root} is locked by {other.describe()}{waited}; "
                                         "retry when it ends (run.lock.wait_seconds makes a run wait)")
            time.sleep(POLL_SECONDS)

    def release(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
        if self._local_fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._local_fd, 0)
            os.close(self._local_fd)  # closing drops the flock
            self._local_fd = None
        elif self._etag is not None and self.lost is None:
            with contextlib.suppress(Exception):  # an expired lease is free for the next run anyway
                self._put(self._lease(expired=True), if_match=self._etag)
            self._etag = None

    def check(self) -> None:
        """Raise if this run no longer holds the lock (an S3 lease another run took over)."""
        if self.lost is not None:
            raise ConcurrentRunError(self.lost)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    # -- local: flock ------------------------------------------------------------------------------------

    def _try_acquire(self) -> Holder | None:
        return self._try_s3() if storage.is_s3(self.root) else self._try_local()

    def _try_local(self) -> Holder | None:
        import fcntl

        os.makedirs(os.path.dirname(self.uri), exist_ok=True)
        fd = os.open(self.uri, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            payload = os.pread(fd, 4096, 0)
            os.close(fd)
            return Holder.parse(payload) or Holder("(unknown)", "?", 0, "", "?", 0.0)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(self.holder)).encode(), 0)
        os.fsync(fd)
        self._local_fd = fd
        return None

    # -- S3: conditional puts --------------------------------------------------------------------------

    def _lease(self, expired: bool = False) -> Holder:
        expires = 0.0 if expired else time.time() + self.lease_seconds
        return Holder(**{**asdict(self.holder), "expires_at": expires})

    def _put(self, holder: Holder, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        bucket, key = storage.split_s3(self.uri)
        conditions: dict[str, str] = {"IfMatch": if_match} if if_match else {}
        if if_none_match:
            conditions["IfNoneMatch"] = "*"
        response = storage.s3_client(self.options).put_object(
            Bucket=bucket, Key=key, Body=json.dumps(asdict(holder)).encode(), **conditions)
        return str(response["ETag"])

    def _try_s3(self) -> Holder | None:
        from botocore.exceptions import ClientError

        bucket, key = storage.split_s3(self.uri)
        client = storage.s3_client(self.options)
        try:
            self._etag = self._put(self._lease(), if_none_match=True)
        except ClientError as exc:
            if not _precondition_failed(exc):
                raise
            try:
                current = client.get_object(Bucket=bucket, Key=key)
            except ClientError:
                return self._try_s3_again()
            holder = Holder.parse(current["Body"].read())
            if holder is not None and holder.expires_at > time.time():
                return holder
            try:  # expired or unreadable: take it over, unless another run does so first
                self._etag = self._put(self._lease(), if_match=str(current["ETag"]))
            except ClientError as again:
                if not _precondition_failed(again):
                    raise
                return self._try_s3_again()
        self._start_heartbeat()
        return None

    def _try_s3_again(self) -> Holder | None:
        return Holder("(another run taking the lock over)", "?", 0, "", "now", time.time())

    def _start_heartbeat(self) -> None:
        def renew() -> None:
            from botocore.exceptions import ClientError

            while not self._stop.wait(self.lease_seconds / 3):
                try:
                    self._etag = self._put(self._lease(), if_match=self._etag)
                except ClientError as exc:
                    if _precondition_failed(exc):
                        self.lost = (f"run {self.run_id} lost the lock on {self.root}: its lease ran out "
                                     "and another run took it over")
                        return

        self._heartbeat = threading.Thread(target=renew, name="run-lock-heartbeat", daemon=True)
        self._heartbeat.start()


def _precondition_failed(exc: Any) -> bool:
    error = getattr(exc, "response", {}).get("Error", {})
    return error.get("Code") in ("PreconditionFailed", "412", "ConditionalRequestConflict")
