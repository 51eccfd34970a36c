"""PII masking pinned on examples: what must be masked (exactly), what must not, counts, density, nulls."""

from __future__ import annotations

import dataclasses
import random

import pyarrow as pa
import pytest

from udfs.pii import (
    PII_PRECEDENCE,
    PII_TYPES,
    PiiFormats,
    PiiRules,
    find_pii,
    luhn_valid,
    mask_pii,
    pii_candidates,
)

RULES = PiiRules()

# (text, masked text, type of the one match)
POSITIVES = [
    ("Write to john.doe@example.com today.", "Write to <EMAIL_ADDRESS> today.", "email"),
    ("plus: jane+news@example.org.", "plus: <EMAIL_ADDRESS>.", "email"),
    ("sub: a.b@mail.sub.example.co.uk, thanks", "sub: <EMAIL_ADDRESS>, thanks", "email"),
    ("UPPER JOHN.DOE@EXAMPLE.COM end", "UPPER <EMAIL_ADDRESS> end", "email"),
    ("literal john@[93.184.216.34] end", "literal <EMAIL_ADDRESS> end", "email"),
    ("DNS is 8.8.8.8.", "DNS is <IP_ADDRESS>.", "ip_address"),
    ("host 93.184.216.34:443 up", "host <IP_ADDRESS>:443 up", "ip_address"),
    ("bare 1.2.3.4 here", "bare <IP_ADDRESS> here", "ip_address"),
    ("v6 2001:4860:4860::8888 ok", "v6 <IP_ADDRESS> ok", "ip_address"),
    ("v6 2001:4860:4860:0:0:0:0:8888 ok", "v6 <IP_ADDRESS> ok", "ip_address"),
    ("v6 2001:4860:4860:0000:0000:0000:0000:8888 ok", "v6 <IP_ADDRESS> ok", "ip_address"),
    ("mapped ::ffff:8.8.8.8 ok", "mapped <IP_ADDRESS> ok", "ip_address"),
    ("url http://[2001:4860:4860::8888]:80/", "url http://[<IP_ADDRESS>]:80/", "ip_address"),
    ("Call +1 (415) 555-2671 now", "Call <PHONE_NUMBER> now", "phone"),
    ("Call 415-555-2671.", "Call <PHONE_NUMBER>.", "phone"),
    ("Call (415) 555 2671 now", "Call <PHONE_NUMBER> now", "phone"),
    ("Call (415)555-2671 now", "Call <PHONE_NUMBER> now", "phone"),
    ("Call 415.555.2671 now", "Call <PHONE_NUMBER> now", "phone"),
    ("Call +1.415.555.2671 now", "Call <PHONE_NUMBER> now", "phone"),
    ("Call 1-415-555-2671 now", "Call <PHONE_NUMBER> now", "phone"),
    ("tel:+14155552671", "tel:<PHONE_NUMBER>", "phone"),
    ("London +44 20 7946 0958, ask", "London <PHONE_NUMBER>, ask", "phone"),
    ("London +44 (0)20 7946 0958 ask", "London <PHONE_NUMBER> ask", "phone"),
    ("Berlin +49 30 901820 ask", "Berlin <PHONE_NUMBER> ask", "phone"),
    ("Paris +33 1 42 68 53 00 ask", "Paris <PHONE_NUMBER> ask", "phone"),
    ("Berlin 0049 30 901820 ask", "Berlin <PHONE_NUMBER> ask", "phone"),
    ("Moscow +7 495 123-45-67 ask", "Moscow <PHONE_NUMBER> ask", "phone"),
    ("card 4111 1111 1111 1111 exp", "card <CREDIT_CARD> exp", "credit_card"),
    ("card 4111111111111111 exp", "card <CREDIT_CARD> exp", "credit_card"),
    ("card 5500-0000-0000-0004 exp", "card <CREDIT_CARD> exp", "credit_card"),
    ("amex 378282246310005 exp", "amex <CREDIT_CARD> exp", "credit_card"),
    ("amex 3782 822463 10005 exp", "amex <CREDIT_CARD> exp", "credit_card"),
    ("diners 3056 930902 5904 exp", "diners <CREDIT_CARD> exp", "credit_card"),
    ("discover 6011111111111117 exp", "discover <CREDIT_CARD> exp", "credit_card"),
    ("series two 2221 0000 0000 0009 exp", "series two <CREDIT_CARD> exp", "credit_card"),
    ("long visa 4111 1111 1111 1111 110 exp", "long visa <CREDIT_CARD> exp", "credit_card"),
    ("SSN 123-45-6789.", "SSN <US_SSN>.", "us_ssn"),
]

NEGATIVES = [
    # version strings, dates, times
    "version 1.2.3.4",
    "Version: 1.2.3.4 released",
    "firmware v. 2.0.0.1",
    "see section 3.2.1.4",
    "v1.2.3.4",
    "Windows 10.0.19041.1",
    "release v2.10.3",
    "OID 1.3.6.1.4.1",
    "octets 8.8.8.08",
    "on 2024-01-15",
    "on 15/01/2024",
    "on 2024.01.15",
    "at 10:30:00 UTC",
    "at 12:45",
    # book numbers, years, plain numbers, prices, order numbers
    "ISBN 978-3-16-148410-0",
    "ISBN 0-306-40615-2",
    "ISBN 9783161484100",
    "in the year 2024",
    "population 1234567",
    "price $1,234,567.89",
    "order 4111 1111 1111 1112",
    "order 1234567890123",
    "card 4111 1111 1111 1111 2024",
    "ref 0000 0000 0000 0000",
    "2**45 = 35184372088832",
    "https://web.archive.org/web/20170809091249/https://example.com/",
    "g = 269116466014453760",
    # phone-like runs too short or too long, and unknown country codes
    "+49 301",
    "+1 415 555 2671 999",
    "415-555-267",
    "415-555-26710",
    "415 555 2671",
    "+1 155 555 2671",
    "+99 123 456 789",
    "00491234",
    "Decimal('+35236450.6')",
    "pi is +3.14159265358",
    "order 0043 1579 7906 5980",
    "account 0049 1234 5678 901",
    "<fraction> 0031 2044 0034",
    # private and special addresses (default rules)
    "192.168.1.1",
    "10.0.0.1",
    "127.0.0.1",
    "::1",
    "fe80::1",
    "2001:db8::1",
    "0.0.0.0",
    "224.0.0.1",
    "100.64.0.1",
    "ssh root@192.168.1.1",
    "std::vector<int>",
    "MAC 00:1A:2B:3C:4D:5E",
    "1.2.3.4.5",
    # not e-mail addresses
    "user@localhost",
    "image@2x.png",
    "logo@3x.ai",
    "user@host.local",
    "https://medium.com/@user/post",
    "follow @example.com",
    # invalid SSNs
    "000-12-3456",
    "666-12-3456",
    "900-12-3456",
    "123-00-4567",
    "123-45-0000",
    "123-45-6789-1",
]

PRIVATE_ADDRESSES = ["192.168.1.1", "10.0.0.1", "127.0.0.1", "::1", "fe80::1", "2001:db8::1", "100.64.0.1"]


def _one(text: str, rules: PiiRules = RULES) -> tuple[str, dict]:
    masked, signals = mask_pii(pa.array([text]), rules)
    return masked[0].as_py(), signals.to_pylist()[0]


@pytest.mark.parametrize(("text", "expected", "kind"), POSITIVES)
def test_masks_pii(text: str, expected: str, kind: str) -> None:
    masked, row = _one(text)
    assert masked == expected
    assert {name: row[f"pii_{name}"] for name in PII_TYPES} == {name: int(name == kind) for name in PII_TYPES}
    assert row["pii_per_1k_chars"] == pytest.approx(1000 / len(text))
    assert row["pii_reason"] is None


@pytest.mark.parametrize("text", NEGATIVES)
def test_leaves_non_pii_alone(text: str) -> None:
    masked, row = _one(text)
    assert masked == text
    assert all(row[f"pii_{name}"] == 0 for name in PII_TYPES)
    assert row["pii_per_1k_chars"] == 0.0


@pytest.mark.parametrize("address", PRIVATE_ADDRESSES)
def test_private_addresses_masked_only_when_asked(address: str) -> None:
    text = f"host {address} up"
    assert _one(text)[0] == text
    masked, row = _one(text, PiiRules(mask_private_ips=True))
    assert masked == "host <IP_ADDRESS> up" and row["pii_ip_address"] == 1


def test_mask_private_ips_keeps_versions_and_unspecified() -> None:
    rules = PiiRules(mask_private_ips=True)
    for text in ("version 1.2.3.4", "bind 0.0.0.0", "std::vector", "10.0.19041.1"):
        assert _one(text, rules)[0] == text


def test_counts_per_type_and_density() -> None:
    text = ("Mail a@example.com or b@example.org, call 415-555-2671, pay with 4111 1111 1111 1111, "
            "SSN 123-45-6789, server 8.8.8.8 and 2001:4860:4860::8888.")
    masked, row = _one(text)
    assert masked == ("Mail <EMAIL_ADDRESS> or <EMAIL_ADDRESS>, call <PHONE_NUMBER>, pay with <CREDIT_CARD>, "
                      "SSN <US_SSN>, server <IP_ADDRESS> and <IP_ADDRESS>.")
    assert (row["pii_email"], row["pii_ip_address"], row["pii_phone"], row["pii_credit_card"],
            row["pii_us_ssn"]) == (2, 2, 1, 1, 1)
    assert row["pii_per_1k_chars"] == pytest.approx(7 * 1000 / len(text))


def test_density_reason() -> None:
    dense = "a@example.com " * 10  # 10 matches in 140 chars: 71.4 per 1k
    sparse = "a@example.com " + "word " * 198  # 1 match in 1004 chars: 0.996 per 1k
    exact = "a@example.com" + "." * 987  # 1 match in 1000 chars: exactly 1.0 per 1k
    texts = pa.array([dense, sparse, exact, "no pii", None])
    _, signals = mask_pii(texts, PiiRules(max_pii_per_1k_chars=1.0))
    assert signals.column("pii_reason").to_pylist() == ["pii_density", None, None, None, None]
    densities = signals.column("pii_per_1k_chars").to_pylist()
    assert densities == pytest.approx([10000 / 140, 1000 / 1004, 1.0, 0, 0])
    _, unlimited = mask_pii(texts, RULES)
    assert unlimited.column("pii_reason").null_count == 5


def test_signals_schema() -> None:
    _, signals = mask_pii(pa.array(["x"]), RULES)
    assert signals.schema == pa.schema(
        [(f"pii_{name}", pa.int32()) for name in PII_TYPES]
        + [("pii_per_1k_chars", pa.float64()), ("pii_reason", pa.string())])


def test_nulls_stay_null() -> None:
    texts = pa.array([None, "mail a@example.com", None, ""])
    masked, signals = mask_pii(texts, RULES)
    assert masked.to_pylist() == [None, "mail <EMAIL_ADDRESS>", None, ""]
    assert signals.column("pii_email").to_pylist() == [0, 1, 0, 0]
    assert signals.column("pii_per_1k_chars").to_pylist()[::2] == [0.0, 0.0]


def test_no_pii_returns_the_input_itself() -> None:
    texts = pa.array(["plain text", None, "version 1.2.3.4 on 2024-01-15", "user@localhost"])
    masked, signals = mask_pii(texts, RULES)
    assert masked is texts
    assert signals.num_rows == 4


def test_rows_without_pii_keep_their_bytes() -> None:
    texts = pa.array(["naïve café ☕ text", "mail a@example.com now", "tabs\tand\nnewlines  "],
                     type=pa.large_string())
    masked, _ = mask_pii(texts, RULES)
    assert masked.type == pa.large_string()
    assert masked[0].as_buffer().to_pybytes() == "naïve café ☕ text".encode()
    assert masked[2].as_buffer().to_pybytes() == b"tabs\tand\nnewlines  "
    assert masked[1].as_py() == "mail <EMAIL_ADDRESS> now"


def test_mixed_batch() -> None:
    texts = pa.array([
        "Nothing here but 2024-01-15 and ISBN 0-306-40615-2.",
        "Reach me at JANE@EXAMPLE.COM or +49 30 901820.",
        None,
        "Card 5500-0000-0000-0004; not 5500-0000-0000-0005.",
        "Private 10.0.0.1, public 93.184.216.34, SSN 123-45-6789 but not 666-12-3456.",
    ])
    masked, signals = mask_pii(texts, RULES)
    assert masked.to_pylist() == [
        "Nothing here but 2024-01-15 and ISBN 0-306-40615-2.",
        "Reach me at <EMAIL_ADDRESS> or <PHONE_NUMBER>.",
        None,
        "Card <CREDIT_CARD>; not 5500-0000-0000-0005.",
        "Private 10.0.0.1, public <IP_ADDRESS>, SSN <US_SSN> but not 666-12-3456.",
    ]
    assert signals.column("pii_email").to_pylist() == [0, 1, 0, 0, 0]
    assert signals.column("pii_phone").to_pylist() == [0, 1, 0, 0, 0]
    assert signals.column("pii_credit_card").to_pylist() == [0, 0, 0, 1, 0]
    assert signals.column("pii_ip_address").to_pylist() == [0, 0, 0, 0, 1]
    assert signals.column("pii_us_ssn").to_pylist() == [0, 0, 0, 0, 1]


def test_chunked_and_empty_inputs() -> None:
    chunked = pa.chunked_array([["a@example.com"], ["nothing", "8.8.8.8"]])
    masked, signals = mask_pii(chunked, RULES)
    assert masked.to_pylist() == ["<EMAIL_ADDRESS>", "nothing", "<IP_ADDRESS>"]
    masked, signals = mask_pii(pa.array([], type=pa.string()), RULES)
    assert len(masked) == 0 and signals.num_rows == 0


def test_overlaps_follow_precedence() -> None:
    assert PII_PRECEDENCE == ("email", "credit_card", "us_ssn", "ip_address", "phone")
    cases = {
        # a card number is one card, not a phone as well
        "pay 4111-1111-1111-1111 now": ("pay <CREDIT_CARD> now", "credit_card"),
        # an SSN inside an e-mail's local part is part of the e-mail
        "id 123-45-6789@example.com": ("id <EMAIL_ADDRESS>", "email"),
        # the address in an e-mail literal counts as the e-mail only
        "to bob@[8.8.8.8] now": ("to <EMAIL_ADDRESS> now", "email"),
        # an IPv4-mapped IPv6 address is one address
        "at ::ffff:93.184.216.34 now": ("at <IP_ADDRESS> now", "ip_address"),
        # a phone number in a domain is part of the e-mail
        "x@call-415-555-2671.com": ("<EMAIL_ADDRESS>", "email"),
    }
    for text, (expected, kind) in cases.items():
        masked, row = _one(text)
        assert masked == expected, text
        assert sum(row[f"pii_{name}"] for name in PII_TYPES) == 1 and row[f"pii_{kind}"] == 1, text


def test_find_pii_spans_are_sorted_and_disjoint() -> None:
    text = "8.8.8.8 a@example.com 123-45-6789, +44 20 7946 0958, 4111111111111111"
    spans = find_pii(text, RULES)
    assert [(text[start:end], kind) for start, end, kind in spans] == [
        ("8.8.8.8", "ip_address"), ("a@example.com", "email"), ("123-45-6789", "us_ssn"),
        ("+44 20 7946 0958", "phone"), ("4111111111111111", "credit_card")]


@pytest.mark.parametrize("kind", PII_TYPES)
def test_disabled_type_is_left_alone(kind: str) -> None:
    examples = {"email": "a@example.com", "ip_address": "8.8.8.8", "phone": "+1 (415) 555-2671",
                "credit_card": "4111 1111 1111 1111", "us_ssn": "123-45-6789"}
    text = " | ".join(examples.values())
    masked, row = _one(text, dataclasses.replace(RULES, **{kind: False}))
    assert examples[kind] in masked
    assert row[f"pii_{kind}"] == 0
    assert all(row[f"pii_{name}"] == 1 for name in PII_TYPES if name != kind)
    assert masked.count("<") == len(PII_TYPES) - 1


def test_disabled_card_is_not_taken_for_a_phone() -> None:
    masked, row = _one("card 4111 1111 1111 1111", PiiRules(credit_card=False))
    assert masked == "card 4111 1111 1111 1111" and row["pii_phone"] == 0


def test_custom_placeholders() -> None:
    rules = PiiRules(email_placeholder="[E]", ip_placeholder="[I]", phone_placeholder="[P]",
                     credit_card_placeholder="[C]", us_ssn_placeholder="")
    masked, _ = _one("a@example.com 8.8.8.8 415-555-2671, 4111111111111111, x123-45-6789 123-45-6789.", rules)
    assert masked == "[E] [I] [P], [C], x123-45-6789 ."


def test_all_types_disabled_masks_nothing() -> None:
    rules = PiiRules(email=False, ip_address=False, phone=False, credit_card=False, us_ssn=False)
    texts = pa.array(["a@example.com 8.8.8.8"])
    masked, signals = mask_pii(texts, rules)
    assert masked is texts and signals.column("pii_per_1k_chars").to_pylist() == [0.0]


def test_prefilter_flags_only_rows_that_may_hold_pii() -> None:
    texts = pa.array([
        "An ordinary sentence from 2024 with a price of $12.99 and version 3.11.",
        "mail a@example.com",
        None,
        "call +44 20 7946 0958",
        "ISBN 978-3-16-148410-0 on 15/01/2024 at 10:30",
    ])
    assert pii_candidates(texts, RULES).tolist() == [False, True, False, True, False]
    assert pii_candidates(texts, PiiRules(email=False)).tolist() == [False, False, False, True, False]


def test_formats_are_honoured() -> None:
    texts = pa.array(["amex 3782 822463 10005", "Berlin +49 30 901820", "a 4111111111111111"])
    narrow = PiiFormats(card_groupings=((4, 4, 4, 4),), phone_min_digits=11,
                        card_networks=(("51", "55", (16,)),))
    masked, _ = mask_pii(texts, RULES, narrow)
    assert masked.to_pylist() == texts.to_pylist()
    masked, _ = mask_pii(texts, RULES)
    assert masked.to_pylist() == ["amex <CREDIT_CARD>", "Berlin <PHONE_NUMBER>", "a <CREDIT_CARD>"]


def test_email_length_limits() -> None:
    local = "a" * 64
    assert _one(f"to {local}@example.com now")[0] == "to <EMAIL_ADDRESS> now"
    assert _one(f"to a{local}@example.com now")[0] == f"to a{local}@example.com now"
    assert _one(f"{local}@example.com")[0] == "<EMAIL_ADDRESS>"  # a local part starting the text
    long_domain = ".".join(["b" * 60] * 4) + ".com"  # 248 characters: allowed
    assert _one(f"x@{long_domain}")[0] == "<EMAIL_ADDRESS>"
    assert _one(f"x@c{'c' * 8}.{long_domain}")[0] == f"x@c{'c' * 8}.{long_domain}"  # 258 characters


def test_luhn() -> None:
    for number in ("4111111111111111", "5500000000000004", "378282246310005", "79927398713"):
        assert luhn_valid(number), number
    for number in ("4111111111111112", "5500000000000005", "79927398710"):
        assert not luhn_valid(number), number


def test_dense_document_is_linear() -> None:
    # 40,000 matches in one document: the overlap bookkeeping must not be quadratic.
    text = "id a@example.com at 8.8.8.8; " * 20_000
    masked, row = _one(text)
    assert row["pii_email"] == 20_000 and row["pii_ip_address"] == 20_000
    assert masked == "id <EMAIL_ADDRESS> at <IP_ADDRESS>; " * 20_000


def test_prefilter_never_hides_a_match() -> None:
    # Random concatenations of PII, near-PII and separators: the batch path (RE2 pre-filter, then only the
    # finders a row's pre-filter flags) must mask exactly what running every finder on every text masks.
    pieces = [text for text, _, _ in POSITIVES] + NEGATIVES + PRIVATE_ADDRESSES + [
        " ", " ", "\n", ".", ",", "-", "(", ")", "+", "0", "1", "9", ":", "::", "@", "x", "00", "version "]
    rng = random.Random(3)
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 8))) for _ in range(1500)]
    for rules in (RULES, PiiRules(mask_private_ips=True)):
        masked, _ = mask_pii(pa.array(texts), rules)
        expected = []
        for text in texts:
            pieces_out, position = [], 0
            for start, end, kind in find_pii(text, rules):
                placeholder = {"email": rules.email_placeholder, "ip_address": rules.ip_placeholder,
                               "phone": rules.phone_placeholder, "credit_card": rules.credit_card_placeholder,
                               "us_ssn": rules.us_ssn_placeholder}[kind]
                pieces_out += [text[position:start], placeholder]
                position = end
            expected.append("".join([*pieces_out, text[position:]]))
        assert masked.to_pylist() == expected
        assert sum(a != b for a, b in zip(texts, expected, strict=True)) > 500  # the check is not vacuous
