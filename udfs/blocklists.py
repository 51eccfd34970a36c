"""URL/domain blocklists and flagged-word lists over Arrow batches (part of the quality stage).

URL blocklists follow the layout of the UT1 blacklists (Université Toulouse 1): one directory per category
holding a ``domains`` file and a ``urls`` file, one entry per line. RefinedWeb additionally drops URLs
containing any of a few banned substrings. The list files are data the caller reads and passes in
(:func:`parse_list`, :func:`blocklist_from_categories`); the one :class:`UrlBlocklist` is built on the driver
and broadcast.

Matching rules (reported category: domain rule, then URL rule, then substring rule):

* domains match the URL's host or any parent of it at label boundaries, walking up only as far as the
  registered domain given by the public suffix list. An entry that is itself a public suffix (``co.uk``,
  ``github.io``) therefore blocks only that exact host, never every site registered under it: one stray
  line must not wipe out a whole country code or hosting platform. IP hosts match exactly.
* URL entries (host + path) match the URL's host (``www.`` removed) and path at path-segment boundaries;
  the query string only takes part when the entry has one (then at ``&`` boundaries). Paths are compared
  lower-cased, because the list files are. When several entries match, the longest (most specific) wins.
* banned substrings match anywhere in the whole URL, ignoring case.

Flagged words (LDNOOBW-style lists, one per language): the fraction of a document's words that are on its
language's list; for languages written without spaces the list entries are counted as substrings per
non-space character instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from udfs.languages import CHARACTER_LANGUAGES
from udfs.text import public_suffixes, url_hosts

REASON_PREFIX = "url_blocked:"
BANNED_SUBSTRING_CATEGORY = "banned_substring"
FLAGGED_REASON = "flagged_words"
DEFAULT_LIST = "default"  # the word list for documents without a language

# Host, port and userinfo are skipped; path and query are what URL entries match on (fragment dropped).
_PATH_QUERY_PATTERN = (r"^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^@/?#]*@)?(?:\[[^\]]*\]|[^:/?#]+)(?::[^/?#]*)?"
                       r"(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?")
_WWW_PATTERN = r"^www\.(.+\..+)$"  # "www." goes only when a registered name remains ("www.com" stays)
_IPV4_PATTERN = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_SCHEME_PATTERN = re.compile(r"^[a-z][a-z0-9+.\-]*://")
_EDGE_PUNCTUATION_PATTERN = r"^[\p{P}\p{S}]+|[\p{P}\p{S}]+$"
_RE2_SPECIAL = frozenset("\\.+*?()|[]{}^$")
_ENTRIES_PER_PATTERN = 128  # larger alternations of CJK literals make RE2's DFA run out of memory


@dataclass(frozen=True)
class UrlBlocklistRules:
    """URL rules that are settings rather than list files (config keys quality.url_blocklist.<field>)."""

    banned_substrings: tuple[str, ...] = ()  # RefinedWeb-style: a URL containing one (any case) is blocked


@dataclass(frozen=True)
class UrlBlocklist:
    """Every URL rule of a run, built once on the driver and broadcast (plain dicts and tuples: picklable)."""

    domains: Mapping[str, str]  # domain (lower-case, no www.) -> category
    urls: Mapping[str, str]  # normalised URL prefix (host + path, no scheme, no www.) -> category
    banned_substrings: tuple[str, ...]

    @cached_property
    def _url_index(self) -> _UrlIndex:
        """Arrays for the vectorised URL-prefix match, built on first use on each executor."""
        return _UrlIndex.build(self.urls)

    @cached_property
    def _banned_pattern(self) -> str | None:
        """One RE2 alternation of every banned substring (None when there are none)."""
        entries = sorted({entry.lower() for entry in self.banned_substrings if entry})
        return "|".join(_re2_escape(entry) for entry in entries) if entries else None


@dataclass(frozen=True)
class _UrlIndex:
    """URL entries split by kind, as Arrow arrays ready for ``pc.index_in``."""

    hosts: pa.Array  # hosts named by any URL entry: the cheap pre-filter
    path_keys: pa.Array  # host + path entries (no query)
    path_reasons: pa.Array  # their "url_blocked:<category>", aligned with path_keys
    max_segments: int  # most path segments in a path entry
    query_keys: pa.Array  # host + path + "?" + query entries
    query_reasons: pa.Array
    max_parameters: int  # most "&"-separated parameters in a query entry

    @staticmethod
    def build(urls: Mapping[str, str]) -> _UrlIndex:
        path_entries = {key: category for key, category in urls.items() if "?" not in key}
        query_entries = {key: category for key, category in urls.items() if "?" in key}
        hosts = sorted({re.split(r"[/?]", key, maxsplit=1)[0] for key in urls})
        return _UrlIndex(
            hosts=pa.array(hosts, type=pa.string()),
            path_keys=pa.array(list(path_entries), type=pa.string()),
            path_reasons=pa.array([REASON_PREFIX + value for value in path_entries.values()],
                                  type=pa.string()),
            max_segments=max((key.count("/") for key in path_entries), default=0),
            query_keys=pa.array(list(query_entries), type=pa.string()),
            query_reasons=pa.array([REASON_PREFIX + value for value in query_entries.values()],
                                   type=pa.string()),
            max_parameters=max((key.split("?", 1)[1].count("&") + 1 for key in query_entries), default=0),
        )


@dataclass(frozen=True)
class FlaggedWordRules:
    """When a document has too many words from its language's flagged-word list (quality.flagged_words)."""

    max_fraction: float = 0.01  # drop when the fraction of words on the document language's list exceeds this
    # languages written without spaces between words: list entries are counted as substrings
    character_languages: tuple[str, ...] = CHARACTER_LANGUAGES


def parse_list(text: str) -> list[str]:
    """Entries of a UT1-style list file: one per line, '#' comments and blanks ignored, trimmed, lower-cased.

    A '#' starts a comment at the start of a line or after whitespace (a '#' inside an entry is kept).
    """
    entries = []
    for line in text.splitlines():  # splitlines also ends lines at "\r\n" and "\r"
        entry = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip().lower()
        if entry:
            entries.append(entry)
    return entries


def _normalise_host(host: str) -> str:
    """Lower-case host without userinfo, port, trailing dot, wildcard label or leading "www."."""
    host = host.rsplit("@", 1)[-1]
    if host.startswith("["):
        host = host[:host.find("]") + 1] if "]" in host else host
    elif host.count(":") >= 2:  # a bare IPv6 address: bracket it as url_hosts does
        host = f"[{host}]"
    else:
        host = host.split(":", 1)[0]
    host = host.rstrip(".").lstrip("*").lstrip(".")
    if host.startswith("www.") and "." in host[4:]:
        host = host[4:]
    return host


def _classify_entry(entry: str) -> tuple[str, str] | None:
    """("domain", host) or ("url", host + path [+ "?" + query]) for one list entry; None without a host."""
    entry = _SCHEME_PATTERN.sub("", entry.strip().lower()).lstrip("/").split("#", 1)[0]
    host_end = min((index for index in (entry.find("/"), entry.find("?")) if index >= 0), default=len(entry))
    host, rest = _normalise_host(entry[:host_end]), entry[host_end:]
    if not host:
        return None
    path, _, query = rest.partition("?")
    path = path.rstrip("/")
    if query:
        return "url", f"{host}{path}?{query}"
    return ("url", host + path) if path else ("domain", host)


def blocklist_from_categories(categories: Mapping[str, tuple[Sequence[str], Sequence[str]]],
                              banned_substrings: Sequence[str] = ()) -> UrlBlocklist:
    """category -> (domain entries, url entries); an entry that is a URL in the domains file or a bare host
    in the urls file is put where it belongs; the first category listing an entry wins (sorted category
    names)."""
    domains: dict[str, str] = {}
    urls: dict[str, str] = {}
    for category in sorted(categories):
        domain_entries, url_entries = categories[category]
        for entry in [*domain_entries, *url_entries]:
            classified = _classify_entry(entry)
            if classified is not None:
                kind, key = classified
                (domains if kind == "domain" else urls).setdefault(key, category)
    substrings = tuple(dict.fromkeys(entry.strip().lower() for entry in banned_substrings if entry.strip()))
    return UrlBlocklist(domains=domains, urls=urls, banned_substrings=substrings)


def _domain_category(host: str, domains: Mapping[str, str]) -> str | None:
    """Category of the most specific listed domain that ``host`` is, or is under, stopping at its registered
    domain (so a listed public suffix blocks only itself)."""
    if host.startswith("[") or _IPV4_PATTERN.match(host):
        return domains.get(host)
    registered = public_suffixes().privatesuffix(host)
    if registered is None:  # the host is itself a public suffix
        return domains.get(host)
    labels = host.split(".")
    for start in range(len(labels) - registered.count(".")):
        category = domains.get(".".join(labels[start:]))
        if category is not None:
            return category
    return None


def _domain_reasons(hosts: pa.Array, domains: Mapping[str, str]) -> pa.Array:
    """Per host, "url_blocked:<category>" of the domain rule, or null."""
    encoded = pc.dictionary_encode(hosts)
    reasons = []
    for host in encoded.dictionary.to_pylist():  # loop over the DISTINCT hosts of the batch only
        category = _domain_category(host, domains)
        reasons.append(None if category is None else REASON_PREFIX + category)
    return pc.take(pa.array(reasons, type=pa.string()), encoded.indices)


def _longest_prefix_reasons(keys: pa.Array, prefix_patterns: Sequence[str],
                            entry_keys: pa.Array, entry_reasons: pa.Array) -> pa.Array:
    """Reason of the longest entry equal to a prefix of each key, the candidate prefixes being cut by
    ``prefix_patterns`` (shortest first, group "prefix"): one vectorised pass per pattern."""
    found = pa.nulls(len(keys), pa.string())
    for pattern in prefix_patterns:
        prefixes = pc.struct_field(pc.extract_regex(keys, pattern), "prefix")
        reasons = pc.take(entry_reasons, pc.index_in(prefixes, value_set=entry_keys))
        found = pc.coalesce(reasons, found)  # longer prefixes come later, so the most specific entry wins
    return found


def _url_reasons(urls: pa.Array, hosts: pa.Array, index: _UrlIndex) -> pa.Array:
    """Per URL, "url_blocked:<category>" of the URL-prefix rule, or null."""
    bare_hosts = pc.replace_substring_regex(hosts, _WWW_PATTERN, r"\1")
    candidate = pc.fill_null(pc.is_in(bare_hosts, value_set=index.hosts), False)
    if not pc.any(candidate).as_py():
        return pa.nulls(len(urls), pa.string())
    rows = pc.indices_nonzero(candidate)  # only URLs on a host that some URL entry names go further
    parts = pc.extract_regex(pc.take(urls, rows), _PATH_QUERY_PATTERN)
    keys = pc.binary_join_element_wise(pc.take(bare_hosts, rows),
                                       pc.utf8_lower(pc.struct_field(parts, "path")), "")
    # host + the first n path segments; [^/]* is greedy, so each prefix ends at a "/" or at the end
    segment_patterns = [rf"^(?P<prefix>[^/]*(?:/[^/]*){{{count}}})"
                        for count in range(1, index.max_segments + 1)]
    found = _longest_prefix_reasons(keys, segment_patterns, index.path_keys, index.path_reasons)
    if index.max_parameters:
        query = pc.utf8_lower(pc.struct_field(parts, "query"))
        query_keys = pc.binary_join_element_wise(pc.utf8_rtrim(keys, characters="/"), query, "?")
        # host + path + "?" + the first n parameters, each prefix ending at a "&" or at the end
        parameter_patterns = [rf"^(?P<prefix>[^?]*\?[^&]*(?:&[^&]*){{{count}}})"
                              for count in range(index.max_parameters)]
        query_found = _longest_prefix_reasons(query_keys, parameter_patterns, index.query_keys,
                                              index.query_reasons)
        found = pc.coalesce(query_found, found)
    return pc.replace_with_mask(pa.nulls(len(urls), pa.string()), candidate, found)


def _re2_escape(literal: str) -> str:
    """``literal`` as an RE2 pattern matching exactly itself."""
    return "".join("\\" + char if char in _RE2_SPECIAL else char for char in literal)


def _as_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def url_block_reasons(urls: pa.Array, blocklist: UrlBlocklist) -> pa.Array:
    """Per URL: "url_blocked:<category>" (category "banned_substring" for the substring rule) or null."""
    urls = pc.cast(_as_array(urls), pa.string())
    hosts = url_hosts(urls)
    reasons = pa.nulls(len(urls), pa.string())
    pattern = blocklist._banned_pattern
    if pattern is not None:
        banned = pc.fill_null(pc.match_substring_regex(urls, pattern, ignore_case=True), False)
        reasons = pc.if_else(banned, pa.scalar(REASON_PREFIX + BANNED_SUBSTRING_CATEGORY), reasons)
    if blocklist.urls:
        reasons = pc.coalesce(_url_reasons(urls, hosts, blocklist._url_index), reasons)
    if blocklist.domains:
        reasons = pc.coalesce(_domain_reasons(hosts, blocklist.domains), reasons)
    return reasons


def flagged_word_fractions(texts: pa.Array, langs: pa.Array | None, word_lists: Mapping[str, frozenset[str]],
                           rules: FlaggedWordRules) -> pa.Table:
    """columns flagged_words (int32 matches), flagged_word_fraction (float64), flagged_reason ("flagged_words"
    when above max_fraction, else null). langs null or absent: the list named "default" (if any) applies;
    a language without a list: 0 and null."""
    texts = pc.fill_null(_as_array(texts), "")
    documents = len(texts)
    if langs is None:
        list_names = pa.array([DEFAULT_LIST] * documents, type=pa.string())
    else:
        list_names = pc.fill_null(_as_array(langs), DEFAULT_LIST)
        if len(list_names) != documents:
            raise ValueError(f"{len(list_names)} languages for {documents} texts")
    encoded = pc.dictionary_encode(list_names)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    matches = np.zeros(documents, dtype=np.int64)
    units = np.zeros(documents, dtype=np.int64)  # words, or non-space characters for character languages
    for code, name in enumerate(encoded.dictionary.to_pylist()):  # loop over the few DISTINCT languages
        entries = word_lists.get(name)
        if not entries:
            continue
        rows = np.flatnonzero(codes == code)
        group = pc.take(texts, pa.array(rows))
        if name in rules.character_languages:
            matches[rows], units[rows] = _character_matches(group, entries)
        else:
            matches[rows], units[rows] = _word_matches(group, entries)
    with np.errstate(divide="ignore", invalid="ignore"):
        fractions = np.where(units > 0, matches / np.maximum(units, 1), 0.0)
    flagged = fractions > rules.max_fraction
    return pa.table({
        "flagged_words": pa.array(matches.astype(np.int32)),
        "flagged_word_fraction": pa.array(fractions, type=pa.float64()),
        "flagged_reason": pc.if_else(pa.array(flagged), pa.scalar(FLAGGED_REASON),
                                     pa.scalar(None, pa.string())),
    })


def _bare_words(words: pa.Array) -> pa.Array:
    """Words lower-cased, with leading and trailing punctuation and symbols stripped ("Damn!" -> "damn")."""
    return pc.utf8_lower(pc.replace_substring_regex(words, _EDGE_PUNCTUATION_PATTERN, ""))


def _word_matches(texts: pa.Array, entries: frozenset[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per text: words on the list, and words (tokens with a letter, digit or other non-punctuation left)."""
    listed = _bare_words(pa.array(sorted(entries), type=pa.string()))
    # entries with a space can never equal one whitespace-separated word, so only single words are kept
    listed = pc.filter(listed, pc.invert(pc.match_substring_regex(listed, r"\s|^$")))
    token_lists = pc.utf8_split_whitespace(texts)
    words = _bare_words(pc.list_flatten(token_lists))
    owners = pc.list_parent_indices(token_lists).to_numpy(zero_copy_only=False)
    real = pc.greater(pc.utf8_length(words), 0).to_numpy(zero_copy_only=False)
    hits = pc.is_in(words, value_set=listed).to_numpy(zero_copy_only=False) & real
    documents = len(texts)
    return (np.bincount(owners, weights=hits, minlength=documents).astype(np.int64),
            np.bincount(owners, weights=real, minlength=documents).astype(np.int64))


def _character_matches(texts: pa.Array, entries: frozenset[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per text: occurrences of list entries as substrings, and non-space characters.

    Entries go into RE2 alternations of at most ``_ENTRIES_PER_PATTERN``, longest entries first; each pass
    replaces its matches by NUL, so a match is counted once and an entry inside a longer listed one that
    already matched is not counted again. Measured on 1000 Chinese texts of 2000 characters: 300 entries
    0.2 s where one ``count_substring`` per entry took 12 s; 1200 entries 0.8 s where a single
    alternation of all of them took over 25 s (RE2's DFA runs out of memory).
    """
    distinct = {entry.strip().lower() for entry in entries} - {""}
    listed = sorted(distinct, key=lambda entry: (-len(entry), entry))
    lowered = pc.utf8_lower(texts)
    marked = lowered
    for start in range(0, len(listed), _ENTRIES_PER_PATTERN):  # a few passes, each over the whole group
        chunk = listed[start:start + _ENTRIES_PER_PATTERN]
        marked = pc.replace_substring_regex(marked, "|".join(_re2_escape(entry) for entry in chunk), "\x00")
    matches = (pc.count_substring(marked, "\x00").to_numpy(zero_copy_only=False)
               - pc.count_substring(lowered, "\x00").to_numpy(zero_copy_only=False))
    spaces = pc.count_substring_regex(texts, r"\s").to_numpy(zero_copy_only=False)
    characters = pc.utf8_length(texts).to_numpy(zero_copy_only=False) - spaces
    return matches.astype(np.int64), characters.astype(np.int64)
