"""Paths that may be local or ``s3://``: listing, opening, copying.

Spark's S3A jars are not always present (and never locally), so everything that must reach S3
without them goes through boto3 here, configured by the same ``storage_options`` keys delta-rs
uses (``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, ...).
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import io
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

S3_SCHEMES = ("s3://", "s3a://", "s3n://")
GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    root: str  # the non-glob prefix the file was found under; doc ids are relative to it
    etag: str = ""  # S3 ETag, or the local modification time in ns: a changed file is a new input

    @property
    def relative_path(self) -> str:
        rel = self.path[len(self.root) :].lstrip("/") if self.path.startswith(self.root) else self.path
        return rel or os.path.basename(self.path)


def is_s3(path: str) -> bool:
    return path.startswith(S3_SCHEMES)


def mentions_s3(settings: Any) -> bool:
    """Whether any string in a (nested) settings value is an S3 URI: the session then needs S3A."""
    if isinstance(settings, str):
        return is_s3(settings)
    if isinstance(settings, Mapping):
        return any(mentions_s3(value) for value in settings.values())
    if isinstance(settings, (list, tuple)):
        return any(mentions_s3(value) for value in settings)
    return False


def split_s3(uri: str) -> tuple[str, str]:
    without_scheme = uri.split("://", 1)[1]
    bucket, _, key = without_scheme.partition("/")
    return bucket, key


def join(base: str, *parts: str) -> str:
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def s3_client(storage_options: Mapping[str, str] | None = None) -> Any:
    """A boto3 S3 client from delta-rs style options (falls back to the usual AWS env/config chain)."""
    import boto3
    from botocore.config import Config as BotoConfig

    options = {key.upper(): value for key, value in (storage_options or {}).items()}
    kwargs: dict[str, Any] = {}
    endpoint = options.get("AWS_ENDPOINT_URL") or options.get("AWS_ENDPOINT")
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    if options.get("AWS_REGION"):
        kwargs["region_name"] = options["AWS_REGION"]
    if options.get("AWS_ACCESS_KEY_ID"):
        kwargs["aws_access_key_id"] = options["AWS_ACCESS_KEY_ID"]
        kwargs["aws_secret_access_key"] = options.get("AWS_SECRET_ACCESS_KEY")
        if options.get("AWS_SESSION_TOKEN"):
            kwargs["aws_session_token"] = options["AWS_SESSION_TOKEN"]
    path_style = options.get("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "").lower() == "false" or bool(endpoint)
    kwargs["config"] = BotoConfig(s3={"addressing_style": "path" if path_style else "auto"})
    return boto3.client("s3", **kwargs)


def _glob_root(pattern: str) -> str:
    """The longest leading run of path components without glob characters."""
    parts = pattern.split("/")
    kept: list[str] = []
    for part in parts:
        if GLOB_CHARS & set(part):
            break
        kept.append(part)
    return "/".join(kept)


def list_files(pattern: str, storage_options: Mapping[str, str] | None = None) -> list[FileInfo]:
    """Files matching a glob (``**`` allowed) or under a directory, sorted by path."""
    if is_s3(pattern):
        return _list_s3(pattern, storage_options)
    pattern = os.path.expanduser(pattern)
    if os.path.isdir(pattern):
        root = pattern.rstrip("/")
        matches = glob.glob(os.path.join(root, "**", "*"), recursive=True)
    else:
        root = _glob_root(pattern) if GLOB_CHARS & set(pattern) else os.path.dirname(pattern)
        matches = glob.glob(pattern, recursive=True)
    files = [
        FileInfo(os.path.abspath(path), os.path.getsize(path), os.path.abspath(root or "."),
                 str(os.stat(path).st_mtime_ns))
        for path in matches
        if os.path.isfile(path) and not os.path.basename(path).startswith((".", "_"))
    ]
    return sorted(files, key=lambda info: info.path)


def _list_s3(pattern: str, storage_options: Mapping[str, str] | None) -> list[FileInfo]:
    scheme = pattern.split("://", 1)[0]
    bucket, key_pattern = split_s3(pattern)
    has_glob = bool(GLOB_CHARS & set(key_pattern))
    prefix = _glob_root(key_pattern) if has_glob else key_pattern
    client = s3_client(storage_options)
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/"):
                continue
            if has_glob and not fnmatch.fnmatchcase(key, key_pattern.replace("**/", "*")):
                continue
            if not has_glob and key != prefix and not key.startswith(prefix.rstrip("/") + "/"):
                continue
            root_key = prefix if has_glob or key != prefix else os.path.dirname(prefix)
            root = f"{scheme}://{bucket}/{root_key.rstrip('/')}".rstrip("/")
            found.append(FileInfo(f"{scheme}://{bucket}/{key}", int(obj["Size"]), root,
                                  str(obj.get("ETag", "")).strip('"')))
    return sorted(found, key=lambda info: info.path)


class _S3Body(io.RawIOBase):
    """Adapts a boto3 StreamingBody to a raw stream, so it can be buffered and read line by line."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


def open_input(path: str, storage_options: Mapping[str, str] | None = None) -> IO[bytes]:
    """A buffered binary stream; S3 objects are streamed, not downloaded whole."""
    if is_s3(path):
        bucket, key = split_s3(path)
        body = s3_client(storage_options).get_object(Bucket=bucket, Key=key)["Body"]
        return io.BufferedReader(_S3Body(body), buffer_size=1 << 20)
    return open(path, "rb")


def upload(local_path: str, uri: str, storage_options: Mapping[str, str] | None = None) -> None:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3_client(storage_options).upload_file(local_path, bucket, key)
    else:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local_path, uri)


def download(uri: str, local_path: str, storage_options: Mapping[str, str] | None = None) -> None:
    """All or nothing, and safe when several processes fetch the same object at once (Python workers
    resolving one model): each writes its own temporary file beside the target and renames it over it."""
    target = Path(local_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, part = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(handle)
    try:
        if is_s3(uri):
            bucket, key = split_s3(uri)
            s3_client(storage_options).download_file(bucket, key, part)
        else:
            shutil.copyfile(uri, part)
        os.replace(part, target)
    finally:
        if os.path.exists(part):
            os.remove(part)


def object_etag(uri: str, storage_options: Mapping[str, str] | None = None) -> str:
    """What changes when the object does: its S3 ETag, or a local file's size and modification time."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        return str(s3_client(storage_options).head_object(Bucket=bucket, Key=key)["ETag"])
    stat = os.stat(uri)
    return f"{stat.st_size}-{stat.st_mtime_ns}"


def delete(uri: str, storage_options: Mapping[str, str] | None = None) -> None:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3_client(storage_options).delete_object(Bucket=bucket, Key=key)
    elif os.path.exists(uri):
        os.remove(uri)


def write_bytes(uri: str, payload: bytes, storage_options: Mapping[str, str] | None = None) -> None:
    """All or nothing: a reader sees the old content or the new, never a part (an S3 PUT is atomic; a
    local file is written beside its target and renamed over it)."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3_client(storage_options).put_object(Bucket=bucket, Key=key, Body=payload)
        return
    target = Path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def exists(uri: str, storage_options: Mapping[str, str] | None = None) -> bool:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        response = s3_client(storage_options).list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        return response.get("KeyCount", 0) > 0
    return os.path.exists(uri)


def read_bytes(uri: str, storage_options: Mapping[str, str] | None = None) -> bytes:
    with open_input(uri, storage_options) as handle:
        return handle.read()
