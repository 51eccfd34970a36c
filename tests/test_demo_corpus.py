"""The demo corpus generator: deterministic, parallel-safe, and its ground truth matches the files."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from udfs.demo_corpus import (
    DOMAINS,
    MALFORMED_KINDS,
    DemoSpec,
    jaccard,
    page_at,
    role_of,
    word_shingles,
    write_demo_corpus,
)

SPEC = DemoSpec(docs=1_200, seed=11, shard_docs=400, malformed_rate=0.02, workers=1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    return out, write_demo_corpus(str(out), SPEC)


def _lines(out: Path) -> dict[str, list[bytes]]:
    return {p.name: gzip.decompress(p.read_bytes()).splitlines() for p in sorted(out.glob("*.jsonl.gz"))}


def test_same_seed_same_bytes_and_workers_do_not_matter(corpus, tmp_path):
    out, _ = corpus
    write_demo_corpus(str(tmp_path), replace(SPEC, workers=2))
    assert _lines(out) == _lines(tmp_path)


def test_another_seed_gives_another_corpus(corpus, tmp_path):
    out, _ = corpus
    write_demo_corpus(str(tmp_path), replace(SPEC, seed=12))
    assert _lines(out)["shard-00000.jsonl.gz"][:50] != _lines(tmp_path)["shard-00000.jsonl.gz"][:50]


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
    assert len(summary["langs"]) >= 5
    planted = {"boilerplate", "keyword_stuffing", "repeated_lines", "too_short", "spam"}
    assert planted <= set(summary["quality"])


def test_duplicates_point_at_originals_with_the_recorded_similarity(corpus):
    out, _ = corpus
    truth = {row["id"]: row for row in ds.dataset(out / "truth" / "docs").to_table().to_pylist()}
    texts = {}
    for shard in _lines(out).values():
        for line in shard:
            try:
                record = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(record, dict) and str(record.get("id", "")).startswith("demo-"):
                texts[record["id"]] = record["text"]
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


def test_pages_are_pure_functions_of_seed_and_index():
    assert page_at(SPEC, 777)[0] == page_at(SPEC, 777)[0]
    assert role_of(SPEC, 5).kind == "original"  # the first pages are never duplicates


def test_rejects_empty_specs(tmp_path):
    with pytest.raises(ValueError):
        write_demo_corpus(str(tmp_path), replace(SPEC, docs=0))
