"""The demo corpus generator: deterministic, parallel-safe, and its ground truth matches the files."""

from __future__ import annotations

import gzip
import ipaddress
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from udfs.demo_corpus import (
    BLOCKLIST,
    DOMAINS,
    FLAGGED_WORDS,
    FOREIGN,
    LANGUAGES,
    LOW_QUALITY_KINDS,
    MALFORMED_KINDS,
    PII_TYPES,
    DemoSpec,
    Plants,
    benchmark_items,
    format_quiz,
    jaccard,
    luhn_valid,
    original_page,
    page_at,
    role_of,
    toxicity_doc,
    us_ssn_valid,
    word_shingles,
    write_demo_corpus,
)

SPEC = DemoSpec(docs=1_200, seed=11, shard_docs=400, malformed_rate=0.02, workers=1, reference_docs=300,
                toxicity_docs=400)
# Plants at high rates, so that every kind is present many times in a small corpus.
PLANTED = DemoSpec(docs=1_500, seed=13, shard_docs=500, workers=1, reference_docs=0, benchmark_items=40,
                   toxicity_docs=600, pii_rate=0.1, pii_decoy_rate=0.1, leak_rate=0.05, leak_decoy_rate=0.05,
                   blocked_rate=0.08, lookalike_rate=0.08, toxic_rate=0.06)
PLANT_COLUMNS = ("pii_types", "pii_values", "pii_decoys", "benchmark_item", "leak_decoy", "blocked_category",
                 "lookalike", "toxic")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    return out, write_demo_corpus(str(out), SPEC)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, dict[str, dict], dict[str, str]]:
    """The PLANTED corpus: its folder, truth rows by id and document texts by id."""
    out = tmp_path_factory.mktemp("planted")
    write_demo_corpus(str(out), PLANTED)
    truth = {row["id"]: row for row in ds.dataset(out / "truth" / "docs").to_table().to_pylist()}
    return out, truth, _texts(out)


def _lines(out: Path) -> dict[str, list[bytes]]:
    return {p.name: gzip.decompress(p.read_bytes()).splitlines() for p in sorted(out.glob("*.jsonl.gz"))}


def _texts(out: Path) -> dict[str, str]:
    texts = {}
    for shard in _lines(out).values():
        for line in shard:
            try:
                record = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(record, dict) and str(record.get("id", "")).startswith("demo-"):
                texts[record["id"]] = record["text"]
    return texts


def _urls(out: Path) -> dict[str, str]:
    urls = {}
    for shard in _lines(out).values():
        for line in shard:
            if line.startswith(b'{"id": "demo-'):
                record = json.loads(line)
                urls[record["id"]] = record["url"]
    return urls


def _side_files(out: Path) -> dict[str, bytes]:
    """Everything but the shards, decompressed (gzip headers carry a timestamp)."""
    files = {}
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.parent != out:
            data = path.read_bytes()
            files[str(path.relative_to(out))] = gzip.decompress(data) if path.suffix == ".gz" else data
    return files


def test_same_seed_same_bytes_and_workers_do_not_matter(corpus, tmp_path):
    out, _ = corpus
    write_demo_corpus(str(tmp_path), replace(SPEC, workers=2))
    assert _lines(out) == _lines(tmp_path)
    ours, theirs = _side_files(out), _side_files(tmp_path)  # truth, benchmark, blocklist, toxicity, lists
    summaries = [json.loads(files.pop("truth/summary.json")) for files in (ours, theirs)]
    assert ours == theirs
    assert [summary["spec"].pop("workers") for summary in summaries] == [1, 2]
    assert summaries[0] == summaries[1]


def test_another_seed_gives_another_corpus(corpus, tmp_path):
    out, _ = corpus
    write_demo_corpus(str(tmp_path), replace(SPEC, seed=12))
    assert _lines(out)["shard-00000.jsonl.gz"][:50] != _lines(tmp_path)["shard-00000.jsonl.gz"][:50]
    assert (out / "benchmarks" / "demo_qa.jsonl").read_bytes() != \
        (tmp_path / "benchmarks" / "demo_qa.jsonl").read_bytes()


def test_summary_and_truth_match_the_files(corpus):
    out, summary = corpus
    lines = _lines(out)
    truth = ds.dataset(out / "truth" / "docs").to_table().to_pylist()
    malformed = [json.loads(line) for line in (out / "truth" / "malformed.jsonl").read_text().splitlines()]
    assert summary["documents"] == len(truth) == SPEC.docs
    assert summary["records"] == sum(len(v) for v in lines.values()) == len(truth) + len(malformed)
    for row in truth[:200]:
        record = json.loads(lines[row["file"]][row["line"] - 1])
        assert record["id"] == row["id"]
    assert set(summary["malformed_kinds"]) <= set(MALFORMED_KINDS) and len(malformed) > 5
    for bad in malformed:
        line = lines[bad["file"]][bad["line"] - 1]
        assert not line.startswith(b'{"id": "demo-')
    assert set(summary["domains"]) == set(DOMAINS)
    assert set(summary["langs"]) == {"en", *FOREIGN}
    planted = {"boilerplate", "keyword_stuffing", "repeated_lines", "too_short", "spam"}
    assert planted <= set(summary["quality"])
    plants = summary["plants"]
    assert plants["pii"] == sum(bool(row["pii_types"]) for row in truth) > 0
    assert plants["pii_decoy"] == sum(bool(row["pii_decoys"]) for row in truth) > 0
    assert plants["leak"] == sum(row["benchmark_item"] is not None for row in truth)
    assert plants["leak_decoy"] == sum(row["leak_decoy"] for row in truth)
    assert plants["blocked"] == sum(row["blocked_category"] is not None for row in truth) > 0
    assert plants["lookalike"] == sum(row["lookalike"] for row in truth) > 0
    assert plants["toxic"] == sum(row["toxic"] for row in truth) > 0
    assert sum(summary["pii_types"].values()) == sum(len(row["pii_types"]) for row in truth)
    assert summary["toxicity_labels"]["toxic"] + summary["toxicity_labels"]["clean"] == SPEC.toxicity_docs


def test_duplicates_point_at_originals_with_the_recorded_similarity(corpus):
    out, _ = corpus
    truth = {row["id"]: row for row in ds.dataset(out / "truth" / "docs").to_table().to_pylist()}
    texts = _texts(out)
    exact = [r for r in truth.values() if r["dup_kind"] == "exact"]
    near = [r for r in truth.values() if r["dup_kind"] == "near"]
    assert exact and near
    for row in exact:
        assert truth[row["dup_of"]]["dup_kind"] == "original"
        assert texts[row["id"]] == texts[row["dup_of"]]
    for row in near:
        measured = jaccard(word_shingles(texts[row["id"]]), word_shingles(texts[row["dup_of"]]))
        assert measured == pytest.approx(row["jaccard"])
        assert abs(measured - row["jaccard_target"]) < 0.1


def test_duplicates_copy_their_root_plants_and_keep_the_planted_strings(planted):
    _, truth, texts = planted
    copies = [row for row in truth.values() if row["dup_kind"] != "original"
              and any(truth[row["dup_of"]][column] for column in PLANT_COLUMNS)]
    assert sum(row["dup_kind"] == "near" for row in copies) >= 10
    items = {item.id: item for item in benchmark_items(PLANTED.seed, PLANTED.benchmark_items)}
    for row in copies:
        root = truth[row["dup_of"]]
        assert [row[column] for column in PLANT_COLUMNS] == [root[column] for column in PLANT_COLUMNS]
        for value in row["pii_values"] + row["pii_decoys"]:
            assert value in texts[row["id"]]
        if row["benchmark_item"]:
            assert format_quiz(items[row["benchmark_item"]]) in texts[row["id"]]


def test_pages_are_pure_functions_of_seed_and_index():
    assert page_at(SPEC, 777)[0] == page_at(SPEC, 777)[0]
    assert role_of(SPEC, 5).kind == "original"  # the first pages are never duplicates


def test_rejects_empty_specs_and_impossible_plant_rates(tmp_path):
    with pytest.raises(ValueError):
        write_demo_corpus(str(tmp_path), replace(SPEC, docs=0))
    with pytest.raises(ValueError, match="plant rates"):
        write_demo_corpus(str(tmp_path), replace(SPEC, pii_rate=0.6, toxic_rate=0.5))
    with pytest.raises(ValueError, match="plant rates"):
        write_demo_corpus(str(tmp_path), replace(SPEC, blocked_rate=-0.1))


# ------------------------------------------------------------------------------------------ plants


def test_each_plant_appears_at_its_rate_on_good_english_pages():
    spec = DemoSpec(docs=8_000, seed=3, workers=1)
    pages = [original_page(spec, index) for index in range(spec.docs)]
    eligible = [page for page in pages if page.lang == "en" and page.quality == "good"]
    observed = {
        "pii": sum(bool(p.plants.pii_types) for p in eligible),
        "pii_decoy": sum(bool(p.plants.pii_decoys) for p in eligible),
        "leak": sum(p.plants.benchmark_item is not None for p in eligible),
        "leak_decoy": sum(p.plants.leak_decoy for p in eligible),
        "blocked": sum(p.plants.blocked_category is not None for p in eligible),
        "lookalike": sum(p.plants.lookalike for p in eligible),
        "toxic": sum(p.plants.toxic for p in eligible),
    }
    for kind, rate in spec.plant_rates():
        sigma = math.sqrt(rate * (1 - rate) * len(eligible))
        assert abs(observed[kind] - rate * len(eligible)) < 4 * sigma, (kind, observed[kind], len(eligible))
        assert observed[kind] > 0
    others = [page for page in pages if page.lang != "en" or page.quality != "good"]
    assert others and all(page.plants == Plants() for page in others)  # only good English pages carry plants
    assert all(len([v for v in (p.plants.pii_types, p.plants.pii_decoys, p.plants.benchmark_item,
                                p.plants.leak_decoy, p.plants.blocked_category, p.plants.lookalike,
                                p.plants.toxic) if v]) <= 1 for p in eligible)  # at most one plant a page


def test_luhn_and_ssn_checks():
    assert luhn_valid("4111 1111 1111 1111") and luhn_valid("378282246310005")
    assert not luhn_valid("4111 1111 1111 1112") and not luhn_valid("") and not luhn_valid("no digits")
    assert us_ssn_valid("123-45-6789") and us_ssn_valid("899-01-0001")
    for invalid in ("000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000", "123456789",
                    "123-45-678"):
        assert not us_ssn_valid(invalid), invalid


def _pii_is_valid(kind: str, value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    if kind == "email":
        return re.fullmatch(r"[a-z0-9._]+@[a-z0-9.-]+\.[a-z]{2,}", value) is not None
    if kind == "phone":
        us_fiction, uk_fiction = r"(\(\d{3}\) |\d{3}-|\+1 \d{3} )555[- ]01\d\d", r"\+44 20 7946 0\d{3}"
        return re.fullmatch(f"{us_fiction}|{uk_fiction}", value) is not None
    if kind == "ip_address":
        address = ipaddress.ip_address(value)
        return address.is_global and not address.is_multicast
    if kind == "credit_card":
        issuer_ok = (len(digits) == 16 and (digits[0] == "4" or 51 <= int(digits[:2]) <= 55)) or \
            (len(digits) == 15 and digits[:2] in ("34", "37"))
        return issuer_ok and luhn_valid(digits)
    return kind == "us_ssn" and us_ssn_valid(value)


def test_pii_values_are_valid_and_printed_in_their_page(planted):
    _, truth, texts = planted
    rows = [row for row in truth.values() if row["pii_types"]]
    assert len(rows) > 60
    assert {kind for row in rows for kind in row["pii_types"]} == set(PII_TYPES)
    versions = set()
    for row in rows:
        assert len(row["pii_types"]) == len(row["pii_values"]) in (1, 2)
        assert row["lang"] == "en" and row["quality"] == "good" and not row["pii_decoys"]
        for kind, value in zip(row["pii_types"], row["pii_values"], strict=True):
            assert value in texts[row["id"]]
            assert _pii_is_valid(kind, value), (kind, value)
            if kind == "ip_address":
                versions.add(ipaddress.ip_address(value).version)
    assert versions == {4, 6}
    assert not _pii_is_valid("credit_card", "4111 1111 1111 1112")  # the checker itself rejects bad values
    assert not _pii_is_valid("ip_address", "192.168.1.20")


def _decoy_kind(value: str) -> str:
    if value.startswith("978-"):
        return "isbn"
    if re.fullmatch(r"\d{4}-\d\d-\d\d|\d\d/\d\d/\d{4}", value):
        return "date"
    if value[0] in "$€£":
        return "price"
    if re.fullmatch(r"\d{4}([ -]\d{4}){3}", value):
        return "order_number"
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", value) and all(int(part) < 256 for part in value.split(".")):
        return "private_ip"
    return "version"


def test_pii_decoys_look_like_pii_but_are_not(planted):
    _, truth, texts = planted
    rows = [row for row in truth.values() if row["pii_decoys"]]
    assert len(rows) > 60
    kinds = set()
    for row in rows:
        assert not row["pii_types"]
        for value in row["pii_decoys"]:
            assert value in texts[row["id"]]
            kind = _decoy_kind(value)
            kinds.add(kind)
            if kind == "order_number":
                assert not luhn_valid(value)
            elif kind == "private_ip":
                assert ipaddress.ip_address(value).is_private
            elif kind == "version":
                assert re.fullmatch(r"v\d+\.\d+\.\d+|\d+\.\d\.\d{4,5}\.\d+", value), value
                with pytest.raises(ValueError):
                    ipaddress.ip_address(value)
            elif kind == "isbn":
                digits = [int(d) for d in value if d.isdigit()]
                weighted = sum(digit * (3 if i % 2 else 1) for i, digit in enumerate(digits))
                assert len(digits) == 13 and weighted % 10 == 0
    assert kinds == {"version", "date", "isbn", "private_ip", "price", "order_number"}
    clean = [texts[row["id"]] for row in truth.values() if not row["pii_types"] and not row["pii_decoys"]]
    assert not any("@" in text for text in clean)  # no stray emails outside planted pages


def test_benchmark_file_is_valid(planted):
    out, _, _ = planted
    records = [json.loads(line) for line in (out / "benchmarks" / "demo_qa.jsonl").read_text().splitlines()]
    assert len(records) == PLANTED.benchmark_items == len({record["id"] for record in records})
    assert records == [item.to_json() for item in benchmark_items(PLANTED.seed, PLANTED.benchmark_items)]
    for record in records:
        assert set(record) == {"id", "question", "choices", "answer"}
        assert 15 <= len(record["question"].split()) <= 30 and record["question"].endswith("?")
        assert len(record["choices"]) == len(set(record["choices"])) == 4 and record["answer"] in "ABCD"
    grams = [set(_ngrams(record["question"], 13)) for record in records]
    assert all(not grams[i] & grams[j] for i in range(len(grams)) for j in range(i))  # each item identifiable


def _ngrams(text: str, size: int) -> list[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return [tuple(words[i : i + size]) for i in range(len(words) - size + 1)]


def test_leaked_items_appear_verbatim_and_decoys_share_only_short_phrases(planted):
    _, truth, texts = planted
    items = {item.id: item for item in benchmark_items(PLANTED.seed, PLANTED.benchmark_items)}
    item_13grams = {gram for item in items.values() for gram in _ngrams(format_quiz(item), 13)}
    too_long = PLANTED.leak_decoy_max_shared_words + 1
    item_long_grams = {gram for item in items.values() for gram in _ngrams(format_quiz(item), too_long)}
    item_6grams = {gram for item in items.values() for gram in _ngrams(format_quiz(item), 6)}
    leaks = [row for row in truth.values() if row["benchmark_item"]]
    decoys = [row for row in truth.values() if row["leak_decoy"]]
    assert len(leaks) > 20 and len(decoys) > 20
    for row in leaks:
        quiz = format_quiz(items[row["benchmark_item"]])
        assert quiz in texts[row["id"]] and row["lang"] == "en"
        assert "\nA. " in quiz and quiz.endswith(f"Answer: {items[row['benchmark_item']].answer}")
    for row in decoys:
        grams = _ngrams(texts[row["id"]], 6)
        assert item_6grams.intersection(grams)  # shares a stock opening of at least 6 words ...
        assert not item_long_grams.intersection(_ngrams(texts[row["id"]], too_long))  # ... but never 9
    for row in truth.values():  # only leaks carry a 13-gram of the benchmark
        if not row["benchmark_item"]:
            assert not item_13grams.intersection(_ngrams(texts[row["id"]], 13)), row["id"]


def _read_blocklist(root: Path) -> dict[str, dict[str, list[str]]]:
    """UT1 layout: <category>/domains and <category>/urls, '#' comments and blank lines ignored."""
    lists = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        lists[folder.name] = {}
        for kind in ("domains", "urls"):
            lines = (folder / kind).read_text(encoding="utf-8").splitlines()
            assert lines[0].startswith("#")
            lists[folder.name][kind] = [line.strip() for line in lines
                                        if line.strip() and not line.startswith("#")]
    return lists


def _blocked_by(url: str, lists: dict[str, dict[str, list[str]]]) -> str | None:
    """Reference matcher: a host is covered by a listed host and its subdomains (whole labels); a URL by a
    listed prefix ending at a path-segment boundary."""
    host_and_path = re.sub(r"^https?://", "", url)
    host = host_and_path.split("/", 1)[0]
    for category, entries in lists.items():
        if any(host == entry or host.endswith("." + entry) for entry in entries["domains"]):
            return category
        if any(host_and_path == entry or host_and_path.startswith(entry + "/") for entry in entries["urls"]):
            return category
    return None


def test_blocklist_folder_parses_and_covers_exactly_the_blocked_pages(planted):
    out, truth, _ = planted
    lists = _read_blocklist(out / "blocklist")
    assert lists == {category: {kind: list(entries) for kind, entries in kinds.items()}
                     for category, kinds in BLOCKLIST.items()}
    assert {"adult", "gambling", "malware"} <= set(lists)
    urls = _urls(out)
    blocked = [row for row in truth.values() if row["blocked_category"]]
    lookalikes = [row for row in truth.values() if row["lookalike"]]
    assert len(blocked) > 50 and len(lookalikes) > 50
    assert {row["blocked_category"] for row in blocked} == set(lists)
    for row in truth.values():
        assert _blocked_by(urls[row["id"]], lists) == row["blocked_category"], urls[row["id"]]
    hosts = [re.sub(r"^https://", "", urls[row["id"]]).split("/")[0] for row in blocked]
    assert any(host in lists["adult"]["domains"] for host in hosts)  # the listed host itself
    assert any(host.count(".") >= 3 for host in hosts)  # deep subdomains (a.b.<listed>)
    every_entry = [e for kinds in lists.values() for entries in kinds.values() for e in entries]
    naive = [row for row in lookalikes if any(entry in urls[row["id"]] for entry in every_entry)]
    assert len(naive) > 10  # lookalikes a substring matcher would wrongly block ...
    prefixes = [entry for kinds in lists.values() for entry in kinds["urls"]]
    assert any(re.sub(r"^https://", "", urls[row["id"]]).startswith(tuple(prefixes))
               for row in lookalikes)  # paths sharing a listed prefix string, not its whole segment
    for row in blocked + lookalikes:  # ... with ordinary text, so only the URL can tell
        assert row["lang"] == "en" and row["quality"] == "good" and not row["toxic"]


def _flagged(text: str, lang: str = "en") -> int:
    return sum(word in FLAGGED_WORDS[lang] for word in re.findall(r"\w+", text.lower()))


def test_toxic_pages_are_abusive_forum_threads_otherwise_well_formed(planted):
    _, truth, texts = planted
    toxic = [row for row in truth.values() if row["toxic"]]
    assert len(toxic) > 30
    for row in toxic:
        text = texts[row["id"]]
        assert row["domain"] == "forum" and row["lang"] == "en" and row["quality"] == "good"
        assert text.startswith("Posted by user") and text.count("Posted by user") >= 4
        assert len(text.split()) >= 50
        assert all(line.endswith((":", ".", "!", "?")) for line in text.splitlines() if line)
    assert sum(_flagged(texts[row["id"]]) >= 1 for row in toxic) >= 0.95 * len(toxic)
    assert not any(_flagged(texts[row["id"]]) for row in truth.values() if not row["toxic"])


def test_toxicity_set_is_balanced_needs_more_than_a_word_list_and_is_not_in_the_crawl(planted):
    out, _, texts = planted
    with gzip.open(out / "reference" / "toxicity.jsonl.gz", "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    assert len(records) == PLANTED.toxicity_docs == len({record["id"] for record in records})
    assert records[7] == toxicity_doc(PLANTED, 7)
    labels = [record["label"] for record in records]
    assert set(labels) == {"toxic", "clean"} and 0.4 < labels.count("toxic") / len(labels) < 0.6
    clean = [record["text"] for record in records if record["label"] == "clean"]
    toxic = [record["text"] for record in records if record["label"] == "toxic"]
    assert sum(_flagged(text) > 0 for text in clean) > 0.15 * len(clean)  # benign uses of flagged words
    assert any("I hate it when my build breaks" in text for text in clean)
    assert sum(_flagged(text) == 0 for text in toxic) > 0.15 * len(toxic)  # contempt without flagged words
    assert not {record["text"] for record in records} & set(texts.values())
    assert not any(record["id"].startswith("demo-") for record in records)
    for lang in ("en", "de"):
        lines = (out / "wordlists" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("#")
        assert [line for line in lines if not line.startswith("#")] == list(FLAGGED_WORDS[lang])
    assert {"idiot", "moron", "pathetic", "loser", "garbage"} <= set(FLAGGED_WORDS["en"])


# -------------------------------------------------------------------------------- other languages

FOREIGN_SPEC = DemoSpec(docs=1_300, seed=21, workers=1, foreign_rate=1.0)
PARTICLES = {"zh": ("的", "了", "是", "在"), "ja": ("は", "が", "の", "を", "に", "ます")}


@pytest.fixture(scope="module")
def foreign_pages() -> list:
    return [original_page(FOREIGN_SPEC, index) for index in range(FOREIGN_SPEC.docs)]


def test_foreign_pages_are_recognised_by_lid176(foreign_pages):
    from jobs.core.models import resolve_model
    from udfs import fasttext_models as ftm

    model = ftm.load_model(resolve_model(ftm.DEFAULT_LID_MODEL))
    good = [page for page in foreign_pages if page.quality == "good"]
    labels, scores = ftm.predict_top(model, [page.text for page in good])
    for lang in LANGUAGES:
        results = [(label, score) for page, label, score in zip(good, labels, scores, strict=True)
                   if page.lang == lang]
        assert len(results) > 100
        confident = sum(label == lang and score >= 0.65 for label, score in results)
        assert confident >= 0.95 * len(results), (lang, confident, len(results))


def test_foreign_pages_are_well_formed_prose(foreign_pages):
    good = [page for page in foreign_pages if page.quality == "good"]
    assert {page.lang for page in good} == set(LANGUAGES) and not any(page.lang == "en" for page in good)
    function_words = {"de": {"der", "die", "das", "und"}, "fr": {"le", "la", "les", "que"},
                      "es": {"el", "la", "los", "que"}, "ru": {"и", "в", "не", "на", "что"}}
    for page in good:
        title, *paragraphs = page.text.split("\n\n")
        lines = [line for line in page.text.split("\n") if line]
        assert len(paragraphs) >= 3 and len(set(lines)) == len(lines)  # no repeated line
        assert all(paragraph.endswith((".", "!", "?", "。", "！", "？")) for paragraph in paragraphs)
        assert not title.endswith((".", "。"))
        if page.lang in ("zh", "ja"):
            body = "".join(paragraphs)
            low, high = FOREIGN_SPEC.foreign_characters
            assert low <= len(body) <= high and " " not in body and "。" in body and "." not in body
            assert sum(particle in body for particle in PARTICLES[page.lang]) >= 3
        else:
            words = " ".join(paragraphs).split()
            assert FOREIGN_SPEC.foreign_words[0] <= len(words) <= FOREIGN_SPEC.foreign_words[1]
            assert len(function_words[page.lang] & {word.lower() for word in words}) >= 2
            assert re.search("[а-я]", page.text) if page.lang == "ru" else not re.search("[а-я]", page.text)


def test_foreign_low_quality_pages_in_every_kind(foreign_pages):
    low = [page for page in foreign_pages if page.quality in LOW_QUALITY_KINDS]
    assert {(page.lang, page.quality) for page in low} >= {("de", "boilerplate"), ("zh", "repeated_lines")}
    assert {page.quality for page in low} == set(LOW_QUALITY_KINDS)
    for page in low:
        lines = page.text.split("\n")
        if page.quality == "boilerplate":
            assert sum(line in LANGUAGES[page.lang].boilerplate for line in lines) >= 12
        elif page.quality == "repeated_lines":
            assert len(lines) - len(set(lines)) >= 14
        elif page.quality == "keyword_stuffing":
            assert len(set(page.text.split())) <= 3 and len(page.text.split()) >= 120
        else:
            assert len(page.text) <= 30 if LANGUAGES[page.lang].by_characters else len(page.text.split()) <= 9
