"""Mix: domain-weighted resampling to token targets, deterministic and independent of partitioning.

    filtered --(domain, n_tokens)--> per phase and domain: full copies of every document plus the
    documents with the smallest hash of (seed, phase, doc_id, copy) until the remaining target tokens
    are filled --> mixture (doc_id, domain, phase, copy_index, text, ...) + mix_manifest (+ JSON)
    [--> export: seeded global shuffle into Parquet/JSONL shards]

No ``rand()`` and no ``DataFrame.sample()``: every decision is a function of the document and the seed.
"""

from __future__ import annotations

import fnmatch
import json
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

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
from udfs.mix import DomainPlan, decompose, parse_weights, plan_phase, temperature_weights, unimax_weights

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
                  config: Config) -> dict[str, float]:
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
        return unimax_weights(tokens, budget, config.mix.max_epochs)
    return temperature_weights(tokens, weights.temperature)


def _refuse_infeasible(plans: list[DomainPlan], config: Config) -> None:
    """A target above the epoch cap fails the stage (one line naming phase, domain and numbers) unless
    mix.allow_infeasible: then it is capped, flagged in the manifest and warned about."""
    for plan in plans:
        if plan.feasible:
            continue
        message = (f"phase {plan.phase} domain {plan.domain}: target {plan.target_tokens:,.0f} tokens "
                   f"exceeds {config.mix.max_epochs:g} epochs of {plan.available_tokens:,} available")
        if not config.mix.allow_infeasible:
            raise PolicyError(f"{message}; lower its weight, raise mix.max_epochs, or set "
                              "mix.allow_infeasible: true to cap it")
        print(f"mix: WARNING {message}; capped at {plan.planned_tokens:,.0f} (flagged infeasible, other "
              "domains unchanged)", file=sys.stderr)


def sample_phase(docs: DataFrame, plans: list[DomainPlan], phase_index: int, seed: int) -> DataFrame:
    """Every document ``full_copies`` times, plus one more copy for a token-exact share of the rest:
    the documents of smallest hash of (seed, phase, doc_id, full_copies) while they still fit in
    ``remainder_tokens``, then the one remaining document whose length best fills the gap left (only if
    that gets closer). The error is then the gap's mismatch, far below one document's length."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    spark = docs.sparkSession
    plan_rows = [(plan.domain, plan.full_copies, float(plan.remainder_tokens)) for plan in plans
                 if plan.planned_tokens > 0]
    if not plan_rows:
        return docs.limit(0).withColumn("copies", F.lit(0))
    plan_frame = spark.createDataFrame(plan_rows, "domain string, full_copies int, remainder_tokens double")
    joined = docs.join(F.broadcast(plan_frame), "domain")
    draw = unit_uniform(seed, F.lit(phase_index), "doc_id", F.col("full_copies"))
    upto = Window.partitionBy("domain").orderBy("_draw", "doc_id").rowsBetween(Window.unboundedPreceding, 0)
    ranked = (joined.withColumn("_draw", draw)
              .withColumn("_prefix", F.sum("n_tokens").over(upto) <= F.col("remainder_tokens")))
    gaps = (ranked.groupBy("domain", "remainder_tokens")
            .agg(F.sum(F.when(F.col("_prefix"), F.col("n_tokens")).otherwise(0)).alias("_filled"))
            .select("domain", (F.col("remainder_tokens") - F.col("_filled")).alias("_gap")))
    fillers = (ranked.where(~F.col("_prefix")).join(F.broadcast(gaps), "domain")
               .where(F.col("n_tokens") < 2 * F.col("_gap"))  # only when it gets closer to the target
               .groupBy("domain")
               .agg(F.min(F.struct(F.abs(F.col("n_tokens") - F.col("_gap")), F.col("_draw"), F.col("doc_id")))
                    .getField("doc_id").alias("_filler")))
    extra = (F.col("_prefix") | (F.col("doc_id") == F.coalesce(F.col("_filler"), F.lit("")))).cast("int")
    return (ranked.join(F.broadcast(fillers), "domain", "left")
            .withColumn("copies", F.col("full_copies") + extra)
            .drop("_draw", "_prefix", "_filler", "full_copies", "remainder_tokens"))


def _copies_to_rows(sampled: DataFrame, phase: str, seed: int, phase_index: int) -> DataFrame:
    from pyspark.sql import functions as F

    exploded = (sampled.where(F.col("copies") > 0)
                .withColumn("copy_index", F.explode(F.sequence(F.lit(0), F.col("copies") - 1)))
                .withColumn("phase", F.lit(phase)))
    return exploded.withColumn("sample_order", unit_uniform(seed + 1, F.lit(phase_index), "doc_id",
                                                            "copy_index"))


def export_shards(mixture: DataFrame, config: Config, run_id: str) -> dict[str, Any]:
    """Seeded global shuffle into ``shard-NNNNN`` files: shard = floor(sample_order * shards), rows in
    sample_order within a shard, so every run with the same mixture writes the same shards. With
    ``decompose``, each shard is cut into power-of-two chunks written under ``len-<2^k>/``."""
    from pyspark.sql import functions as F

    settings = config.mix.export
    target = settings.path or storage.join(config.output.root, "export", run_id)
    rows = mixture.count()
    shards = max(1, math.ceil(rows / settings.shard_docs))
    text = (F.concat(F.coalesce(F.col("url"), F.lit("")), F.lit("\n\n"), F.col("text"))
            if settings.metadata_conditioning else F.col("text"))
    shaped = (mixture.select(F.least(F.floor(F.col("sample_order") * shards), F.lit(shards - 1))
                             .cast("int").alias("shard"),
                             "sample_order", "doc_id", "phase", "domain", "copy_index", "n_tokens", "url",
                             text.alias("text"))
              .repartition(shards, "shard").sortWithinPartitions("shard", "sample_order"))
    options = dict(config.output.storage_options)
    tokenizer_uri = config.mix.tokens.tokenizer
    chars_per_token = config.mix.tokens.chars_per_token

    def files_of(part: pa.Table, shard: int) -> list[tuple[str, pa.Table]]:
        suffix = "parquet" if settings.format == "parquet" else "jsonl"
        if not settings.decompose:
            return [(f"shard-{shard:05d}.{suffix}", part)]
        tokenizer = load_tokenizer(tokenizer_uri, options) if tokenizer_uri else None
        chunks = decompose(part, settings.min_chunk_log2, settings.max_chunk_log2, tokenizer, chars_per_token)
        return [(f"len-{size:05d}/shard-{shard:05d}.{suffix}",
                 chunks.filter(pc.equal(chunks.column("bucket"), size)))
                for size in sorted(set(chunks.column("bucket").to_pylist()))]

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        received = [batch for batch in batches if batch.num_rows]
        if not received:  # hash partitioning can leave partitions without shards
            return
        table = pa.Table.from_batches(received)
        written = []
        for shard in sorted(set(table.column("shard").to_pylist())):
            part = table.filter(pc.equal(table.column("shard"), shard)).drop(["shard", "sample_order"])
            for name, content in files_of(part, shard):
                _write_file(content, storage.join(target, name), settings.format, options)
                tokens = pc.sum(content.column("n_tokens")).as_py() or 0
                written.append((name, content.num_rows, int(tokens)))
        names, row_counts, token_counts = zip(*written, strict=True)
        yield pa.RecordBatch.from_pydict({"file": list(names), "rows": list(row_counts),
                                          "tokens": list(token_counts)})

    files = sorted((row["file"], row["rows"], row["tokens"])
                   for row in shaped.mapInArrow(write, "file string, rows long, tokens long").collect())
    summary: dict[str, Any] = {"path": target, "format": settings.format, "shards": shards, "rows": rows,
                               "files": files}
    if settings.decompose:
        buckets: dict[str, dict[str, int]] = {}
        for name, count, tokens in files:
            bucket = buckets.setdefault(str(int(name.split("/")[0].removeprefix("len-"))),
                                        {"chunks": 0, "tokens": 0})
            bucket["chunks"] += count
            bucket["tokens"] += tokens
        summary["buckets"] = dict(sorted(buckets.items(), key=lambda item: int(item[0])))
    return summary


def _write_file(table: pa.Table, uri: str, file_format: str, storage_options: dict[str, str]) -> None:
    import os
    import tempfile

    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as workdir:
        local = os.path.join(workdir, "part")
        if file_format == "parquet":
            pq.write_table(table, local)
        else:
            with open(local, "w", encoding="utf-8") as handle:
                for row in table.to_pylist():
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        storage.upload(local, uri, storage_options)


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
    try:
        sizes = docs.groupBy("domain").agg(F.count("*").alias("docs"), F.sum("n_tokens").alias("tokens"))
        available = {row["domain"]: (int(row["docs"]), int(row["tokens"] or 0)) for row in sizes.collect()}
        total_available = sum(tokens for _, tokens in available.values())
        budget = settings.total_tokens or float(total_available)
        plans: list[DomainPlan] = []
        parts = []
        for index, phase in enumerate(settings.phases):
            phase_budget = budget * phase.fraction
            weights = phase_weights(phase, available, phase_budget, config)
            phase_plans = plan_phase(phase.name, available, weights, phase_budget, settings.max_epochs)
            _refuse_infeasible(phase_plans, config)
            plans.extend(phase_plans)
            sampled = sample_phase(docs, phase_plans, index, settings.seed)
            parts.append(_copies_to_rows(sampled, phase.name, settings.seed, index))
        mixture = parts[0]
        for part in parts[1:]:
            mixture = mixture.unionByName(part)
        written = store.write(mixture.select(*MIXTURE_COLUMNS), tables.mixture, mode="overwrite",
                              run_id=run_id)
    finally:
        docs.unpersist()

    per_doc = (store.read(tables.mixture).groupBy("phase", "domain", "doc_id")
               .agg(F.count("*").alias("copies"), F.first("n_tokens").alias("n_tokens")))
    per_domain = per_doc.groupBy("phase", "domain").agg(
        F.sum("copies").alias("docs"), F.sum(F.col("copies") * F.col("n_tokens")).alias("tokens"),
        F.max("copies").alias("max_repeats"))
    realised = {(row["phase"], row["domain"]): row for row in per_domain.collect()}
    inputs = _input_versions(store, config)
    manifest = _manifest(plans, realised, settings.seed, config.config_hash(), inputs, run_id)
    manifest_version = store.write(spark.createDataFrame(manifest, _MANIFEST_SCHEMA), tables.mix_manifest,
                                   mode="append", run_id=run_id).version
    run_dir = ctx.run_dir
    details: dict[str, Any] = {"manifest": manifest, "budget_tokens": budget,
                               "available_tokens": total_available,
                               "manifest_json": storage.join(run_dir, "mix_manifest.json")}
    if settings.export.enabled:
        details["export"] = export_shards(store.read(tables.mixture), config, run_id)
    storage.write_bytes(details["manifest_json"], json.dumps(
        {"run_id": run_id, "seed": settings.seed, "config_hash": config.config_hash(),
         "inputs": inputs, "rows": manifest,
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


_MANIFEST_SCHEMA = ("run_id string, phase string, domain string, available_docs long, "
                    "available_tokens long, target_weight double, target_tokens double, "
                    "planned_tokens double, "
                    "realised_docs long, realised_tokens long, epochs double, max_repeats long, "
                    "cap_bound boolean, feasible boolean, relative_error double, seed long, "
                    "config_hash string, input_versions string")


def _manifest(plans: list[DomainPlan], realised: dict[tuple[str, str], Any], seed: int, config_hash: str,
              inputs: dict[str, int | None], run_id: str) -> list[dict[str, Any]]:
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
            "seed": seed, "config_hash": config_hash, "input_versions": json.dumps(inputs, sort_keys=True),
        })
    return rows


STAGE = Stage("mix", check, run, reads=lambda config: [config.mix.input_table])
