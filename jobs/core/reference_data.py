"""User-supplied reference data the quality stage checks documents against: benchmark files, URL/domain
blocklists, flagged-word lists. Read once on the driver (local paths or s3://) into the pure structures of
``udfs`` the Arrow batches are checked with; a missing or unreadable file is a ConfigError naming its key.
"""

from __future__ import annotations

import gzip
import io
import os
import posixpath
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from jobs.core import storage
from jobs.core.config import BenchmarkSource, BlocklistSource, Config, ConfigError
from udfs.blocklists import UrlBlocklist, blocklist_from_categories, parse_list
from udfs.decontamination import BenchmarkIndex, benchmark_items, build_index

LIST_KINDS = ("domains", "urls")


def _read(path: str, options: Mapping[str, str]) -> bytes:
    payload = storage.read_bytes(path, options)
    return gzip.decompress(payload) if path.endswith(".gz") else payload


def _files(pattern: str, options: Mapping[str, str], key: str, config: Config) -> list[str]:
    found = [info.path for info in storage.list_files(pattern, options)]
    if not found:
        raise ConfigError(f"no files match {pattern!r}", key=key, source=config.source)
    return found


def benchmark_records(source: BenchmarkSource, options: Mapping[str, str], key: str,
                      config: Config) -> pa.Table:
    """Every record of one benchmark's files, as one Arrow table."""
    tables = []
    for path in _files_of(source.paths, options, key, config):
        payload = _read(path, options)
        try:
            if source.format == "parquet":
                tables.append(pq.read_table(io.BytesIO(payload)))
            else:
                tables.append(pa_json.read_json(io.BytesIO(payload)))
        except (pa.ArrowInvalid, OSError) as exc:
            raise ConfigError(f"cannot read benchmark file {path}: {exc}", key=key,
                              source=config.source) from None
    return pa.concat_tables(tables, promote_options="permissive")


def _files_of(patterns: list[str], options: Mapping[str, str], key: str, config: Config) -> list[str]:
    return [path for pattern in patterns for path in _files(pattern, options, key, config)]


def check_benchmarks(config: Config) -> None:
    """Every configured benchmark has files (read later, when the index is built)."""
    settings = config.quality.decontamination
    for number, source in enumerate(settings.benchmarks if settings.enabled else []):
        _files_of(source.paths, config.input.storage_options, f"quality.decontamination.benchmarks.{number}",
                  config)


def benchmark_index(config: Config) -> BenchmarkIndex:
    """The n-gram index of every configured benchmark's items."""
    settings = config.quality.decontamination
    options = config.input.storage_options
    items = []
    for number, source in enumerate(settings.benchmarks):
        key = f"quality.decontamination.benchmarks.{number}"
        records = benchmark_records(source, options, key, config)
        try:
            items.append(benchmark_items(records, source.name, source.text_fields, source.id_field))
        except ValueError as exc:
            raise ConfigError(f"benchmark {source.name!r}: {exc}", key=key, source=config.source) from None
    return build_index(pa.concat_tables(items), settings.ngram)


def _category_lists(source: BlocklistSource, options: Mapping[str, str], key: str,
                    config: Config) -> dict[str, tuple[list[str], list[str]]]:
    """category -> (domain entries, url entries) of a UT1-style folder or of a single list file."""
    found = storage.list_files(source.path, options)
    if not found:
        raise ConfigError(f"no blocklist files at {source.path!r}", key=key, source=config.source)
    given = source.path if storage.is_s3(source.path) else os.path.abspath(os.path.expanduser(source.path))
    single = len(found) == 1 and found[0].path == given
    lists: dict[str, tuple[list[str], list[str]]] = {}
    for info in found:
        name = posixpath.basename(info.path)
        base = name[:-3] if name.endswith(".gz") else name
        if single:
            category = source.category or base.split(".")[0]
            kind = "urls" if base.startswith("urls") else "domains"
        elif base in LIST_KINDS:
            category = posixpath.basename(posixpath.dirname(info.path))
            kind = base
        else:  # UT1 folders also hold README/usage files
            continue
        entries = parse_list(_read(info.path, options).decode("utf-8", errors="replace"))
        domains, urls = lists.setdefault(category, ([], []))
        (urls if kind == "urls" else domains).extend(entries)
    if not lists:
        raise ConfigError(f"no <category>/domains or <category>/urls files under {source.path!r}", key=key,
                          source=config.source)
    return lists


def url_blocklist(config: Config) -> UrlBlocklist:
    settings = config.quality.url_blocklist
    options = config.input.storage_options
    categories: dict[str, tuple[list[str], list[str]]] = {}
    for number, source in enumerate(settings.lists):
        key = f"quality.url_blocklist.lists.{number}"
        for category, (domains, urls) in _category_lists(source, options, key, config).items():
            known_domains, known_urls = categories.setdefault(category, ([], []))
            known_domains.extend(domains)
            known_urls.extend(urls)
    return blocklist_from_categories(categories, settings.banned_substrings)


def word_lists(config: Config) -> dict[str, frozenset[str]]:
    """language -> flagged words, from the configured files."""
    options = config.input.storage_options
    lists = {}
    for lang, path in config.quality.flagged_words.lists.items():
        key = f"quality.flagged_words.lists.{lang}"
        if not storage.exists(path, options):
            raise ConfigError(f"word list not found: {path}", key=key, source=config.source)
        lists[lang] = frozenset(parse_list(_read(path, options).decode("utf-8", errors="replace")))
    return lists
