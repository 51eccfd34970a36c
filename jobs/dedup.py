"""Dedup: exact duplicates, then MinHash-LSH near duplicates, within the batch and against earlier runs.

    bronze --(features: exact hash, MinHash signature, LSH band keys; one Arrow pass)-->
      exact:  group by hash; keeper = best by the keep policy (documents kept by earlier runs win)
      fuzzy:  (band, key) buckets -> star edges to the bucket's best document -> optional verification
              by estimated Jaccard -> connected components -> keeper per component
    -> deduped (kept documents), duplicates (why each removed document went), indexes of kept documents
       (exact hashes, band keys, signatures) that the next incremental run deduplicates against.

    spark-submit jobs/dedup.py --config conf/cluster.yaml
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __name__ == "__main__" and not __package__:  # spark-submit jobs/dedup.py from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# pandas at module level: pandas_udf resolves its type hints by name
import pandas as pd
import pyarrow as pa

from jobs import audit
from jobs.components import connected_components
from jobs.config import Config, ConfigError, NormalizationSettings
from jobs.stats import StageResult
from jobs.tables import TableStore, open_store
from udfs.minhash import (
    FEATURE_SCHEMA,
    MinHashSpec,
    candidate_probability,
    dedup_features,
    optimal_lsh_params,
    signature_jaccard,
)
from udfs.normalize import TextNormalization

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

DUPLICATE_COLUMNS = ["doc_id", "cluster_id", "keeper_doc_id", "method", "est_jaccard", "run_id"]
OLD, NEW = 0, 1  # priority tiers: documents kept by earlier runs always win


def _normalization(settings: NormalizationSettings) -> TextNormalization:
    return TextNormalization(**settings.model_dump())


def minhash_spec(config: Config) -> MinHashSpec:
    settings = config.dedup.minhash
    return MinHashSpec(num_perm=settings.num_perm, seed=settings.seed, ngram=settings.ngram,
                       unit=settings.unit, hash_mode=settings.hash_mode, max_shingles=settings.max_shingles,
                       normalization=_normalization(settings.normalization))


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


def check(config: Config, earlier: Sequence[str] = ()) -> None:
    if config.dedup.keep == "highest_quality" and not config.dedup.quality_column:
        raise ConfigError("keep=highest_quality needs dedup.quality_column", key="dedup.quality_column",
                          source=config.source)
    lsh_params(config)


def _priority(frame: DataFrame, config: Config) -> Column:
    """Sortable keeper priority: (tier, policy key, doc_id); the smallest wins."""
    from pyspark.sql import functions as F

    keep = config.dedup.keep
    if keep == "earliest_crawl":
        key = F.coalesce(F.col("crawl_time").cast("double"), F.lit(float("inf")))
    elif keep == "highest_quality":
        if config.dedup.quality_column not in frame.columns:
            raise ConfigError(
                f"keep=highest_quality but the input has no column '{config.dedup.quality_column}' "
                "(run the quality stage first)", key="dedup.keep", source=config.source)
        key = F.coalesce(-F.col(config.dedup.quality_column).cast("double"), F.lit(float("inf")))
    else:
        key = F.lit(0.0)
    return F.struct(F.lit(NEW).alias("tier"), key.alias("key"), F.col("doc_id").alias("doc_id"))


def _old_priority(doc_id: Column) -> Column:
    from pyspark.sql import functions as F

    return F.struct(F.lit(OLD).alias("tier"), F.lit(0.0).alias("key"), doc_id.alias("doc_id"))


def _earlier_index(store: TableStore, name: str, schema: str, run_id: str) -> DataFrame:
    """An index as earlier runs left it (rows a crashed attempt of this run wrote are not 'earlier')."""
    if store.exists(name):
        index = store.read(name)
        return index.where(index.run_id != run_id)
    return store.spark.createDataFrame([], schema)


def _jaccard_udf(num_perm: int) -> Any:
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("double")
    def jaccard(left: pd.Series, right: pd.Series) -> pd.Series:
        return pd.Series(signature_jaccard(list(left), list(right), num_perm))

    return jaccard


def run(spark: SparkSession, config: Config, run_id: str) -> StageResult:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    started = time.monotonic()
    settings = config.dedup
    tables = config.tables
    store = open_store(spark, config.output.root, tables, config.output.storage_options)
    spec = minhash_spec(config)
    bands, rows = lsh_params(config)
    spec_label = index_spec_label(config)
    exact_normalization = _normalization(settings.exact.normalization)
    incremental = settings.incremental
    mode = "append" if incremental else "overwrite"

    bronze = store.read(tables.bronze)
    if incremental:  # documents already decided by an earlier run are neither re-hashed nor re-judged
        for name in (tables.deduped, tables.duplicates):  # (a retried run judges its own documents again)
            if store.exists(name):
                decided = store.read(name)
                bronze = bronze.join(decided.where(decided.run_id != run_id).select("doc_id"), "doc_id",
                                     "left_anti")
    docs = bronze.withColumn("_priority", _priority(bronze, config)).persist(StorageLevel.MEMORY_AND_DISK)

    def features_of(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield dedup_features(batch, spec, exact_normalization, bands, rows)

    features = (docs.select("doc_id", "text").mapInArrow(features_of, from_arrow_schema(FEATURE_SCHEMA))
                .join(docs.select("doc_id", "_priority"), "doc_id")
                .persist(StorageLevel.MEMORY_AND_DISK))

    # ---- exact duplicates (against the batch and the exact index of earlier runs)
    old_exact = (_earlier_index(store, tables.dedup_exact_index,
                                "exact_hash string, doc_id string, run_id string", run_id)
                 if incremental else None)
    if settings.exact.enabled:
        candidates = features.where(F.col("exact_hash").isNotNull()).select("exact_hash", "_priority")
        if old_exact is not None:
            candidates = candidates.unionByName(old_exact.select("exact_hash", _old_priority(F.col("doc_id"))
                                                                 .alias("_priority")))
        keepers = candidates.groupBy("exact_hash").agg(F.min("_priority").alias("_best"))
        exact_dups = (features.join(keepers, "exact_hash")
                      .where(F.col("_best.doc_id") != F.col("doc_id"))
                      .select("doc_id", F.concat(F.lit("exact:"), F.col("exact_hash")).alias("cluster_id"),
                              F.col("_best.doc_id").alias("keeper_doc_id"), F.lit("exact").alias("method"),
                              F.lit(1.0).alias("est_jaccard")))
    else:
        exact_dups = spark.createDataFrame([], "doc_id string, cluster_id string, keeper_doc_id string, "
                                               "method string, est_jaccard double")
    exact_dups = exact_dups.persist(StorageLevel.MEMORY_AND_DISK)
    survivors = features.join(exact_dups.select("doc_id"), "doc_id", "left_anti")

    # ---- near duplicates
    threshold = settings.minhash.jaccard_threshold
    verify_threshold = verification_threshold(threshold, spec.num_perm, settings.minhash.verify_margin_sigmas)
    details: dict[str, Any] = {"lsh": {"bands": bands, "rows": rows, "num_perm": spec.num_perm,
                                       "verify_threshold": round(verify_threshold, 4),
                                       "hash_mode": spec.hash_mode, "index_spec": spec_label}}
    details["lsh"]["candidate_probability"] = {
        f"{s:.2f}": round(float(candidate_probability(s, bands, rows)), 4)
        for s in (threshold - 0.05, threshold, threshold + 0.05) if 0 < s < 1
    }
    fuzzy_dups = spark.createDataFrame([], "doc_id string, cluster_id string, keeper_doc_id string, "
                                           "method string, est_jaccard double")
    if settings.minhash.enabled:
        jaccard = _jaccard_udf(spec.num_perm)
        new_bands = survivors.select("doc_id", "_priority",
                                     F.posexplode("band_keys").alias("band", "key"))
        signatures = survivors.select("doc_id", "signature")
        if incremental:
            old_bands = _earlier_index(store, tables.dedup_band_index,
                                       "band int, key long, doc_id string, spec string, run_id string",
                                       run_id)
            old_signatures = _earlier_index(store, tables.dedup_signature_index,
                                            "doc_id string, signature binary, spec string, run_id string",
                                            run_id)
            _check_index_spec(old_bands, spec_label, config)
            new_bands = new_bands.unionByName(old_bands.select("doc_id", _old_priority(F.col("doc_id"))
                                                               .alias("_priority"), "band", "key"))
            signatures = signatures.unionByName(old_signatures.select("doc_id", "signature"))
        buckets = (new_bands.groupBy("band", "key")
                   .agg(F.min("_priority").alias("_centre"), F.max("_priority.tier").alias("_newest"),
                        F.count(F.lit(1)).alias("_size"))
                   .where((F.col("_size") > 1) & (F.col("_newest") == NEW)))
        edges = (new_bands.join(buckets, ["band", "key"])
                 .where(F.col("doc_id") != F.col("_centre.doc_id"))
                 .select(F.col("doc_id").alias("src"), F.col("_centre.doc_id").alias("dst"))
                 .distinct())
        edge_count = edges.count()
        if settings.minhash.verify:
            left = signatures.select(F.col("doc_id").alias("src"), F.col("signature").alias("s1"))
            right = signatures.select(F.col("doc_id").alias("dst"), F.col("signature").alias("s2"))
            edges = (edges.join(left, "src").join(right, "dst")
                     .withColumn("est", jaccard("s1", "s2"))
                     .where(F.col("est") >= F.lit(verify_threshold))
                     .select("src", "dst"))
        edges = edges.persist(StorageLevel.MEMORY_AND_DISK)
        verified_count = edges.count()
        components = connected_components(spark, edges, settings.components)
        priorities = new_bands.select("doc_id", "_priority").dropDuplicates(["doc_id"])
        members = components.labels.join(priorities, components.labels.node == priorities.doc_id).select(
            "doc_id", F.col("component").alias("cluster_id"), "_priority")
        keepers = members.groupBy("cluster_id").agg(F.min("_priority").alias("_best"),
                                                    F.count(F.lit(1)).alias("_members"))
        fuzzy_dups = (members.join(keepers, "cluster_id")
                      .where((F.col("_priority.tier") == NEW) & (F.col("doc_id") != F.col("_best.doc_id")))
                      .select("doc_id", "cluster_id", F.col("_best.doc_id").alias("keeper_doc_id"))
                      .join(signatures.select("doc_id", F.col("signature").alias("s1")), "doc_id")
                      .join(signatures.select(F.col("doc_id").alias("keeper_doc_id"),
                                              F.col("signature").alias("s2")), "keeper_doc_id")
                      .select("doc_id", "cluster_id", "keeper_doc_id", F.lit("minhash").alias("method"),
                              jaccard("s1", "s2").alias("est_jaccard")))
        cluster_sizes = keepers.agg(F.count(F.lit(1)).alias("clusters"),
                                    F.max("_members").alias("largest")).first()
        details["components"] = {"method": components.method, "rounds": components.rounds,
                                 "candidate_edges": edge_count, "verified_edges": verified_count,
                                 "clusters": int(cluster_sizes["clusters"] or 0),
                                 "largest_cluster": int(cluster_sizes["largest"] or 0)}
    fuzzy_dups = fuzzy_dups.persist(StorageLevel.MEMORY_AND_DISK)

    # An exact keeper can itself be a near duplicate: point its copies at the document finally kept.
    final_keeper = fuzzy_dups.select(F.col("doc_id").alias("keeper_doc_id"),
                                     F.col("keeper_doc_id").alias("_final_keeper"))
    exact_resolved = (exact_dups.join(final_keeper, "keeper_doc_id", "left")
                      .withColumn("keeper_doc_id", F.coalesce("_final_keeper", "keeper_doc_id"))
                      .drop("_final_keeper"))
    duplicates = exact_resolved.unionByName(fuzzy_dups).withColumn("run_id", F.lit(run_id))
    kept = docs.join(duplicates.select("doc_id"), "doc_id", "left_anti").drop("_priority")
    kept_features = features.join(duplicates.select("doc_id"), "doc_id", "left_anti")

    counts = docs.agg(F.count(F.lit(1)).alias("docs"), F.sum("n_chars").alias("chars")).first()
    exact_count, fuzzy_count = exact_dups.count(), fuzzy_dups.count()
    kept_stats = kept.agg(F.count(F.lit(1)).alias("docs"), F.sum("n_chars").alias("chars")).first()

    written = {
        tables.deduped: store.write(kept.select(*bronze.columns), tables.deduped, mode=mode, run_id=run_id),
        tables.duplicates: store.write(duplicates.select(*DUPLICATE_COLUMNS), tables.duplicates, mode=mode,
                                       run_id=run_id),
        tables.decisions: audit.record(store, config, audit.decisions(
            store.read(tables.duplicates).where(F.col("run_id") == run_id), "dedup", "dropped",
            F.concat(F.col("method"), F.lit("_duplicate")),
            F.format_string("keeper=%s est_jaccard=%.3f cluster=%s", "keeper_doc_id", "est_jaccard",
                            "cluster_id"), run_id), run_id, "dedup"),
        tables.dedup_exact_index: store.write(
            kept_features.select("exact_hash", "doc_id", F.lit(run_id).alias("run_id")),
            tables.dedup_exact_index, mode=mode, run_id=run_id),
        tables.dedup_band_index: store.write(
            kept_features.where("has_shingles").select(
                F.posexplode("band_keys").alias("band", "key"), "doc_id",
                F.lit(spec_label).alias("spec"), F.lit(run_id).alias("run_id")),
            tables.dedup_band_index, mode=mode, run_id=run_id),
        tables.dedup_signature_index: store.write(
            kept_features.where("has_shingles").select("doc_id", "signature", F.lit(spec_label).alias("spec"),
                                                       F.lit(run_id).alias("run_id")),
            tables.dedup_signature_index, mode=mode, run_id=run_id),
    }
    for frame in (docs, features, exact_dups, fuzzy_dups):
        frame.unpersist()

    drops = {}
    if exact_count:
        drops["exact_duplicate"] = int(exact_count)
    if fuzzy_count:
        drops["near_duplicate"] = int(fuzzy_count)
    return StageResult(
        stage="dedup",
        docs_in=int(counts["docs"]),
        docs_out=int(kept_stats["docs"]),
        chars_in=int(counts["chars"] or 0),
        chars_out=int(kept_stats["chars"] or 0),
        drops=drops,
        seconds=round(time.monotonic() - started, 2),
        tables={name: result.version for name, result in written.items()},
        details=details,
    )


def _check_index_spec(old_bands: DataFrame, spec_label: str, config: Config) -> None:
    specs = [row["spec"] for row in old_bands.select("spec").distinct().limit(3).collect()]
    foreign = [spec for spec in specs if spec != spec_label]
    if foreign:
        raise ConfigError(
            f"the dedup index was built with {foreign[0]} but the config now gives {spec_label}; "
            "restore the MinHash/LSH settings or rebuild the index with dedup.incremental=false",
            key="dedup.minhash", source=config.source)


def main(argv: list[str] | None = None) -> int:
    from jobs.cli import stage_main

    return stage_main("dedup", argv)


if __name__ == "__main__":
    sys.exit(main())
