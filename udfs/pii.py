"""PII masking over Arrow string arrays: e-mail and IP addresses, phone numbers, payment cards, US SSNs.

Most web text holds no PII, so the work is split in two passes:

1. one RE2 pre-filter (``pyarrow.compute.match_substring_regex``, a single scan of the batch) flags the rows
   that *could* hold an enabled type (an ``@`` before a dotted name, a dotted quad, a hex-colon group, a long
   digit run, ``ddd-dd-dddd``, a ``+``/``00`` prefix or a 3-3-4 digit grouping);
2. only the flagged rows go through the validating pass in Python ``re``, where each candidate must also pass
   its checks: a known top-level domain (the public suffix list bundled with ``publicsuffixlist``),
   ``ipaddress`` parsing and ranges, the Luhn check and card groupings, the SSA rules for SSNs, and country
   calling codes and digit counts for phones.

Precision matters more than recall, so every finder insists on clean boundaries: a match may not continue
into letters or digits, nor into another digit group through a single separator (``1.2.3.4.5`` holds no IP,
``4111 1111 1111 1111 2024`` no card). Documented choices:

* IPv4: four dotted octets 0-255 without leading zeros; a dotted quad right after a version word
  (``version``, ``v``, ``build``, ``release``, ``firmware``, ``section`` ...; see ``_NOT_AN_ADDRESS_BEFORE``)
  is a version or section number, not an address. ``10.0.19041.1`` (octet above 255), ``v2.10.3`` (three
  parts) and ``v1.2.3.4`` (a letter before it) never qualify.
* Addresses that identify nobody - private, loopback, link-local, shared, reserved, multicast and
  documentation ranges (``192.0.2.0/24``, ``2001:db8::/32`` ...) - are left alone unless
  ``mask_private_ips``; the unspecified addresses ``0.0.0.0`` and ``::`` are never masked.
* Phones: international numbers written with ``+`` or ``00`` and a valid country calling code, 8-15 digits
  (E.164), ``+1`` numbers following the North American plan; not card-shaped (three groups of four digits
  first: ``0043 1579 7906 5980``) nor a decimal (one dot: ``+35236450.6``). And North American numbers
  ``(NXX) NXX-XXXX``, ``NXX-NXX-XXXX``, ``NXX.NXX.XXXX``. Other national formats (``020 7946 0958``) are not
  masked: without the country prefix they cannot be told from other digit groups.
* Cards: a prefix and length some major network issues (Visa 4 + 13/16/19 digits, Amex 34/37 + 15 ...),
  contiguous or grouped 4-4-4-4, 4-4-4-4-3, 4-6-5 or 4-6-4 with one kind of separator, passing Luhn. ISBNs
  (978/979), web-archive timestamps (2017...) and most long integers fail on the prefix or the length.
* E-mail: a dotted domain whose top-level domain exists (or is the reserved ``example``/``test``) and
  which is not itself a public suffix, or a bracketed address literal ``user@[93.184.216.34]`` (the
  address in it counts as the e-mail only). ``user@localhost`` and ``icon@2x.png`` do not qualify.

Overlapping candidates are resolved in the order e-mail, card, SSN, IP, phone: a later candidate touching an
accepted span is dropped, so nothing is counted twice.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from udfs.text import public_suffixes

PII_TYPES = ("email", "ip_address", "phone", "credit_card", "us_ssn")
DENSITY_REASON = "pii_density"


@dataclass(frozen=True)
class PiiRules:
    """Which PII types are masked, with what, and the density above which a document is dropped."""

    email: bool = True
    ip_address: bool = True  # IPv4 and IPv6
    phone: bool = True  # common international formats
    credit_card: bool = True  # 13-19 digits (spaces/dashes allowed) that pass the Luhn check
    us_ssn: bool = True  # ddd-dd-dddd, area not 000/666/9xx, group not 00, serial not 0000
    mask_private_ips: bool = False  # False: private/loopback/link-local/reserved/documentation left alone
    email_placeholder: str = "<EMAIL_ADDRESS>"
    ip_placeholder: str = "<IP_ADDRESS>"
    phone_placeholder: str = "<PHONE_NUMBER>"
    credit_card_placeholder: str = "<CREDIT_CARD>"
    us_ssn_placeholder: str = "<US_SSN>"
    max_pii_per_1k_chars: float | None = None  # documents above this density are dropped ("pii_density")


@dataclass(frozen=True)
class PiiFormats:
    """Format facts the finders check (number lengths, card groupings); not tuning knobs."""

    # (lowest prefix, highest prefix, number lengths) of the major card networks' issuer ranges
    card_networks: tuple[tuple[str, str, tuple[int, ...]], ...] = (
        ("4", "4", (13, 16, 19)),  # Visa
        ("51", "55", (16,)), ("2221", "2720", (16,)),  # Mastercard
        ("34", "34", (15,)), ("37", "37", (15,)),  # American Express
        ("300", "305", (14, 16, 19)), ("36", "36", (14, 16, 19)), ("38", "39", (14, 16, 19)),  # Diners Club
        ("6011", "6011", (16, 19)), ("644", "649", (16, 19)), ("65", "65", (16, 19)),  # Discover
        ("3528", "3589", (16, 19)),  # JCB
        ("62", "62", (16, 17, 18, 19)),  # UnionPay
        ("2200", "2204", (16, 17, 18, 19)),  # Mir
        ("5018", "5018", (13, 16, 19)), ("5020", "5020", (13, 16, 19)), ("5038", "5038", (13, 16, 19)),
        ("5893", "5893", (16, 19)), ("6304", "6304", (16, 19)), ("6759", "6759", (16, 19)),
        ("6761", "6763", (16, 19)),  # Maestro
    )
    card_groupings: tuple[tuple[int, ...], ...] = ((4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4))
    phone_min_digits: int = 8  # country code included
    phone_max_digits: int = 15  # E.164
    nanp_digits: int = 11  # +1 and ten national digits
    version_context_chars: int = 24  # how far before a dotted quad a version word is looked for
    email_max_local_chars: int = 64  # RFC 5321
    email_max_domain_chars: int = 253


PII_FORMATS = PiiFormats()

_PLACEHOLDER_FIELDS = {
    "email": "email_placeholder",
    "ip_address": "ip_placeholder",
    "phone": "phone_placeholder",
    "credit_card": "credit_card_placeholder",
    "us_ssn": "us_ssn_placeholder",
}


def _codes(spec: str) -> frozenset[str]:
    """Country calling codes from a space-separated list of codes and inclusive ranges ("220-229")."""
    codes: set[str] = set()
    for item in spec.split():
        first, _, last = item.partition("-")
        codes.update(str(code) for code in range(int(first), int(last or first) + 1))
    return frozenset(codes)


# ITU-T E.164 country calling codes in use (a prefix code: no code starts another).
_COUNTRY_CODES = _codes(
    "1 7 20 27 30-34 36 39 40 41 43-49 51-58 60-66 81 82 84 86 90-95 98 "
    "211 212 213 216 218 220-258 260-269 290 291 297 298 299 350-359 370-383 385 386 387 389 "
    "420 421 423 500-509 590-599 670 672-683 685-692 800 808 850 852 853 855 856 870 878 "
    "880-883 886 888 960-968 970-977 979 992-996 998"
)

# --- pre-filter (RE2, whole batch) ---------------------------------------------------------------------


def _card_shape(first_digits: str, grouping: tuple[int, ...], separator: str) -> str:
    """RE2 for a card number of these group lengths (first digit from ``first_digits``)."""
    groups = [f"[0-9]{{{size}}}" for size in grouping]
    groups[0] = f"[{first_digits}][0-9]{{{grouping[0] - 1}}}"
    return separator.join(groups)


def _prefilter_patterns(rules: PiiRules, formats: PiiFormats) -> dict[str, str]:
    """Per finder stage (see ``_STAGES``), an RE2 pattern every match that stage accepts contains."""
    phone_digits_after_first = formats.phone_min_digits - 1
    first_digits = "".join(sorted({low[0] for low, _, _ in formats.card_networks}))
    shortest_card = min(length for _, _, lengths in formats.card_networks for length in lengths)
    any_ipv6 = r"[0-9A-Fa-f]::|::[0-9A-Fa-f]|[0-9A-Fa-f](?::[0-9A-Fa-f]{1,4}){4}"
    # public IPv6: global unicast 2000::/3 (compressed or full form) or IPv4-mapped
    public_ipv6 = (r"[23][0-9A-Fa-f]{0,3}(?::[0-9A-Fa-f]{1,4})*::"
                   r"|[23][0-9A-Fa-f]{0,3}(?::[0-9A-Fa-f]{1,4}){5}|::[Ff]{4}:[0-9]")
    return {
        "email": r"@[A-Za-z0-9\-]+\.[A-Za-z0-9]|@\[(?:[0-9]|IPv6:)",
        "ipv6": any_ipv6 if rules.mask_private_ips else public_ipv6,
        "ipv4": r"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]",
        "credit_card": "|".join(_card_shape(first_digits, grouping, r"[ \-]")
                                for grouping in ((shortest_card,), *formats.card_groupings)),
        "us_ssn": r"[0-9]{3}-[0-9]{2}-[0-9]{4}",
        "international_phone": rf"(?:\+|00)[1-9](?:[ .\-]?\(?[0-9]\)?){{{phone_digits_after_first}}}",
        "nanp_phone": r"[0-9]{3}\)? ?[.\-]?[0-9]{3}[ .\-][0-9]{4}",
    }


def pii_candidates(texts: pa.Array, rules: PiiRules, formats: PiiFormats = PII_FORMATS) -> np.ndarray:
    """Boolean mask of the rows that may hold an enabled PII type (one RE2 scan); the rest are PII-free."""
    patterns = _prefilter_patterns(rules, formats)
    enabled = [patterns[stage] for stage, name, _ in _STAGES if getattr(rules, name)]
    if not enabled or len(texts) == 0:
        return np.zeros(len(texts), dtype=bool)
    flagged = pc.match_substring_regex(texts, "|".join(f"(?:{pattern})" for pattern in enabled))
    return flagged.fill_null(False).to_numpy(zero_copy_only=False)


# --- validating finders (Python re, flagged rows only) ---------------------------------------------------

# Tried only at the start of the run of local-part characters before an "@" (see _email_matches).
_EMAIL = re.compile(
    r"(?P<local>[\w%+\-]+(?:\.[\w%+\-]+)*)@"
    r"(?:(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9\-]{0,62})"
    r"(?![\w\-])"
    r"|\[(?P<literal>[0-9.]+|IPv6:[0-9A-Fa-f:.]+)\])"
)
_DOCUMENTATION_TLDS = frozenset({"example", "test"})  # RFC 2606: reserved, absent from the suffix list
_RETINA_LABEL = re.compile(r"[0-9]+x")  # "icon@2x.png": an image-scale suffix, not a mail domain
_LOCAL_RUN = re.compile(r"[\w.%+\-]+\Z")
# Boundary look-behinds follow the first character, so re can fast-scan for that character.
_IPV4 = re.compile(r"[0-9](?<![\w.][0-9])[0-9]{0,2}\.(?:[0-9]{1,3}\.){2}[0-9]{1,3}(?![\w])(?!\.[0-9])")
_IPV6 = re.compile(
    r"(?:[0-9A-Fa-f](?<![\w:.][0-9A-Fa-f])[0-9A-Fa-f]{0,3}:|:(?<![\w:.]:))(?:[0-9A-Fa-f]{0,4}:){1,6}"
    r"(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{1,4})?(?![\w:])(?!\.[0-9])"
)
_NOT_AN_ADDRESS_BEFORE = re.compile(
    r"(?i)(?:\b(?:version|ver|v|release|rel|build|revision|rev|firmware|fw|kernel|patch|"
    r"section|sec|chapter|clause|figure|fig|table)|§)\.?\s*[:#]?\s*$"
)
_CARD = re.compile(
    r"[0-9](?<![\w.\-+][0-9])(?<![0-9][ \-][0-9])(?:[ \-]?[0-9])+(?![\w])(?![ .\-][0-9])")
_SSN = re.compile(r"([0-9](?<![\w.\-+/][0-9])[0-9]{2})-([0-9]{2})-([0-9]{4})(?![\w])(?![.\-/][0-9])")
# +CC or 00CC, then digits, separators before a digit, and parenthesised groups such as "(415)" or "(0)".
_INTERNATIONAL_PHONE = re.compile(
    r"(?P<prefix>\+(?<![\w+.\-/]\+)(?<![0-9] \+)|00(?<![\w+.\-/]00)(?<![0-9] 00))"
    r"[1-9](?:[0-9]|[ .\-]?\([0-9]{1,4}\)|[ .\-](?=[0-9(]))*[0-9](?![\w])(?![ .\-]?\(?[0-9])"
)
_TRUNK_ZERO = re.compile(r"\(0\)")
# North American national numbers: (NXX) NXX-XXXX, NXX-NXX-XXXX, NXX.NXX.XXXX, optionally after "1-". Their
# own punctuation sets them apart, so (unlike space-grouped numbers) a digit group a space away may follow.
_NANP_PHONE = re.compile(
    r"(?=[1-9(])(?<![\w+.\-()])(?:1[.\-])?"
    r"(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}(?P<sep>[.\-]))[2-9][0-9]{2}(?(sep)(?P=sep)|[ .\-])[0-9]{4}"
    r"(?![\w])(?![.\-][0-9])"
)
_NON_DIGITS = re.compile(r"[^0-9]")
_DIGIT_GROUPS = re.compile(r"[0-9]+")
_SEPARATORS = re.compile(r"[ \-]")


def luhn_valid(digits: str) -> bool:
    """Luhn mod-10 check of a digit string (every payment card number passes it)."""
    total = 0
    # A loop over the <= 19 digits of one card candidate (candidates are rare).
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _is_maskable_address(text: str, mask_private: bool) -> bool:
    """Whether ``text`` parses as an IP address that this run masks (public unless ``mask_private``)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if address.is_unspecified:
        return False
    if mask_private:
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast and not address.is_reserved


def _email_matches(text: str, max_local_chars: int) -> Iterator[re.Match[str]]:
    """``_EMAIL`` matches (not overlapping, left to right), tried only at each "@": the local part starts
    where the run of local-part characters before the "@" starts; longer runs than a local part may be
    are skipped."""
    searched_to = 0
    at = text.find("@")
    while at != -1:
        window_start = max(0, at - max_local_chars)
        run = _LOCAL_RUN.search(text, window_start, at)
        longer = run is not None and run.start() == window_start > 0 and _LOCAL_RUN.match(
            text, window_start - 1, window_start) is not None
        if run is not None and not longer and run.start() >= searched_to:
            match = _EMAIL.match(text, run.start())
            if match is not None:
                searched_to = match.end()
                yield match
        at = text.find("@", at + 1)


def _emails(text: str, rules: PiiRules, formats: PiiFormats) -> Iterator[tuple[int, int]]:
    for match in _email_matches(text, formats.email_max_local_chars):
        literal = match.group("literal")
        if literal is not None:
            try:
                ipaddress.ip_address(literal.removeprefix("IPv6:"))
            except ValueError:
                continue
            yield match.span()
            continue
        domain = match.group("domain").lower()
        if len(domain) > formats.email_max_domain_chars or _RETINA_LABEL.fullmatch(domain.split(".", 1)[0]):
            continue
        if (domain.rsplit(".", 1)[1] not in _DOCUMENTATION_TLDS
                and public_suffixes(icann_only=True).privatesuffix(domain, accept_unknown=False) is None):
            continue  # unknown top-level domain ("png", "local") or a bare public suffix ("co.uk")
        yield match.span()


def _ipv6_addresses(text: str, rules: PiiRules, formats: PiiFormats) -> Iterator[tuple[int, int]]:
    for match in _IPV6.finditer(text):
        candidate = match.group()
        if candidate.strip(":.") and _is_maskable_address(candidate, rules.mask_private_ips):
            yield match.span()


def _ipv4_addresses(text: str, rules: PiiRules, formats: PiiFormats) -> Iterator[tuple[int, int]]:
    for match in _IPV4.finditer(text):
        if any(len(octet) > 1 and octet[0] == "0" for octet in match.group().split(".")):
            continue  # leading zeros: ambiguous (octal in some parsers), and rare in real addresses
        window_start = max(0, match.start() - formats.version_context_chars)
        if _NOT_AN_ADDRESS_BEFORE.search(text, window_start, match.start()):
            continue
        if _is_maskable_address(match.group(), rules.mask_private_ips):
            yield match.span()


def _credit_cards(text: str, rules: PiiRules, formats: PiiFormats) -> Iterator[tuple[int, int]]:
    for match in _CARD.finditer(text):
        candidate = match.group()
        digits = _NON_DIGITS.sub("", candidate)
        if not any(low <= digits[:len(low)] <= high and len(digits) in lengths
                   for low, high, lengths in formats.card_networks):
            continue  # no network issues numbers of this prefix and length
        separators = set(_SEPARATORS.findall(candidate))
        if len(separators) > 1:
            continue
        if separators:
            groups = tuple(len(group) for group in candidate.split(separators.pop()))
            if groups not in formats.card_groupings:
                continue
        if luhn_valid(digits):
            yield match.span()


def _us_ssns(text: str, rules: PiiRules, formats: PiiFormats) -> Iterator[tuple[int, int]]:
    for match in _SSN.finditer(text):
        area, group, serial = match.groups()
        if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
            continue
        yield match.span()


def _valid_international(candidate: str, prefix: str, formats: PiiFormats) -> bool:
    groups = _DIGIT_GROUPS.findall(candidate)
    if len(groups) >= 3 and all(len(group) == 4 for group in groups[:3]):
        return False  # "0043 1579 7906 5980": the shape of card, order and account numbers, not of phones
    if candidate.count(".") == 1:
        return False  # "+35236450.6": one dot is a decimal point; dotted phones have two or more
    digits = _NON_DIGITS.sub("", _TRUNK_ZERO.sub("", candidate))
    if prefix == "00":
        if not any(char in " .-(" for char in candidate):
            return False  # a bare 00... run is more likely a plain number than a phone
        digits = digits[2:]
    if not formats.phone_min_digits <= len(digits) <= formats.phone_max_digits:
        return False
    country = next((digits[:size] for size in (1, 2, 3) if digits[:size] in _COUNTRY_CODES), None)
    if country is None:
        return False
    if country == "1":  # North American numbering plan: area code and exchange start 2-9
        return len(digits) == formats.nanp_digits and digits[1] >= "2" and digits[4] >= "2"
    return True


def _international_phones(text: str, rules: PiiRules, formats: PiiFormats) -> Iterator[tuple[int, int]]:
    for match in _INTERNATIONAL_PHONE.finditer(text):
        if _valid_international(match.group(), match.group("prefix"), formats):
            yield match.span()


def _nanp_phones(text: str, rules: PiiRules, formats: PiiFormats) -> Iterator[tuple[int, int]]:
    for match in _NANP_PHONE.finditer(text):
        yield match.span()


_Finder = Callable[[str, PiiRules, PiiFormats], Iterator[tuple[int, int]]]
# (stage, type, finder) in order of precedence; a type with two finders runs the more specific one first.
_STAGES: tuple[tuple[str, str, _Finder], ...] = (
    ("email", "email", _emails),
    ("credit_card", "credit_card", _credit_cards),
    ("us_ssn", "us_ssn", _us_ssns),
    ("ipv6", "ip_address", _ipv6_addresses),  # first, so "::ffff:8.8.8.8" is one address
    ("ipv4", "ip_address", _ipv4_addresses),
    ("international_phone", "phone", _international_phones),
    ("nanp_phone", "phone", _nanp_phones),
)
# Which type wins where candidates overlap (e.g. a card number is never also a phone).
PII_PRECEDENCE = tuple(dict.fromkeys(name for _, name, _ in _STAGES))


def find_pii(text: str, rules: PiiRules, formats: PiiFormats = PII_FORMATS) -> list[tuple[int, int, str]]:
    """The validated, non-overlapping PII spans ``(start, end, type)`` of one text, sorted by start."""
    return _find_spans(text, rules, formats, [stage for stage, _, _ in _STAGES])


def _find_spans(text: str, rules: PiiRules, formats: PiiFormats,
                stages: Collection[str]) -> list[tuple[int, int, str]]:
    """Spans of the enabled types found by ``stages``; a candidate overlapping a span an earlier stage
    accepted is dropped."""
    accepted: list[tuple[int, int, str]] = []
    taken_starts: list[int] = []  # accepted spans never overlap, so starts and ends sort alike
    taken_ends: list[int] = []
    for stage, name, finder in _STAGES:
        if stage not in stages or not getattr(rules, name):
            continue
        fresh = []
        for start, end in finder(text, rules, formats):
            after = bisect.bisect_right(taken_starts, start)
            if (after and taken_ends[after - 1] > start) or (after < len(taken_starts)
                                                              and taken_starts[after] < end):
                continue
            fresh.append((start, end, name))
        if fresh:  # one finder's matches never overlap each other, so they join after the stage
            accepted = sorted(accepted + fresh)
            taken_starts = [start for start, _, _ in accepted]
            taken_ends = [end for _, end, _ in accepted]
    return accepted


def _masked(text: str, spans: list[tuple[int, int, str]], rules: PiiRules) -> str:
    """``text`` with each span replaced by its type's placeholder."""
    pieces: list[str] = []
    position = 0
    for start, end, name in spans:
        pieces.append(text[position:start])
        pieces.append(getattr(rules, _PLACEHOLDER_FIELDS[name]))
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def mask_pii(texts: pa.Array, rules: PiiRules,
             formats: PiiFormats = PII_FORMATS) -> tuple[pa.Array, pa.Table]:
    """(masked texts, signals). Signals hold one row per text: int32 ``pii_<type>`` (matches masked per
    type), float64 ``pii_per_1k_chars`` and string ``pii_reason`` ("pii_density" or null). Nulls stay
    null; rows without PII keep their bytes, and the input array itself comes back when nothing is masked.
    ``formats`` holds the format facts the finders check (defaults suit every run)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    size = len(texts)
    counts = {name: np.zeros(size, dtype=np.int32) for name in PII_TYPES}
    candidate_rows = np.flatnonzero(pii_candidates(texts, rules, formats))
    candidates = texts.take(pa.array(candidate_rows, type=pa.int64()))
    patterns = _prefilter_patterns(rules, formats)
    # Which finders each flagged row needs (RE2 again, on the flagged rows only).
    possible = {stage: pc.match_substring_regex(candidates, patterns[stage]).to_pylist()
                for stage, name, _ in _STAGES if getattr(rules, name)}
    changed_rows: list[int] = []
    replacements: list[str] = []
    # A loop over the rows the pre-filter flagged (typically a few percent of a batch).
    for position, (row, text) in enumerate(zip(candidate_rows.tolist(), candidates.to_pylist(), strict=True)):
        stages = [stage for stage, flags in possible.items() if flags[position]]
        spans = _find_spans(text, rules, formats, stages)
        if not spans:
            continue
        for _, _, name in spans:
            counts[name][row] += 1
        changed_rows.append(row)
        replacements.append(_masked(text, spans, rules))

    masked = texts
    if changed_rows:
        replace = np.zeros(size, dtype=bool)
        replace[changed_rows] = True
        masked = pc.replace_with_mask(texts, pa.array(replace), pa.array(replacements, type=texts.type))

    total = np.sum([counts[name] for name in PII_TYPES], axis=0, dtype=np.float64)
    chars = pc.utf8_length(texts).fill_null(0).to_numpy(zero_copy_only=False).astype(np.float64)
    density = np.divide(total * 1000.0, chars, out=np.zeros(size), where=chars > 0)
    reasons = np.full(size, None, dtype=object)
    if rules.max_pii_per_1k_chars is not None:
        reasons[density > rules.max_pii_per_1k_chars] = DENSITY_REASON
    signals = pa.table({
        **{f"pii_{name}": pa.array(counts[name], type=pa.int32()) for name in PII_TYPES},
        "pii_per_1k_chars": pa.array(density, type=pa.float64()),
        "pii_reason": pa.array(reasons.tolist(), type=pa.string()),
    })
    return masked, signals
