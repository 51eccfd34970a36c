"""Mix: domain-weighted resampling to token targets, deterministic and independent of partitioning.

    filtered --(domain, n_tokens)--> per domain one stream over the whole schedule: its documents in hash
    order of (seed, doc_id), epoch after epoch; each phase takes its stretch of tokens from that stream
    (a copy goes to the phase its midpoint falls in, never past the domain's epoch cap) --> mixture
    (doc_id, domain, phase, copy_index = epoch, text, ...) + mix_manifest (+ JSON)
    [--> export: phases in schedule order, shuffled within a phase by the seeded hash, Parquet/JSONL
         shards, optional MeCo metadata prefix with a cooldown, token ids, and index.json]

No ``rand()`` and no ``DataFrame.sample()``: every decision is a function of the document and the seed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jobs.core import storage
from jobs.core.config import Config, ConfigError, PhaseSettings
from jobs.core.errors import PolicyError
from jobs.core.hashing import unit_uniform
from jobs.core.models import load_tokenizer
from jobs.core.pandas_udfs import token_count_udf
from jobs.core.stage import Stage, StageContext, StageResult
from jobs.core.tables import TableStore
from udfs.mix import (
    DomainPlan,
    conditioned_rows,
    decompose,
    meta_prefixes,
    parse_weights,
    plan_phase,
    resolve_eos,
    room_left,
    schedule_epochs,
    temperature_weights,
    token_dtype,
    tokenize_documents,
    unimax_weights,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

MIXTURE_COLUMNS = ["doc_id", "domain", "phase", "copy_index", "n_tokens", "text", "url", "source",
                   "source_id", "sample_order"]


def read_weights_file(uri: str, storage_options: Mapping[str, str] | None = None) -> dict[str, float]:
    """A DoReMi/RegMix weights JSON file (local or s3://), see :func:`udfs.mix.parse_weights`."""
    return parse_weights(json.loads(storage.read_bytes(uri, storage_options).decode("utf-8")), uri)


def check(ctx: StageContext) -> None:
    config = ctx.config
    settings = config.mix
    for phase in settings.phases:
        if phase.weights.mode == "file":
            try:
                read_weights_file(phase.weights.file or "", config.output.storage_options)
            except (OSError, ValueError, KeyError) as exc:
                raise ConfigError(f"cannot read weights: {exc}", source=config.source,
                                  key=f"mix.phases.{phase.name}.weights.file") from None
    tokenizer = settings.tokens.tokenizer
    if tokenizer and not storage.exists(tokenizer, config.output.storage_options):
        raise ConfigError(f"tokenizer file not found: {tokenizer}", key="mix.tokens.tokenizer",
                          source=config.source)
    if settings.export.enabled and settings.export.tokenized.enabled and tokenizer:
        try:
            resolve_eos(load_tokenizer(tokenizer, config.output.storage_options),
                        settings.export.tokenized.eos_token)
        except ValueError as exc:
            raise ConfigError(f"{exc} ({tokenizer})", key="mix.export.tokenized.eos_token",
                              source=config.source) from None


def domain_column(config: Config, columns: Sequence[str]) -> Column:
    """The mixture domain: a column as is, or the first matching rule (source, then URL host globs)."""
    from pyspark.sql import functions as F

    settings = config.mix.domains
    if settings.column:
        if settings.column not in columns:
            raise ConfigError(f"input has no column {settings.column!r} (enable the topic classifier for "
                              "'topic')", key="mix.domains.column", source=config.source)
        return F.coalesce(F.col(settings.column).cast("string"), F.lit(settings.default))
    host = F.lower(F.coalesce(F.col("domain"), F.lit("")))
    result: Column = F.lit(settings.default)
    for rule in reversed(settings.rules):  # built inside out, so the first rule is tested first
        matches = F.lit(False)
        if rule.sources:
            matches = matches | F.col("source").isin(rule.sources)
        for pattern in rule.hosts:
            matches = matches | host.rlike(fnmatch.translate(pattern.lower()))
        result = F.when(matches, F.lit(rule.name)).otherwise(result)
    return result


def token_column(config: Config) -> Column:
    from pyspark.sql import functions as F

    tokens = config.mix.tokens
    if tokens.tokenizer:
        return token_count_udf(tokens.tokenizer, config.output.storage_options)(F.col("text"))
    return F.ceil(F.col("n_chars") / F.lit(tokens.chars_per_token)).cast("long")


def phase_weights(phase: PhaseSettings, available: dict[str, tuple[int, int]], budget: float,
                  config: Config, room: Mapping[str, float]) -> dict[str, float]:
    """The phase's domain weights; ``room``: tokens each domain may still give under its epoch cap."""
    weights = phase.weights
    tokens = {domain: float(count) for domain, (_, count) in available.items()}
    if weights.mode in ("explicit", "file"):
        named = (dict(weights.values) if weights.mode == "explicit"
                 else read_weights_file(weights.file or "", config.output.storage_options))
        unknown = sorted(domain for domain, weight in named.items() if weight > 0 and domain not in available)
        if unknown:
            message = (f"phase {phase.name}: the weights name domains with no documents: {unknown} "
                       f"(the input has {sorted(available)})")
            if not config.mix.allow_unknown_domains:
                raise PolicyError(f"{message}; a misspelling? mix.allow_unknown_domains: true accepts this")
            print(f"mix: WARNING {message}", file=sys.stderr)
        return named
    if weights.mode == "unimax":
        return unimax_weights(room, budget)
    return temperature_weights(tokens, weights.temperature)


def plan_schedule(available: dict[str, tuple[int, int]], budget: float, config: Config) -> list[DomainPlan]:
    """Every phase's plans, in schedule order: each phase starts where the earlier ones stopped in each
    domain's stream, so the epoch cap holds over the whole schedule, not per phase."""
    settings = config.mix
    caps = settings.epoch_caps(available)
    taken: dict[str, float] = {domain: 0.0 for domain in available}
    plans: list[DomainPlan] = []
    for phase in settings.phases:
        phase_budget = budget * phase.fraction
        room = {domain: room_left(tokens, caps[domain], taken[domain])
                for domain, (_, tokens) in available.items()}
        weights = phase_weights(phase, available, phase_budget, config, room)
        phase_plans = plan_phase(phase.name, available, weights, phase_budget,
                                 settings.epoch_caps(set(available) | set(weights)), taken)
        _refuse_infeasible(phase_plans, config)
        for plan in phase_plans:
            taken[plan.domain] = taken.get(plan.domain, 0.0) + plan.planned_tokens
        plans.extend(phase_plans)
    return plans


def _refuse_infeasible(plans: list[DomainPlan], config: Config) -> None:
    """A target above what the epoch cap leaves fails the stage (one line naming phase, domain and
    numbers) unless mix.allow_infeasible: then it is capped, flagged in the manifest and warned about."""
    for plan in plans:
        if plan.feasible:
            continue
        earlier = f", {plan.stream_start:,.0f} taken by earlier phases" if plan.stream_start else ""
        message = (f"phase {plan.phase} domain {plan.domain}: target {plan.target_tokens:,.0f} tokens "
                   f"exceeds {plan.max_epochs:g} epochs of {plan.available_tokens:,} available over the "
                   f"whole schedule{earlier}")
        if not config.mix.allow_infeasible:
            raise PolicyError(f"{message}; lower its weight, raise mix.max_epochs (or "
                              "mix.max_epochs_by_domain), or set mix.allow_infeasible: true to cap it")
        print(f"mix: WARNING {message}; capped at {plan.planned_tokens:,.0f} (flagged infeasible, other "
              "domains unchanged)", file=sys.stderr)


def sample_schedule(docs: DataFrame, plans: list[DomainPlan], phases: Sequence[str], seed: int) -> DataFrame:
    """The mixture's rows: each domain's documents ordered by the hash of (seed, doc_id) and laid end to
    end, epoch after epoch, as one token stream; copy ``e`` of a document starts at ``e * available +
    tokens before it``. A copy belongs to the phase whose stretch holds its midpoint (so each phase
    misses its target by less than one document at either end) and is dropped if it would end past the
    domain's cap. Documents repeat only after their whole domain was used once."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    spark = docs.sparkSession
    spans = [(plan.domain, phases.index(plan.phase), plan.phase, plan.stream_start, plan.stream_end,
              plan.cap_tokens) for plan in plans if plan.planned_tokens > 0 and plan.available_tokens > 0]
    if not spans:
        return (docs.limit(0).withColumn("phase", F.lit("")).withColumn("phase_index", F.lit(0))
                .withColumn("copy_index", F.lit(0)))
    available = {plan.domain: plan.available_tokens for plan in plans}
    epochs = {}
    for domain, _, _, _, end, _ in spans:
        epochs[domain] = max(epochs.get(domain, 1), math.ceil(end / available[domain]))
    streams = spark.createDataFrame([(domain, float(available[domain]), count)
                                     for domain, count in epochs.items()],
                                    "domain string, _available double, _epochs int")
    stretches = spark.createDataFrame(spans, "_domain string, phase_index int, phase string, "
                                             "_stream_start double, _stream_end double, _cap double")
    before = Window.partitionBy("domain").orderBy("_draw", "doc_id").rowsBetween(Window.unboundedPreceding, 0)
    copies = (docs.join(F.broadcast(streams), "domain")
              .withColumn("_draw", unit_uniform(seed, "doc_id"))
              .withColumn("_before", F.sum("n_tokens").over(before) - F.col("n_tokens"))
              .withColumn("copy_index", F.explode(F.sequence(F.lit(0), F.col("_epochs") - 1)))
              .withColumn("_start", F.col("copy_index") * F.col("_available") + F.col("_before")))
    middle = F.col("_start") + F.col("n_tokens") / 2
    placed = copies.join(F.broadcast(stretches),
                         (F.col("domain") == F.col("_domain")) & (middle >= F.col("_stream_start"))
                         & (middle < F.col("_stream_end"))
                         & (F.col("_start") + F.col("n_tokens") <= F.col("_cap")))
    return placed.drop("_domain", "_stream_start", "_stream_end", "_cap", "_available", "_epochs", "_draw",
                       "_before", "_start")


def _with_sample_order(placed: DataFrame, seed: int) -> DataFrame:
    """The shuffle within a phase: a hash of (seed + 1, phase, doc_id, copy)."""
    return placed.withColumn("sample_order", unit_uniform(seed + 1, "phase_index", "doc_id", "copy_index"))


# ------------------------------------------------------------------------------------------ export

EXPORT_INDEX = "index.json"
# One row per file an export writes; tokens are document tokens (the mix's counts), token_ids what a
# tokenized shard holds (prefix and EOS included), tail_tokens what dataset decomposition left out.
_FILE_ROW = pa.schema([("file", pa.string()), ("kind", pa.string()), ("phase", pa.string()),
                       ("shard", pa.int32()), ("rows", pa.int64()), ("tokens", pa.int64()),
                       ("token_ids", pa.int64()), ("conditioned_rows", pa.int64()),
                       ("conditioned_tokens", pa.int64()), ("tail_tokens", pa.int64()), ("bytes", pa.int64()),
                       ("sha256", pa.string())])


def _shard_layout(mixture: DataFrame, phases: Sequence[str], shard_docs: int) -> list[dict[str, Any]]:
    """Phases in schedule order with their rows, tokens and shard numbers: ``first_shard`` rises through
    the schedule, so reading shards by number reads the phases in order."""
    from pyspark.sql import functions as F

    sizes = {row["phase"]: (int(row["rows"]), int(row["tokens"] or 0)) for row in
             mixture.groupBy("phase").agg(F.count("*").alias("rows"), F.sum("n_tokens").alias("tokens"))
             .collect()}
    layout, first = [], 0
    for index, name in enumerate(phases):
        rows, tokens = sizes.get(name, (0, 0))
        shards = math.ceil(rows / shard_docs)
        layout.append({"name": name, "index": index, "rows": rows, "tokens": tokens, "first_shard": first,
                       "shards": shards})
        first += shards
    return layout


def export_shards(mixture: DataFrame, config: Config, run_id: str) -> dict[str, Any]:
    """Training-ready files under ``<export>/phase=<name>/``: ``shard-NNNNN`` = rows of one phase whose
    ``sample_order`` falls in the shard's slice, in ``sample_order`` within the shard, so the same mixture
    always writes the same files. Optional per shard: the MeCo metadata prefix on the first share of
    tokens, whole-document token ids (``.tokens.npy`` + ``.offsets.npy``), and dataset decomposition
    (``len-<2^k>/``). ``index.json``, written last, lists every file with its rows, tokens and sha256:
    files it does not list are not part of the export."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    settings = config.mix.export
    phases = [phase.name for phase in config.mix.phases]
    target = settings.path or storage.join(config.output.root, "export", run_id)
    layout = _shard_layout(mixture, phases, settings.shard_docs)
    spark = mixture.sparkSession
    slices = spark.createDataFrame([(part["name"], part["first_shard"], max(1, part["shards"]))
                                    for part in layout], "phase string, _first int, _shards int")
    shaped = (mixture.join(F.broadcast(slices), "phase")
              .select((F.col("_first") + F.least(F.floor(F.col("sample_order") * F.col("_shards")),
                                                 F.col("_shards") - 1)).cast("int").alias("shard"),
                      "sample_order", "doc_id", "phase", "domain", "copy_index", "n_tokens", "url", "text"))
    meco = settings.meco
    if meco.enabled:  # the host only where a template may name it
        shaped = shaped.withColumn("_host", F.try_parse_url(F.col("url"), F.lit("HOST")))
    total_tokens = sum(part["tokens"] for part in layout)
    shard_start: dict[int, int] = {}
    if meco.enabled:
        running = 0
        for row in shaped.groupBy("shard").agg(F.sum("n_tokens").alias("tokens")).orderBy("shard").collect():
            shard_start[int(row["shard"])] = running
            running += int(row["tokens"] or 0)
    writer = _ShardWriter(config, target, shard_start, meco.conditioned_share * total_tokens)
    shards = max(1, sum(part["shards"] for part in layout))
    files = [row.asDict() for row in
             shaped.repartition(shards, "shard").sortWithinPartitions("shard", "sample_order")
             .mapInArrow(writer.write, from_arrow_schema(_FILE_ROW)).collect()]
    index = _export_index(files, layout, config, run_id, writer)
    storage.write_bytes(storage.join(target, EXPORT_INDEX), json.dumps(index, indent=2).encode(),
                        config.output.storage_options)
    summary = {key: value for key, value in index.items() if key != "shards"}
    summary.update(path=target, index=storage.join(target, EXPORT_INDEX), files=len(files))
    return summary


class _ShardWriter:
    """Writes each shard's files on the executors (picklable settings only; the tokenizer is loaded once
    per Python worker) and yields one row per file written."""

    def __init__(self, config: Config, target: str, shard_start: dict[int, int], conditioned_tokens: float):
        export = config.mix.export
        self.target = target
        self.format = export.format
        self.options = dict(config.output.storage_options)
        self.meco = export.meco
        self.shard_start = shard_start
        self.conditioned_tokens = conditioned_tokens
        self.tokenizer_uri = config.mix.tokens.tokenizer
        self.chars_per_token = config.mix.tokens.chars_per_token
        self.decompose = export.decompose
        self.chunk_range = (export.min_chunk_log2, export.max_chunk_log2)
        self.token_info: dict[str, Any] | None = None
        if export.tokenized.enabled and self.tokenizer_uri:
            tokenizer = load_tokenizer(self.tokenizer_uri, self.options)
            eos_token, eos_id = resolve_eos(tokenizer, export.tokenized.eos_token)
            dtype = token_dtype(tokenizer.get_vocab_size(with_added_tokens=True))
            self.token_info = {"tokenizer": self.tokenizer_uri, "eos_token": eos_token, "eos_id": eos_id,
                               "dtype": dtype.name, "vocab_size": tokenizer.get_vocab_size(True)}

    def write(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        received = [batch for batch in batches if batch.num_rows]
        if not received:  # hash partitioning can leave partitions without shards
            return
        table = pa.Table.from_batches(received)
        rows: list[dict[str, Any]] = []
        for shard in sorted(set(table.column("shard").to_pylist())):
            rows.extend(self._shard(table.filter(pc.equal(table.column("shard"), shard)), int(shard)))
        yield pa.RecordBatch.from_pylist(rows, schema=_FILE_ROW)

    def _shard(self, part: pa.Table, shard: int) -> list[dict[str, Any]]:
        phase = part.column("phase")[0].as_py()
        folder = f"phase={phase}"
        suffix = "parquet" if self.format == "parquet" else "jsonl"
        n_tokens = part.column("n_tokens").to_numpy(zero_copy_only=False)
        info = {"phase": phase, "shard": shard, "rows": part.num_rows, "tokens": int(n_tokens.sum()),
                "token_ids": 0, "conditioned_rows": 0, "conditioned_tokens": 0, "tail_tokens": 0}
        texts = part.column("text")
        prefixes = pa.nulls(part.num_rows, pa.string())
        if self.meco.enabled and phase not in self.meco.cooldown_phases:
            conditioned = conditioned_rows(n_tokens, self.shard_start.get(shard, 0),
                                           self.conditioned_tokens)
            prefixes = meta_prefixes(part.column("_host"), part.column("url"), self.meco.template,
                                     conditioned)
            has_prefix = pc.is_valid(prefixes).to_numpy(zero_copy_only=False)
            info.update(conditioned_rows=int(has_prefix.sum()),
                        conditioned_tokens=int(n_tokens[has_prefix].sum()))
        rows = part.select(["doc_id", "phase", "domain", "copy_index", "n_tokens", "url"])
        if self.meco.enabled:
            rows = rows.append_column("meco_prefix", prefixes)
        rows = rows.append_column("text", pc.binary_join_element_wise(pc.fill_null(prefixes, ""), texts, ""))
        written = []
        if self.token_info is not None:
            tokenizer = load_tokenizer(self.tokenizer_uri or "", self.options)
            ids = tokenize_documents(texts, prefixes, tokenizer, self.token_info["eos_id"],
                                     np.dtype(self.token_info["dtype"]))
            info["token_ids"] = len(ids.tokens)
            for kind, array in (("tokens", ids.tokens), ("offsets", ids.offsets)):
                name = f"{folder}/shard-{shard:05d}.{kind}.npy"
                written.append({**info, "file": name, "kind": kind,
                                **_write_npy(array, storage.join(self.target, name), self.options)})
            rows = (rows.append_column("token_offset", pa.array(ids.offsets[:-1]))
                    .append_column("token_count", pa.array(np.diff(ids.offsets)))
                    .append_column("prefix_tokens", pa.array(ids.prefix_tokens)))
        name = f"{folder}/shard-{shard:05d}.{suffix}"
        written.append({**info, "file": name, "kind": "text",
                        **_write_file(rows, storage.join(self.target, name), self.format, self.options)})
        if self.decompose:
            written.extend(self._chunks(rows, folder, shard, suffix, info))
        return written

    def _chunks(self, rows: pa.Table, folder: str, shard: int, suffix: str,
                info: dict[str, Any]) -> list[dict[str, Any]]:
        tokenizer = load_tokenizer(self.tokenizer_uri, self.options) if self.tokenizer_uri else None
        low, high = self.chunk_range
        chunks, tails = decompose(rows.select(["doc_id", "phase", "domain", "copy_index", "url", "text",
                                               "n_tokens"]), low, high, tokenizer, self.chars_per_token)
        info["tail_tokens"] = int(tails.sum())
        written = []
        for size in sorted(set(chunks.column("bucket").to_pylist())):
            content = chunks.filter(pc.equal(chunks.column("bucket"), size))
            name = f"{folder}/len-{size:05d}/shard-{shard:05d}.{suffix}"
            written.append({**info, "file": name, "kind": f"chunks-{size}", "rows": content.num_rows,
                            "tokens": int(pc.sum(content.column("n_tokens")).as_py() or 0),
                            **_write_file(content, storage.join(self.target, name), self.format,
                                          self.options)})
        return written


def _uploaded(local: str, uri: str, storage_options: dict[str, str]) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(local, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    storage.upload(local, uri, storage_options)
    return {"bytes": os.path.getsize(local), "sha256": digest.hexdigest()}


def _write_file(table: pa.Table, uri: str, file_format: str,
                storage_options: dict[str, str]) -> dict[str, Any]:
    """Parquet or JSON lines; returns its size and sha256 for the index."""
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as workdir:
        local = os.path.join(workdir, "part")
        if file_format == "parquet":
            pq.write_table(table, local)
        else:
            with open(local, "w", encoding="utf-8") as handle:
                for row in table.to_pylist():
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        return _uploaded(local, uri, storage_options)


def _write_npy(array: np.ndarray, uri: str, storage_options: dict[str, str]) -> dict[str, Any]:
    """A ``.npy`` file: self-describing (dtype, length), memory-mapped by ``np.load(mmap_mode="r")``."""
    with tempfile.TemporaryDirectory() as workdir:
        local = os.path.join(workdir, "part.npy")
        np.save(local, array, allow_pickle=False)
        return _uploaded(local, uri, storage_options)


def _export_index(files: list[dict[str, Any]], layout: list[dict[str, Any]], config: Config, run_id: str,
                  writer: _ShardWriter) -> dict[str, Any]:
    """What a trainer needs to read the export in order and check it: phases in schedule order, each
    shard's files with rows, tokens and sha256, and how MeCo, token ids and decomposition were done."""
    export = config.mix.export
    shards: dict[int, dict[str, Any]] = {}
    for item in sorted(files, key=lambda row: (row["shard"], row["file"])):
        shard = shards.setdefault(item["shard"], {"shard": item["shard"], "phase": item["phase"], "rows":
                                                  item["rows"], "tokens": item["tokens"], "files": {}})
        shard["files"][item["kind"]] = {"path": item["file"], "rows": item["rows"], "tokens": item["tokens"],
                                        "bytes": item["bytes"], "sha256": item["sha256"]}
        for key in ("token_ids", "conditioned_rows", "conditioned_tokens", "tail_tokens"):
            if item[key]:
                shard[key] = item[key]
    index: dict[str, Any] = {
        "run_id": run_id, "seed": config.mix.seed, "format": export.format,
        "order": "phases in the order listed; within a phase, shards by number (numbers rise through the "
                 "schedule); within a shard, rows in file order",
        "phases": [{key: part[key] for key in ("name", "index", "rows", "tokens")}
                   | {"shards": list(range(part["first_shard"], part["first_shard"] + part["shards"])),
                      "cooldown": part["name"] in export.meco.cooldown_phases}
                   for part in layout],
        "rows": sum(part["rows"] for part in layout), "tokens": sum(part["tokens"] for part in layout),
        "shards": [shards[number] for number in sorted(shards)],
    }
    if export.meco.enabled:
        conditioned = sum(shard.get("conditioned_tokens", 0) for shard in index["shards"])
        index["meco"] = {
            "template": export.meco.template, "conditioned_share": export.meco.conditioned_share,
            "cooldown_phases": export.meco.cooldown_phases,
            "conditioned_rows": sum(shard.get("conditioned_rows", 0) for shard in index["shards"]),
            "conditioned_tokens": conditioned,
            "realised_share": conditioned / index["tokens"] if index["tokens"] else 0.0,
        }
    if writer.token_info is not None:
        index["tokenized"] = {**writer.token_info,
                              "token_ids": sum(shard.get("token_ids", 0) for shard in index["shards"]),
                              "layout": "document i = tokens[offsets[i]:offsets[i+1]]: meco prefix "
                                        "(prefix_tokens in the text shard), text, EOS"}
    if export.decompose:
        buckets: dict[str, dict[str, int]] = {}
        for item in files:
            if item["kind"].startswith("chunks-"):
                bucket = buckets.setdefault(item["kind"].removeprefix("chunks-"), {"chunks": 0, "tokens": 0})
                bucket["chunks"] += item["rows"]
                bucket["tokens"] += item["tokens"]
        index["decomposition"] = {
            "min_chunk_log2": export.min_chunk_log2, "max_chunk_log2": export.max_chunk_log2,
            "buckets": dict(sorted(buckets.items(), key=lambda entry: int(entry[0]))),
            "dropped_tail_tokens": sum(shard.get("tail_tokens", 0) for shard in index["shards"]),
        }
    return index


def _input_versions(store: TableStore, config: Config) -> dict[str, int | None]:
    return {config.mix.input_table: store.version(config.mix.input_table)}


def run(ctx: StageContext) -> StageResult:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    config, store, tables, run_id, spark = ctx.config, ctx.store, ctx.tables, ctx.run_id, ctx.spark
    settings = config.mix
    if not store.exists(settings.input_table):
        raise ConfigError(f"input table '{settings.input_table}' does not exist; run the earlier stages "
                          "first", key="mix.input_table", source=config.source)
    source = store.read(settings.input_table)
    wanted = ["doc_id", "text", "n_chars", "url", "source", "source_id", "domain", settings.domains.column]
    docs = source.select(*dict.fromkeys(name for name in wanted if name and name in source.columns))
    for name in ("url", "source", "source_id", "domain"):
        if name not in docs.columns:
            docs = docs.withColumn(name, F.lit(None).cast("string"))
    docs = (docs.withColumn("domain", domain_column(config, docs.columns))
            .withColumn("n_tokens", token_column(config))
            .persist(StorageLevel.MEMORY_AND_DISK))
    phases = [phase.name for phase in settings.phases]
    try:
        sizes = docs.groupBy("domain").agg(F.count("*").alias("docs"), F.sum("n_tokens").alias("tokens"))
        available = {row["domain"]: (int(row["docs"]), int(row["tokens"] or 0)) for row in sizes.collect()}
        total_available = sum(tokens for _, tokens in available.values())
        budget = settings.total_tokens or float(total_available)
        plans = plan_schedule(available, budget, config)
        mixture = _with_sample_order(sample_schedule(docs, plans, phases, settings.seed), settings.seed)
        written = store.write(mixture.select(*MIXTURE_COLUMNS), tables.mixture, mode="overwrite",
                              run_id=run_id)
    finally:
        docs.unpersist()

    realised, repeats = _realised(store.read(tables.mixture))
    inputs = _input_versions(store, config)
    manifest = _manifest(plans, realised, repeats, settings.seed, config.config_hash(), inputs, run_id)
    manifest_version = store.write(spark.createDataFrame(manifest, _MANIFEST_SCHEMA), tables.mix_manifest,
                                   mode="append", run_id=run_id).version
    schedule = _schedule_summary(plans, manifest, repeats)
    details: dict[str, Any] = {"manifest": manifest, "schedule": schedule, "budget_tokens": budget,
                               "available_tokens": total_available,
                               "manifest_json": storage.join(ctx.run_dir, "mix_manifest.json")}
    if settings.export.enabled:
        details["export"] = export_shards(store.read(tables.mixture), config, run_id)
    storage.write_bytes(details["manifest_json"], json.dumps(
        {"run_id": run_id, "seed": settings.seed, "config_hash": config.config_hash(),
         "inputs": inputs, "phases": phases, "rows": manifest, "schedule": schedule,
         "export": details.get("export")}, indent=2, sort_keys=True).encode(), config.output.storage_options)

    # The funnel counts documents: those used at least once (in any phase) and those never sampled.
    input_docs = sum(docs_count for docs_count, _ in available.values())
    used_docs = store.read(tables.mixture).select("doc_id").distinct().count()
    details["mixture_rows"] = sum(int(row["realised_docs"]) for row in manifest)
    return StageResult(stage="mix", docs_in=input_docs, docs_out=used_docs,
                       drops={"not_sampled": input_docs - used_docs} if input_docs > used_docs else {},
                       chars_in=0, chars_out=0,
                       tables={tables.mixture: written.version, tables.mix_manifest: manifest_version},
                       details=details)


def _realised(mixture: DataFrame) -> tuple[dict[tuple[str, str], Any], dict[str, int]]:
    """Per (phase, domain): rows, tokens and the most copies of one document in that phase; per domain:
    the most copies of one document over the whole schedule."""
    from pyspark.sql import functions as F

    per_doc = (mixture.groupBy("phase", "domain", "doc_id")
               .agg(F.count("*").alias("copies"), F.first("n_tokens").alias("n_tokens")))
    per_domain = per_doc.groupBy("phase", "domain").agg(
        F.sum("copies").alias("docs"), F.sum(F.col("copies") * F.col("n_tokens")).alias("tokens"),
        F.max("copies").alias("max_repeats"))
    realised = {(row["phase"], row["domain"]): row for row in per_domain.collect()}
    over_schedule = (mixture.groupBy("domain", "doc_id").count().groupBy("domain")
                     .agg(F.max("count").alias("repeats")).collect())
    return realised, {row["domain"]: int(row["repeats"]) for row in over_schedule}


_MANIFEST_SCHEMA = ("run_id string, phase string, domain string, available_docs long, "
                    "available_tokens long, target_weight double, target_tokens double, "
                    "planned_tokens double, "
                    "realised_docs long, realised_tokens long, epochs double, max_repeats long, "
                    "cap_bound boolean, feasible boolean, relative_error double, "
                    "max_epochs double, schedule_epochs double, schedule_max_repeats long, seed long, "
                    "config_hash string, input_versions string")


def _manifest(plans: list[DomainPlan], realised: dict[tuple[str, str], Any], repeats: dict[str, int],
              seed: int, config_hash: str, inputs: dict[str, int | None],
              run_id: str) -> list[dict[str, Any]]:
    """One row per phase and domain: target vs realised tokens, the phase's epochs and the schedule's
    (all phases) epochs against the domain's cap."""
    tokens_by_domain: dict[str, int] = {}
    for (_, domain), got in realised.items():
        tokens_by_domain[domain] = tokens_by_domain.get(domain, 0) + int(got["tokens"])
    rows = []
    for plan in plans:
        got = realised.get((plan.phase, plan.domain))
        tokens = int(got["tokens"]) if got else 0
        rows.append({
            "run_id": run_id, "phase": plan.phase, "domain": plan.domain,
            "available_docs": plan.available_docs, "available_tokens": plan.available_tokens,
            "target_weight": plan.target_weight, "target_tokens": plan.target_tokens,
            "planned_tokens": plan.planned_tokens, "realised_docs": int(got["docs"]) if got else 0,
            "realised_tokens": tokens,
            "epochs": tokens / plan.available_tokens if plan.available_tokens else 0.0,
            "max_repeats": int(got["max_repeats"]) if got else 0,
            "cap_bound": plan.cap_bound, "feasible": plan.feasible,
            "relative_error": ((tokens - plan.target_tokens) / plan.target_tokens
                               if plan.target_tokens else 0.0),
            "max_epochs": plan.max_epochs,
            "schedule_epochs": (tokens_by_domain.get(plan.domain, 0) / plan.available_tokens
                                if plan.available_tokens else 0.0),
            "schedule_max_repeats": repeats.get(plan.domain, 0),
            "seed": seed, "config_hash": config_hash, "input_versions": json.dumps(inputs, sort_keys=True),
        })
    return rows


def _schedule_summary(plans: list[DomainPlan], manifest: list[dict[str, Any]],
                      repeats: dict[str, int]) -> dict[str, Any]:
    """Per domain over the whole schedule: planned and realised epochs against the cap, the most copies
    of any one document; and the largest repeat of any document in the mixture."""
    planned = schedule_epochs(plans)
    domains: dict[str, dict[str, Any]] = {}
    for row in manifest:
        entry = domains.setdefault(row["domain"], {
            "max_epochs": row["max_epochs"], "planned_epochs": planned.get(row["domain"], 0.0),
            "epochs": row["schedule_epochs"], "max_repeats": row["schedule_max_repeats"], "phases": {}})
        entry["phases"][row["phase"]] = row["epochs"]
    return {"domains": domains, "max_repeats": max(repeats.values(), default=0)}


STAGE = Stage("mix", check, run, reads=lambda config: [config.mix.input_table])
