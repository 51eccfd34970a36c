"""Mix stage on Spark: token-exact targets, determinism, partition independence, epoch caps over the
whole schedule, and the training-ready export (phase order, index, MeCo, token ids)."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from jobs import mix
from jobs.core.errors import PolicyError
from jobs.core.tables import open_store
from jobs.runner import stage_context
from tests.conftest import make_config
from tests.test_mix_math import byte_level_tokenizer

FILTERED_SCHEMA = "doc_id string, text string, n_chars int, url string, source string, domain string"
HOSTS = {"news": "daily.news.example", "wiki": "en.wiki.example", "forum": "talk.forum.example",
         "tiny": "tiny.example"}
SIZES = {"news": 900, "wiki": 600, "forum": 1200, "tiny": 12}


def _rows(seed: int = 5) -> list[tuple]:
    rng = random.Random(seed)
    rows = []
    for domain, count in SIZES.items():
        for index in range(count):
            n_chars = rng.randint(200, 6000)
            rows.append((f"{domain}-{index:05d}", "w" * n_chars, n_chars, f"https://{HOSTS[domain]}/{index}",
                         "crawl", HOSTS[domain]))
    return rows


RULES = [{"name": name, "hosts": [f"*.{name}.example" if name != "tiny" else "tiny.example"]}
         for name in SIZES]


def _setup(spark, tmp_path, partitions: int = 4, **mix_settings):
    settings = {"domains": {"rules": RULES}, **mix_settings}
    config = make_config(tmp_path, mix=settings)
    store = open_store(spark, config.output.root, config.tables)
    frame = spark.createDataFrame(_rows(), FILTERED_SCHEMA).repartition(partitions)
    store.write(frame, "filtered", mode="overwrite", run_id="seed")
    return config, store


def _manifest(result) -> dict[tuple[str, str], dict]:
    return {(row["phase"], row["domain"]): row for row in result.details["manifest"]}


def test_token_targets_are_met_within_half_a_percent(spark, tmp_path):
    # news downsampled to 30%, wiki upsampled 1.7x, forum 0.25x: all feasible within 4 epochs
    available = {domain: sum((n + 3) // 4 for _, _, n, _, _, h in _rows() if h == HOSTS[domain])
                 for domain in SIZES}
    budget = available["news"] * 0.3 + available["wiki"] * 1.7 + available["forum"] * 0.25
    weights = {"news": available["news"] * 0.3 / budget, "wiki": available["wiki"] * 1.7 / budget,
               "forum": available["forum"] * 0.25 / budget}
    config, store = _setup(spark, tmp_path, total_tokens=budget,
                           phases=[{"name": "main", "weights": {"mode": "explicit", "values": weights}}])
    result = mix.run(stage_context(config, "m1", spark))
    manifest = _manifest(result)
    for domain in ("news", "wiki", "forum"):
        row = manifest[("main", domain)]
        assert row["available_tokens"] == available[domain]
        # within one document (<= 1,500 tokens here) of the target, far inside the 0.5% target
        assert abs(row["realised_tokens"] - row["target_tokens"]) <= 1500
        assert abs(row["relative_error"]) <= 0.005
        assert row["feasible"] and not row["cap_bound"]
    assert manifest[("main", "wiki")]["max_repeats"] == 2 and manifest[("main", "news")]["max_repeats"] == 1
    assert manifest[("main", "tiny")]["realised_tokens"] == 0
    assert result.reconciles() and result.drops["not_sampled"] > 0
    table = store.read("mix_manifest").where("run_id = 'm1'").count()
    assert table == len(result.details["manifest"])


def _mixture(store) -> list[tuple]:
    return sorted((row.doc_id, row.phase, row.copy_index, row.domain, row.n_tokens, row.sample_order)
                  for row in store.read("mixture").collect())


def test_rerun_and_repartitioning_give_the_same_mixture(spark, tmp_path):
    phases = [{"name": "main", "fraction": 0.8, "weights": {"mode": "temperature", "temperature": 3.0}},
              {"name": "anneal", "fraction": 0.2, "weights": {"mode": "explicit", "values": {"wiki": 1.0}}}]
    # T=3 asks more of "tiny" than 4 epochs: capped (allowed here; this test is about determinism)
    config, store = _setup(spark, tmp_path / "a", partitions=3, phases=phases, allow_infeasible=True)
    mix.run(stage_context(config, "r1", spark))
    first = _mixture(store)
    mix.run(stage_context(config, "r2", spark))
    assert _mixture(store) == first
    other_config, other_store = _setup(spark, tmp_path / "b", partitions=50, phases=phases,
                                       allow_infeasible=True)
    mix.run(stage_context(other_config, "r3", spark))
    assert _mixture(other_store) == first
    assert {row[1] for row in first} == {"main", "anneal"}


def test_infeasible_target_is_capped_flagged_and_not_renormalised(spark, tmp_path, capsys):
    config, _ = _setup(spark, tmp_path, max_epochs=2.0, allow_infeasible=True, phases=[
        {"name": "main", "weights": {"mode": "explicit", "values": {"tiny": 0.5, "news": 0.5}}}])
    result = mix.run(stage_context(config, "m-cap", spark))
    manifest = _manifest(result)
    tiny, news = manifest[("main", "tiny")], manifest[("main", "news")]
    assert not tiny["feasible"] and tiny["cap_bound"]
    assert tiny["realised_tokens"] == 2 * tiny["available_tokens"] and tiny["max_repeats"] == 2
    assert news["feasible"] and abs(news["relative_error"]) <= 0.005  # news keeps its own target
    assert "WARNING phase main domain tiny" in capsys.readouterr().err


def test_domain_from_a_column_and_missing_column_is_a_config_error(spark, tmp_path):
    from jobs.core.config import ConfigError

    config, _ = _setup(spark, tmp_path, domains={"column": "source"})
    result = mix.run(stage_context(config, "col", spark))
    assert {row["domain"] for row in result.details["manifest"]} == {"crawl"}
    config.mix.domains.column = "topic"
    with pytest.raises(ConfigError, match="no column 'topic'"):
        mix.run(stage_context(config, "col2", spark))


def test_tokenizer_counts_and_dataset_decomposition(spark, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, "the": 1, "cat": 2, "sat": 3}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    rows = [(f"d{k:03d}", "the cat sat " * k, 12 * k, f"https://x.example/{k}", "crawl", "x.example")
            for k in range(1, 41)]
    config = make_config(tmp_path, mix={
        "domains": {"column": "source"}, "tokens": {"tokenizer": str(tmp_path / "tokenizer.json")},
        "export": {"enabled": True, "decompose": True, "min_chunk_log2": 2, "max_chunk_log2": 5,
                   "shard_docs": 15}})
    store = open_store(spark, config.output.root, config.tables)
    store.write(spark.createDataFrame(rows, FILTERED_SCHEMA), "filtered", mode="overwrite", run_id="seed")
    result = mix.run(stage_context(config, "tok", spark))
    tokens = {row.doc_id: row.n_tokens for row in store.read("mixture").collect()}
    assert tokens["d007"] == 21 and len(tokens) == 40  # exact counts; budget = all tokens, one copy each
    decomposition = result.details["export"]["decomposition"]
    buckets = decomposition["buckets"]
    assert set(buckets) <= {"4", "8", "16", "32"}
    # every token is in a chunk or reported as a dropped tail (each tail below 2^2)
    tails = sum(count % 4 for count in tokens.values())
    assert decomposition["dropped_tail_tokens"] == tails > 0
    assert sum(tokens.values()) == sum(b["tokens"] for b in buckets.values()) + tails
    index = _index(result)
    chunk_file = next(entry["path"] for shard in index["shards"] for kind, entry in shard["files"].items()
                      if kind == "chunks-32")
    assert chunk_file.startswith("phase=main/len-00032/")
    chunk_table = pq.read_table(Path(result.details["export"]["path"]) / chunk_file)
    assert all(len(ids) == 32 for ids in chunk_table.column("input_ids").to_pylist())


# ------------------------------------------------------------------ epoch caps over the whole schedule

TWO_PHASES = [{"name": "main", "fraction": 0.8, "weights": {"mode": "temperature", "temperature": 1.0}},
              {"name": "anneal", "fraction": 0.2, "weights": {"mode": "temperature", "temperature": 1.0}}]


def _copies(store) -> dict[str, list[tuple[str, int]]]:
    copies: dict[str, list[tuple[str, int]]] = {}
    for row in store.read("mixture").select("doc_id", "phase", "copy_index").collect():
        copies.setdefault(row.doc_id, []).append((row.phase, row.copy_index))
    return copies


def test_one_epoch_over_two_phases_uses_every_document_once(spark, tmp_path):
    # natural proportions over the whole input in two phases: with a cap of 1 epoch, no document may be
    # in both phases (per-phase caps let 401 demo documents appear in both)
    config, store = _setup(spark, tmp_path, max_epochs=1.0, phases=TWO_PHASES)
    result = mix.run(stage_context(config, "cap1", spark))
    copies = _copies(store)
    assert max(len(entries) for entries in copies.values()) == 1
    assert len(copies) == len(_rows())  # the schedule asks for exactly one epoch: every document once
    for row in result.details["manifest"]:
        assert row["schedule_epochs"] <= 1.0 + 1e-9 and row["schedule_max_repeats"] == 1, row
    domains = result.details["schedule"]["domains"]
    assert domains["wiki"]["phases"]["main"] == pytest.approx(0.8, abs=0.01)
    assert domains["wiki"]["epochs"] <= 1.0 and result.details["schedule"]["max_repeats"] == 1


def test_epoch_caps_per_domain_bound_every_copy_over_the_schedule(spark, tmp_path):
    available = {domain: sum((n + 3) // 4 for _, _, n, _, _, h in _rows() if h == HOSTS[domain])
                 for domain in SIZES}
    # wiki: 1.2 epochs in main + 0.6 in anneal = 1.8 of its 2-epoch cap; news 0.5 + 0.4 of 1 epoch
    main = {"wiki": 1.2 * available["wiki"], "news": 0.5 * available["news"]}
    anneal = {"wiki": 0.6 * available["wiki"], "news": 0.4 * available["news"]}
    budget = sum(main.values()) + sum(anneal.values())
    phases = [{"name": "main", "fraction": sum(main.values()) / budget,
               "weights": {"mode": "explicit", "values": main}},
              {"name": "anneal", "fraction": sum(anneal.values()) / budget,
               "weights": {"mode": "explicit", "values": anneal}}]
    config, store = _setup(spark, tmp_path, max_epochs=1.0, max_epochs_by_domain={"wiki": 2.0},
                           total_tokens=budget, phases=phases)
    result = mix.run(stage_context(config, "caps", spark))
    copies = _copies(store)
    domains = result.details["schedule"]["domains"]
    assert domains["wiki"]["max_epochs"] == 2.0 and domains["news"]["max_epochs"] == 1.0
    assert domains["wiki"]["epochs"] <= 2.0 and domains["news"]["epochs"] <= 1.0
    assert max(len(v) for k, v in copies.items() if k.startswith("wiki")) == 2
    assert max(len(v) for k, v in copies.items() if k.startswith("news")) == 1
    # a wiki document repeats only after every wiki document was used once: copy 1 goes to 0.8 of them
    second = sum(1 for k, v in copies.items() if k.startswith("wiki") and len(v) == 2)
    assert 0.7 * SIZES["wiki"] < second < 0.9 * SIZES["wiki"]
    # the anneal budget all on news asks it for more than the epoch main left over: fails loud
    config.mix.phases[1].weights.values = {"news": 1.0}
    with pytest.raises(PolicyError, match=r"phase anneal domain news: .* over the whole schedule"):
        mix.run(stage_context(config, "caps2", spark))


# ------------------------------------------------------------------------ the training-ready export

def _index(result) -> dict:
    return json.loads(Path(result.details["export"]["index"]).read_text())


def _export_rows(result) -> list[dict]:
    """Every row of the export in trainer order (phases, then shards by number, then file order), read
    from the files the index lists, after checking each file's sha256."""
    root = Path(result.details["export"]["path"])
    index = _index(result)
    rows = []
    for phase in index["phases"]:
        for number in phase["shards"]:
            shard = next(entry for entry in index["shards"] if entry["shard"] == number)
            text_file = shard["files"]["text"]
            data = (root / text_file["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == text_file["sha256"]
            assert text_file["path"].startswith(f"phase={phase['name']}/")
            table = pq.read_table(root / text_file["path"])
            assert table.num_rows == text_file["rows"] == shard["rows"]
            rows.extend(table.to_pylist())
    return rows


def test_export_keeps_the_phases_in_schedule_order_with_an_index(spark, tmp_path):
    phases = [TWO_PHASES[0],
              {"name": "anneal", "fraction": 0.2, "weights": {"mode": "explicit", "values": {"wiki": 1.0}}}]
    config, store = _setup(spark, tmp_path, phases=phases, export={"enabled": True, "shard_docs": 400})
    result = mix.run(stage_context(config, "e1", spark))
    index = _index(result)
    assert [phase["name"] for phase in index["phases"]] == ["main", "anneal"]
    main, anneal = index["phases"]
    assert main["shards"] and anneal["shards"] and max(main["shards"]) < min(anneal["shards"])
    mixture = {(row.doc_id, row.copy_index): (row.phase, row.sample_order)
               for row in store.read("mixture").collect()}
    rows = _export_rows(result)
    assert len(rows) == len(mixture) == index["rows"]
    phase_sequence = [row["phase"] for row in rows]
    boundary = phase_sequence.index("anneal")
    assert set(phase_sequence[:boundary]) == {"main"} and set(phase_sequence[boundary:]) == {"anneal"}
    assert {(row["doc_id"], row["copy_index"]) for row in rows} == set(mixture)
    for phase in index["phases"]:  # tokens per phase and shard as the mixture has them
        assert phase["tokens"] == sum(row["n_tokens"] for row in rows if row["phase"] == phase["name"])
    # shuffled within a phase by the seeded hash: sample_order rises through each phase's shards
    for name in ("main", "anneal"):
        orders = [mixture[(row["doc_id"], row["copy_index"])][1] for row in rows if row["phase"] == name]
        assert orders == sorted(orders)
    # the same mixture writes the same files
    config.mix.export.path = str(tmp_path / "again")
    again = mix.run(stage_context(config, "e2", spark))
    assert [s["files"]["text"]["sha256"] for s in _index(again)["shards"]] == [
        s["files"]["text"]["sha256"] for s in index["shards"]]
    manifest = json.loads(Path(again.details["manifest_json"]).read_text())
    assert manifest["export"]["phases"][0]["name"] == "main" and manifest["phases"] == ["main", "anneal"]


def test_meco_conditions_the_configured_token_share_and_cools_down(spark, tmp_path):
    config, _ = _setup(spark, tmp_path, phases=TWO_PHASES, export={
        "enabled": True, "shard_docs": 300,
        "meco": {"enabled": True, "conditioned_share": 0.6, "cooldown_phases": ["anneal"]}})
    result = mix.run(stage_context(config, "meco", spark))
    rows = _export_rows(result)
    total = sum(row["n_tokens"] for row in rows)
    position, conditioned_tokens = 0, 0
    for row in rows:  # trainer order: exactly the rows starting before 60% of the tokens, none in anneal
        expected = row["phase"] == "main" and position < 0.6 * total
        host = row["url"].split("/")[2]
        if expected:
            assert row["meco_prefix"] == f"URL: {host}\n\n" and row["text"].startswith(row["meco_prefix"])
            conditioned_tokens += row["n_tokens"]
        else:
            assert row["meco_prefix"] is None and not row["text"].startswith("URL:"), row["doc_id"]
        position += row["n_tokens"]
    meco = _index(result)["meco"]
    assert meco["conditioned_tokens"] == conditioned_tokens
    assert abs(conditioned_tokens - 0.6 * total) <= 1500  # within one document of the share
    assert meco["realised_share"] == pytest.approx(0.6, abs=0.005)
    manifest = json.loads(Path(result.details["manifest_json"]).read_text())
    assert manifest["export"]["meco"]["cooldown_phases"] == ["anneal"]


def test_tokenized_export_round_trips_to_the_text(spark, tmp_path):
    tokenizer_path = tmp_path / "tokenizer.json"
    byte_level_tokenizer().save(str(tokenizer_path))
    words = ["the", "cat", "sat", "on", "mat", "Grüße", "日本語"]
    rng = random.Random(3)
    rows = [(f"t{k:03d}", " ".join(rng.choice(words) for _ in range(rng.randint(1, 60))), 0,
             f"https://h{k % 3}.example/{k}", "crawl", "x") for k in range(90)]
    rows = [(doc, text, len(text), url, source, host) for doc, text, _, url, source, host in rows]
    config = make_config(tmp_path, mix={
        "domains": {"column": "source"}, "tokens": {"tokenizer": str(tokenizer_path)},
        "export": {"enabled": True, "shard_docs": 40, "tokenized": {"enabled": True},
                   "meco": {"enabled": True, "conditioned_share": 0.5}}})
    store = open_store(spark, config.output.root, config.tables)
    store.write(spark.createDataFrame(rows, FILTERED_SCHEMA), "filtered", mode="overwrite", run_id="seed")
    result = mix.run(stage_context(config, "toks", spark))
    index = _index(result)
    root = Path(result.details["export"]["path"])
    tokenizer = byte_level_tokenizer()
    assert index["tokenized"]["dtype"] == "uint16" and index["tokenized"]["eos_token"] == "<|endoftext|>"
    eos = index["tokenized"]["eos_id"]
    texts = {row[0]: row[1] for row in rows}
    seen = 0
    for shard in index["shards"]:
        files = shard["files"]
        tokens = np.load(root / files["tokens"]["path"], mmap_mode="r")
        offsets = np.load(root / files["offsets"]["path"])
        table = pq.read_table(root / files["text"]["path"]).to_pylist()
        assert len(offsets) == len(table) + 1 and offsets[-1] == len(tokens) == shard["token_ids"]
        for position, row in enumerate(table):
            ids = tokens[offsets[position]:offsets[position + 1]].tolist()
            assert ids[-1] == eos and row["token_offset"] == offsets[position]
            cut = row["prefix_tokens"]
            assert tokenizer.decode(ids[cut:-1]) == texts[row["doc_id"]]
            assert tokenizer.decode(ids[:cut]) == (row["meco_prefix"] or "")
            assert tokenizer.decode(ids[:-1]) == row["text"]
            seen += 1
    assert seen == 90 == index["rows"]
    assert 0 < index["meco"]["conditioned_rows"] < 90


def test_tokenized_export_needs_a_tokenizer_with_an_eos(spark, tmp_path):
    from jobs.core.config import ConfigError

    with pytest.raises(ConfigError, match=r"tokenized needs mix\.tokens\.tokenizer"):
        make_config(tmp_path, mix={"export": {"enabled": True, "tokenized": {"enabled": True}}})
    tokenizer_path = tmp_path / "tokenizer.json"
    byte_level_tokenizer().save(str(tokenizer_path))
    config = make_config(tmp_path, mix={"tokens": {"tokenizer": str(tokenizer_path)}, "export": {
        "enabled": True, "tokenized": {"enabled": True, "eos_token": "</s>"}}})
    with pytest.raises(ConfigError, match="no end-of-document token '</s>'"):
        mix.check(stage_context(config, "no-eos"))
