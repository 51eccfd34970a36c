"""Dedup: exact duplicates, then MinHash-LSH near duplicates, within the batch and against earlier runs.

    bronze --(features: exact hash, MinHash signature, LSH band keys; one Arrow pass)-->
      exact:  group by hash; keeper = best by the keep policy (documents kept by earlier runs win)
      fuzzy:  (band, key) buckets -> star edges to the bucket's best document -> optional verification
              by estimated Jaccard -> connected components -> keeper per component
    -> deduped (kept documents), duplicates (why each removed document went), indexes of kept documents
       (exact hashes, band keys, signatures) that the next incremental run deduplicates against.

The steps (each a function below): features -> exact -> candidates -> components -> keepers -> write.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from jobs.core import audit, models
from jobs.core.components import connected_components
from jobs.core.config import Config, ConfigError
from jobs.core.increment import undecided
from jobs.core.lineage import Stored
from jobs.core.pandas_udfs import jaccard_udf, score_udf
from jobs.core.stage import Stage, StageContext, StageResult
from udfs.minhash import (
    FEATURE_SCHEMA,
    MinHashSpec,
    candidate_probability,
    dedup_features,
    optimal_lsh_params,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

DUPLICATE_COLUMNS = ["doc_id", "cluster_id", "keeper_doc_id", "method", "est_jaccard", "run_id"]


def minhash_spec(config: Config) -> MinHashSpec:
    return config.dedup.minhash.build()


def lsh_params(config: Config) -> tuple[int, int]:
    settings = config.dedup.minhash
    if settings.bands is not None and settings.rows is not None:
        return settings.bands, settings.rows
    return optimal_lsh_params(settings.jaccard_threshold, settings.num_perm,
                              settings.false_positive_weight, settings.false_negative_weight)


def index_spec_label(config: Config) -> str:
    """Everything that must match for band keys and signatures of two runs to be comparable."""
    spec = minhash_spec(config)
    bands, rows = lsh_params(config)
    return (f"{spec.hash_mode}/p{spec.num_perm}/s{spec.seed}/{spec.unit}{spec.ngram}/cap{spec.max_shingles}/"
            f"b{bands}r{rows}/{spec.normalization.describe()}")


def verification_threshold(threshold: float, num_perm: int, margin_sigmas: float) -> float:
    """Lowest estimated Jaccard an edge may have: the threshold minus ``margin_sigmas`` standard errors
    of the MinHash estimate at the threshold, so estimate noise does not cost recall at the threshold."""
    return max(0.0, threshold - margin_sigmas * (threshold * (1 - threshold) / num_perm) ** 0.5)


def check(ctx: StageContext) -> None:
    config = ctx.config
    if config.dedup.keep == "highest_quality" and "train_quality" not in ctx.earlier:
        models.check_classifier(config, "quality")  # bronze has no scores: dedup scores with this model
    lsh_params(config)


def _priority(frame: DataFrame, config: Config) -> Column:
    """Sortable keeper priority: (policy key, doc_id); the smallest wins. For ``highest_quality`` the key
    is the input's ``dedup.quality_column`` when it has one, else the quality classifier's score, computed
    here (one fastText pass over the documents to judge), so the standard order ingest -> dedup ->
    quality keeps the best copy without a quality pass first."""
    from pyspark.sql import functions as F

    keep = config.dedup.keep
    if keep == "earliest_crawl":
        key = F.coalesce(F.col("crawl_time").cast("double"), F.lit(float("inf")))
    elif keep == "highest_quality":
        column = config.dedup.quality_column
        score = (F.col(column) if column in frame.columns
                 else score_udf(models.scoring_model(config, "quality"))(F.col("text")))
        key = F.coalesce(-score.cast("double"), F.lit(float("inf")))
    else:
        key = F.lit(0.0)
    return F.struct(key.alias("key"), F.col("doc_id").alias("doc_id"))


def _old_rank(doc_id: Column) -> Column:
    """Documents kept by earlier runs rank below every new one (ranks >= 0): a negative number from a
    hash of the id, so they always win and never need sorting. (Two earlier documents would share a rank
    only on a 62-bit hash collision; both would then count as the bucket's best, which is harmless.)"""
    from pyspark.sql import functions as F

    return F.lit(-(1 << 62)) + F.shiftrightunsigned(F.xxhash64(doc_id), 2)


def _earlier_index(ctx: StageContext, name: str, schema: str) -> DataFrame:
    """An index as earlier runs left it (rows a crashed attempt of this run wrote are not 'earlier')."""
    if ctx.store.exists(name):
        index = ctx.store.read(name)
        return index.where(index.run_id != ctx.run_id)
    return ctx.spark.createDataFrame([], schema)


DUPLICATE_SCHEMA = "doc_id string, cluster_id string, keeper_doc_id string, method string, est_jaccard double"


@dataclass
class Work:
    """What the steps hand each other.

    Documents are numbered by keeper priority (``rank``: 0 is the best new document, earlier runs' kept
    documents are negative), so every "best of a group" below is a min over longs: hash aggregation and
    8-byte keys instead of sorting structs of strings, which is what made 1M documents run out of memory.
    Every frame read twice is stored once (:class:`Stored`): short plans, and the writes at the end do not
    invalidate what the steps computed from the tables they write."""

    source: DataFrame  # the bronze rows to judge, all columns (never stored: it has text)
    docs: DataFrame  # doc_id, n_chars, rank of those documents (stored: small)
    stored: Stored
    features: DataFrame | None = None  # doc_id, exact_hash, has_shingles, signature, band_keys
    exact: DataFrame | None = None  # exact duplicates (DUPLICATE_SCHEMA)
    near: DataFrame | None = None  # near duplicates (DUPLICATE_SCHEMA)
    details: dict[str, Any] = field(default_factory=dict)


def pending_documents(ctx: StageContext) -> tuple[DataFrame, DataFrame]:
    """(bronze rows that may be pending, the pending ones): all of bronze, or (incremental) bronze less
    the documents an earlier run already kept or removed."""
    store, tables = ctx.store, ctx.tables
    bronze = store.read(tables.bronze)
    if not ctx.config.dedup.incremental:
        return bronze, bronze
    decided = [store.read(name) for name in (tables.deduped, tables.duplicates) if store.exists(name)]
    return undecided(bronze, decided, ctx.run_id)


def ranked(source: DataFrame, config: Config) -> DataFrame:
    """doc_id, n_chars and a rank that increases with keeper priority (the smallest is the best): one
    global sort of a narrow frame; ids taken right after it follow its order on any partitioning."""
    from pyspark.sql import functions as F

    return (source.select("doc_id", "n_chars", _priority(source, config).alias("_priority"))
            .orderBy("_priority").select("doc_id", "n_chars", F.monotonically_increasing_id().alias("rank")))


def features_step(ctx: StageContext, work: Work) -> None:
    """Exact hash, MinHash signature and band keys of every document, in one Arrow pass."""
    from pyspark.sql.pandas.types import from_arrow_schema

    config = ctx.config
    spec = minhash_spec(config)
    bands, rows = lsh_params(config)
    exact_normalization = config.dedup.exact.normalization.build()

    def features_of(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield dedup_features(batch, spec, exact_normalization, bands, rows)

    documents = work.source.join(work.docs.select("doc_id"), "doc_id", "left_semi")
    work.features = work.stored(documents.select("doc_id", "text")
                                .mapInArrow(features_of, from_arrow_schema(FEATURE_SCHEMA)), on_disk=True)


def exact_step(ctx: StageContext, work: Work) -> None:
    """One keeper per exact hash by the keep policy; hashes kept by earlier runs win (incremental)."""
    from pyspark.sql import functions as F

    assert work.features is not None
    if not ctx.config.dedup.exact.enabled:
        work.exact = ctx.spark.createDataFrame([], DUPLICATE_SCHEMA)
        return
    hashed = (work.features.where(F.col("exact_hash").isNotNull()).select("doc_id", "exact_hash")
              .join(work.docs.select("doc_id", "rank"), "doc_id"))
    candidates = hashed.select("exact_hash", "rank", "doc_id")
    if ctx.config.dedup.incremental:  # only the earlier hashes that a new document has
        schema = "exact_hash string, doc_id string, run_id string"
        old = (_earlier_index(ctx, ctx.tables.dedup_exact_index, schema)
               .join(hashed.select("exact_hash"), "exact_hash", "left_semi"))
        old_rank = _old_rank(F.col("doc_id")).alias("rank")
        candidates = candidates.unionByName(old.select("exact_hash", old_rank, "doc_id"))
    best = candidates.groupBy("exact_hash").agg(F.min("rank").alias("_best"))
    keepers = (best.join(candidates.select("exact_hash", F.col("rank").alias("_best"),
                                           F.col("doc_id").alias("keeper_doc_id")), ["exact_hash", "_best"])
               .dropDuplicates(["exact_hash"]))
    work.exact = work.stored(
        hashed.join(keepers, "exact_hash").where(F.col("rank") != F.col("_best"))
        .select("doc_id", F.concat(F.lit("exact:"), F.col("exact_hash")).alias("cluster_id"),
                "keeper_doc_id", F.lit("exact").alias("method"), F.lit(1.0).alias("est_jaccard")))


@dataclass
class Candidates:
    ids: DataFrame  # rank, doc_id of every document on a candidate edge (cached)
    signatures: DataFrame  # rank, signature of those documents (cached)
    edges: DataFrame  # src, dst ranks: verified candidate pairs


def candidates_step(ctx: StageContext, work: Work) -> Candidates:
    """Star edges from every LSH bucket to its best document, verified by estimated Jaccard."""
    from pyspark.sql import functions as F

    assert work.features is not None and work.exact is not None
    config, settings = ctx.config, ctx.config.dedup.minhash
    survivors = work.features.join(work.exact.select("doc_id"), "doc_id", "left_anti")
    numbered = survivors.select("doc_id", "band_keys", "signature").join(work.docs.select("doc_id", "rank"),
                                                                        "doc_id")
    bands = numbered.select("rank", F.posexplode("band_keys").alias("band", "key"))
    signatures = numbered.select("rank", "doc_id", "signature")
    if config.dedup.incremental:
        # Only the earlier documents that share a bucket with a new one: the index is joined on the new
        # band keys (a broadcast semi-join for a night's worth), never grouped whole.
        old_bands = _earlier_index(ctx, ctx.tables.dedup_band_index,
                                   "band int, key long, doc_id string, spec string, run_id string")
        _check_index_spec(old_bands, index_spec_label(config), config)
        colliding = work.stored(old_bands.join(bands.select("band", "key"), ["band", "key"], "left_semi")
                                .select(_old_rank(F.col("doc_id")).alias("rank"), "band", "key", "doc_id"))
        old_signatures = (_earlier_index(ctx, ctx.tables.dedup_signature_index,
                                         "doc_id string, signature binary, spec string, run_id string")
                          .join(colliding.select("doc_id"), "doc_id", "left_semi"))
        bands = bands.unionByName(colliding.select("rank", "band", "key"))
        signatures = signatures.unionByName(
            old_signatures.select(_old_rank(F.col("doc_id")).alias("rank"), "doc_id", "signature"))
    bands = work.stored(bands)
    # A star per bucket (every member to the bucket's best document): edges grow with members, never with
    # members squared, so one giant bucket of boilerplate costs what its members cost.
    buckets = (bands.groupBy("band", "key")
               .agg(F.min("rank").alias("_centre"), F.max("rank").alias("_newest"),
                    F.count(F.lit(1)).alias("_size"))
               .where((F.col("_size") > 1) & (F.col("_newest") >= 0)))
    edges = work.stored(bands.join(buckets, ["band", "key"]).where(F.col("rank") != F.col("_centre"))
                      .select(F.col("rank").alias("src"), F.col("_centre").alias("dst")).distinct())
    candidate_count = edges.count()
    # Each signature is looked up once, and only for documents on a candidate edge: a semi-join with
    # the (small) node set, which AQE broadcasts, instead of carrying every signature through the joins.
    nodes = (edges.select(F.col("src").alias("rank"))
             .union(edges.select(F.col("dst").alias("rank"))).distinct())
    on_edges = work.stored(signatures.join(nodes, "rank", "left_semi"))
    if settings.verify:
        jaccard = jaccard_udf(settings.num_perm)
        threshold = verification_threshold(settings.jaccard_threshold, settings.num_perm,
                                           settings.verify_margin_sigmas)
        left = on_edges.select(F.col("rank").alias("src"), F.col("signature").alias("s1"))
        right = on_edges.select(F.col("rank").alias("dst"), F.col("signature").alias("s2"))
        edges = work.stored(edges.join(left, "src").join(right, "dst")
                          .where(jaccard("s1", "s2") >= F.lit(threshold)).select("src", "dst"))
    work.details["components"] = {"candidate_edges": candidate_count, "verified_edges": edges.count()}
    return Candidates(on_edges.select("rank", "doc_id"), on_edges.select("rank", "signature"), edges)


def components_and_keepers_step(ctx: StageContext, work: Work, candidates: Candidates) -> None:
    """Connected components of the verified edges. A component is labelled with its smallest node, the
    best-ranked document, which is therefore its keeper."""
    from pyspark.sql import functions as F

    settings = ctx.config.dedup
    components = connected_components(ctx.spark, candidates.edges, settings.components)
    labels = components.labels.select(F.col("node").cast("long").alias("rank"),
                                      F.col("component").cast("long").alias("keeper"))
    sizes = labels.groupBy("keeper").count().agg(F.count(F.lit(1)).alias("clusters"),
                                                 F.max("count").alias("largest")).first()
    ids, signatures = candidates.ids, candidates.signatures
    jaccard = jaccard_udf(settings.minhash.num_perm)
    removed = labels.where((F.col("rank") >= 0) & (F.col("rank") != F.col("keeper")))
    work.near = work.stored(
        removed.join(ids, "rank").join(signatures.withColumnRenamed("signature", "s1"), "rank")
        .join(ids.select(F.col("rank").alias("keeper"), F.col("doc_id").alias("keeper_doc_id")), "keeper")
        .join(signatures.select(F.col("rank").alias("keeper"), F.col("signature").alias("s2")), "keeper")
        .select("doc_id", F.col("keeper_doc_id").alias("cluster_id"), "keeper_doc_id",
                F.lit("minhash").alias("method"), jaccard("s1", "s2").alias("est_jaccard")))
    work.details["components"].update({"method": components.method, "rounds": components.rounds,
                                       "clusters": int(sizes["clusters"] or 0),
                                       "largest_cluster": int(sizes["largest"] or 0)})


def duplicates_of(ctx: StageContext, work: Work) -> DataFrame:
    """Every removed document with its final keeper: an exact keeper that is itself a near duplicate
    points on to the document finally kept."""
    from pyspark.sql import functions as F

    assert work.exact is not None
    near = work.near if work.near is not None else ctx.spark.createDataFrame([], DUPLICATE_SCHEMA)
    final_keeper = near.select(F.col("doc_id").alias("keeper_doc_id"),
                               F.col("keeper_doc_id").alias("_final_keeper"))
    exact = (work.exact.join(final_keeper, "keeper_doc_id", "left")
             .withColumn("keeper_doc_id", F.coalesce("_final_keeper", "keeper_doc_id"))
             .drop("_final_keeper"))
    return exact.unionByName(near).withColumn("run_id", F.lit(ctx.run_id))


def write_step(ctx: StageContext, work: Work, duplicates: DataFrame, columns: list[str]) -> dict[str, Any]:
    """deduped, duplicates, their decisions, and the indexes of kept documents for later runs."""
    from pyspark.sql import functions as F

    assert work.features is not None
    store, tables, run_id = ctx.store, ctx.tables, ctx.run_id
    incremental = ctx.config.dedup.incremental
    spec_label = index_spec_label(ctx.config)
    kept = (work.source.join(work.docs.select("doc_id"), "doc_id", "left_semi")
            .join(duplicates.select("doc_id"), "doc_id", "left_anti"))
    kept_features = work.features.join(duplicates.select("doc_id"), "doc_id", "left_anti")
    written = {
        tables.deduped: ctx.save(kept.select(*columns), tables.deduped, key=["doc_id"],
                                 incremental=incremental),
        tables.duplicates: ctx.save(duplicates.select(*DUPLICATE_COLUMNS), tables.duplicates, key=["doc_id"],
                                    incremental=incremental),
    }
    written[tables.decisions] = audit.record(ctx, audit.decisions(
        store.read(tables.duplicates).where(F.col("run_id") == run_id), "dedup", "dropped",
        F.concat(F.col("method"), F.lit("_duplicate")),
        F.format_string("keeper=%s est_jaccard=%.3f cluster=%s", "keeper_doc_id", "est_jaccard",
                        "cluster_id"),
        run_id), "dedup")
    written[tables.dedup_exact_index] = ctx.save(
        kept_features.select("exact_hash", "doc_id", F.lit(run_id).alias("run_id")),
        tables.dedup_exact_index, key=["doc_id"], incremental=incremental)
    with_shingles = kept_features.where("has_shingles")
    written[tables.dedup_band_index] = ctx.save(
        with_shingles.select(F.posexplode("band_keys").alias("band", "key"), "doc_id",
                             F.lit(spec_label).alias("spec"), F.lit(run_id).alias("run_id")),
        tables.dedup_band_index, key=["doc_id", "band"], incremental=incremental)
    written[tables.dedup_signature_index] = ctx.save(
        with_shingles.select("doc_id", "signature", F.lit(spec_label).alias("spec"),
                             F.lit(run_id).alias("run_id")),
        tables.dedup_signature_index, key=["doc_id"], incremental=incremental)
    return {name: result.version for name, result in written.items()}


def lsh_details(config: Config) -> dict[str, Any]:
    settings = config.dedup.minhash
    bands, rows = lsh_params(config)
    threshold = settings.jaccard_threshold
    verify = verification_threshold(threshold, settings.num_perm, settings.verify_margin_sigmas)
    return {"bands": bands, "rows": rows, "num_perm": settings.num_perm, "verify_threshold": round(verify, 4),
            "hash_mode": settings.hash_mode, "index_spec": index_spec_label(config),
            "candidate_probability": {f"{s:.2f}": round(float(candidate_probability(s, bands, rows)), 4)
                                      for s in (threshold - 0.05, threshold, threshold + 0.05) if 0 < s < 1}}


def run(ctx: StageContext) -> StageResult:
    from pyspark.sql import functions as F

    rows, pending = pending_documents(ctx)
    stored = Stored()
    work = Work(source=rows, docs=stored(ranked(pending, ctx.config)), stored=stored)
    work.details["lsh"] = lsh_details(ctx.config)
    try:
        features_step(ctx, work)
        exact_step(ctx, work)
        if ctx.config.dedup.minhash.enabled:
            components_and_keepers_step(ctx, work, candidates_step(ctx, work))
        duplicates = work.stored(duplicates_of(ctx, work))
        counts = work.docs.agg(F.count(F.lit(1)).alias("docs"), F.sum("n_chars").alias("chars")).first()
        removed = {row["method"]: (int(row["docs"]), int(row["chars"] or 0)) for row in
                   duplicates.join(work.docs.select("doc_id", "n_chars"), "doc_id")
                   .groupBy("method").agg(F.count(F.lit(1)).alias("docs"), F.sum("n_chars").alias("chars"))
                   .collect()}
        versions = write_step(ctx, work, duplicates, rows.columns)
    finally:
        stored.release()
    drops = {f"{'exact' if method == 'exact' else 'near'}_duplicate": docs
             for method, (docs, _) in sorted(removed.items())}
    removed_chars = sum(chars for _, chars in removed.values())
    docs_in, chars_in = int(counts["docs"]), int(counts["chars"] or 0)
    return StageResult(stage="dedup", docs_in=docs_in, docs_out=docs_in - sum(drops.values()),
                       chars_in=chars_in, chars_out=chars_in - removed_chars, drops=drops, tables=versions,
                       details=work.details)


def _check_index_spec(old_bands: DataFrame, spec_label: str, config: Config) -> None:
    """The index holds one spec (an incremental write comes after this check, any other replaces the
    index), so its first row tells: one file read, not a scan of the index."""
    first = old_bands.select("spec").head(1)
    if first and first[0]["spec"] != spec_label:
        raise ConfigError(
            f"the dedup index was built with {first[0]['spec']} but the config now gives {spec_label}; "
            "restore the MinHash/LSH settings or rebuild the index with dedup.incremental=false",
            key="dedup.minhash", source=config.source)


STAGE = Stage("dedup", check, run, reads=lambda config: [config.tables.bronze])
