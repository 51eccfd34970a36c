"""Train the fastText classifiers that the quality stage scores with.

    train_quality: reference-quality text (positives) against a deterministic sample of bronze
                   (negatives), balanced, bigrams: the DCLM recipe
    train_topic:   labelled documents, at most ``max_per_label`` of each label
    train_toxicity: labelled documents, the positive label against all others, balanced (Dolma's and
                   "Toxicity of the Commons"' recipe: a fastText classifier scoring every page)

Each writes ``<model>`` and ``<model>.card.json``: data counts, hyper-parameters, the text normalisation
(re-applied at scoring), held-out metrics and the model's sha256. Sampling and the held-out split hash
each document's key, so the same inputs and seed give the same training set on any cluster.

    curate train-quality --config conf/local.yaml
    spark-submit jobs/run.py --stage train_topic --config conf/cluster.yaml
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa

from jobs.core import storage
from jobs.core.config import (
    ClassifierKind,
    Config,
    ConfigError,
    QualityTrainingSettings,
    TopicTrainingSettings,
    ToxicityTrainingSettings,
    TrainingSource,
)
from jobs.core.errors import PolicyError
from jobs.core.hashing import unit_uniform
from jobs.core.stage import Stage, StageContext, StageResult
from jobs.core.tables import TableStore
from udfs import fasttext_models
from udfs.classifier import (
    ClassifierNormalization,
    FastTextParams,
    ModelCard,
    binary_metrics,
    card_uri,
    fit,
    multiclass_metrics,
    normalize_texts,
    training_lines,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

MIN_EXAMPLES_PER_LABEL = 10
CRAWL_LABEL = "__crawl__"  # crawl negatives while they are sampled apart from the labelled ones


def _source_key(source: TrainingSource) -> str:
    return f"table {source.table}" if source.table else f"files {source.paths}"


def read_source(spark: SparkSession, store: TableStore, source: TrainingSource, *, config_key: str,
                config_source: str, label_field: str | None = None) -> DataFrame:
    """(key, text[, label]) rows of a training source; the key is doc_id if there is one, else a text hash."""
    from pyspark.sql import functions as F

    def problem(message: str) -> ConfigError:
        return ConfigError(message, key=config_key, source=config_source)

    if source.table:
        if not store.exists(source.table):
            raise problem(f"training table {source.table!r} does not exist")
        frame = store.read(source.table)
    else:
        files = []
        for pattern in source.paths:
            matches = storage.list_files(pattern)
            if not matches:
                raise problem(f"no training files match {pattern!r}")
            files.extend(info.path for info in matches)
        frame = spark.read.json(files) if source.format == "jsonl" else spark.read.parquet(*files)
    if source.where:
        try:
            frame = frame.where(source.where)
        except Exception as exc:  # AnalysisException / ParseException: a bad filter is a config problem
            raise problem(f"cannot apply filter {source.where!r}: {str(exc).splitlines()[0]}") from None
    wanted = [source.text_field, *([label_field] if label_field else [])]
    missing = [name for name in wanted if name not in frame.columns]
    if missing:
        raise problem(f"training source ({_source_key(source)}) has no column(s) {missing}; "
                      f"it has {sorted(frame.columns)}")
    text = F.col(source.text_field)
    key = F.col("doc_id").cast("string") if "doc_id" in frame.columns else F.sha2(text.cast("string"), 256)
    columns = [key.alias("key"), F.col(source.text_field).cast("string").alias("text")]
    if label_field:
        columns.append(F.col(label_field).cast("string").alias("label"))
    selected = frame.select(*columns).where(F.col("text").isNotNull() & (F.length(F.trim("text")) > 0))
    return selected.where(F.col("label").isNotNull()) if label_field else selected


def sample_per_label(frame: DataFrame, per_label: int, seed: int, holdout_fraction: float) -> DataFrame:
    """The ``per_label`` rows of each label with the smallest hash of (seed, key), plus a held-out flag."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy("label").orderBy("_draw", "key")
    return (frame.withColumn("_draw", unit_uniform(seed, "key"))
            .withColumn("_rank", F.row_number().over(order))
            .where(F.col("_rank") <= per_label)
            .withColumn("holdout", unit_uniform(seed + 1, "key") < F.lit(holdout_fraction))
            .drop("_draw", "_rank"))


def _collect(frame: DataFrame, seed: int) -> pa.Table:
    """Rows in a seeded hash order: fastText reads its file in order and does not shuffle, and a file
    sorted by label trains badly (or diverges)."""
    return frame.orderBy(unit_uniform(seed + 2, "key"), "key").toArrow()


def _save_model(model: Any, card: dict[str, Any], target: str, storage_options: dict[str, str]) -> ModelCard:
    """Write the model and then its card (a reader that finds the card finds the model it describes)."""
    with tempfile.TemporaryDirectory(prefix="curate-model-") as workdir:
        local = os.path.join(workdir, "model.bin")
        model.save_model(local)
        created_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        finished = ModelCard(model_sha256=fasttext_models.sha256_of(local),
                             model_bytes=os.path.getsize(local), created_at=created_at, **card)
        storage.upload(local, target, storage_options)
    storage.write_bytes(card_uri(target), finished.to_json().encode(), storage_options)
    return finished


def _too_few(counts: dict[str, int], where: str, source: str) -> None:
    small = {label: count for label, count in counts.items() if count < MIN_EXAMPLES_PER_LABEL}
    if small or not counts:
        raise ConfigError(f"too few training documents ({counts or 'none'}; need at least "
                          f"{MIN_EXAMPLES_PER_LABEL} per label)", key=where, source=source)


def _split(table: pa.Table, normalization: ClassifierNormalization) -> tuple[list[str], list[str], list[str],
                                                                             list[str]]:
    holdout = np.asarray(table.column("holdout").to_numpy(zero_copy_only=False), dtype=bool)
    texts = normalize_texts(table.column("text"), normalization)
    labels = table.column("label").to_pylist()
    train_texts = [text for text, held in zip(texts, holdout, strict=True) if not held]
    train_labels = [label for label, held in zip(labels, holdout, strict=True) if not held]
    test_texts = [text for text, held in zip(texts, holdout, strict=True) if held]
    test_labels = [label for label, held in zip(labels, holdout, strict=True) if held]
    return train_texts, train_labels, test_texts, test_labels


def _fit(lines: list[str], params: FastTextParams, config_key: str,
         config: Config) -> tuple[Any, FastTextParams]:
    try:
        return fit(lines, params)
    except RuntimeError as exc:  # fastText's "Encountered NaN" even at lr/8: the data or settings diverge
        raise ConfigError(f"fastText training failed ({exc}) even at lr {params.lr / 8:g}; lower lr or epoch",
                          key=config_key, source=config.source) from None


def _label_counts(labels: list[str]) -> dict[str, int]:
    values, counts = np.unique(np.asarray(labels, dtype=object), return_counts=True)
    return {str(value): int(count) for value, count in zip(values, counts, strict=True)}


def _train_and_save(sample: pa.Table,
                    settings: QualityTrainingSettings | TopicTrainingSettings | ToxicityTrainingSettings,
                    kind: ClassifierKind, evaluate: Callable[[Any, list[str], list[str]], dict],
                    config: Config, run_id: str, card: dict[str, Any]) -> ModelCard:
    """Normalise, train on the non-held-out rows, evaluate on the held-out rows, save model + card."""
    normalization = settings.normalization.as_normalization()
    configured = settings.fasttext.as_params()
    train_texts, train_labels, test_texts, test_labels = _split(sample, normalization)
    _too_few(_label_counts(train_labels), f"train.{kind}", config.source)
    fit_started = time.monotonic()
    lines = training_lines(train_texts, train_labels)
    model, params = _fit(lines, configured, f"train.{kind}.fasttext", config)
    fit_seconds = time.monotonic() - fit_started
    card["data"].update({"train": _label_counts(train_labels), "holdout": _label_counts(test_labels),
                         "seed": settings.seed, "holdout_fraction": settings.holdout_fraction})
    holdout = evaluate(model, test_texts, test_labels)
    metric, floor = ("accuracy", settings.min_holdout_accuracy) if kind == "topic" else (  # type: ignore[union-attr]
        "roc_auc", settings.min_holdout_roc_auc)  # type: ignore[union-attr]
    if floor is not None and (holdout.get(metric) is None or holdout[metric] < floor):
        raise PolicyError(f"the {kind} classifier's held-out {metric} is {holdout.get(metric)}, below the "
                          f"floor {floor} (train.{kind}.min_holdout_{metric}); the model was not saved")
    return _save_model(model, {
        **card, "kind": kind, "normalization": asdict(normalization),
        "hyperparameters": {**asdict(params), "configured_lr": configured.lr},
        "metrics": {"holdout": holdout, "train_seconds": round(fit_seconds, 2)},
        "run_id": run_id,
    }, config.training_output(kind), config.output.storage_options)


def _train_binary(sample: pa.Table, settings: QualityTrainingSettings | ToxicityTrainingSettings,
                  kind: Literal["quality", "toxicity"], ctx: StageContext, data: dict[str, Any],
                  sources: dict[str, Any]) -> ModelCard:
    """A positive-vs-negative classifier, evaluated by the held-out probability of the positive label."""
    positive = settings.positive_label

    def evaluate(model: Any, texts: list[str], labels: list[str]) -> dict[str, Any]:
        scores = fasttext_models.label_probability(model, texts, positive)
        return binary_metrics(scores, np.asarray(labels, dtype=object) == positive)

    return _train_and_save(sample, settings, kind, evaluate, ctx.config, ctx.run_id, {
        "labels": [positive, settings.negative_label], "positive_label": positive, "data": data,
        "sources": sources})


# ------------------------------------------------------------------------------------------ quality


def _check_files(source: TrainingSource, key: str, config: Config) -> None:
    """Training files must exist before Spark starts (tables are checked when the stage runs)."""
    for pattern in source.paths:
        if not storage.list_files(pattern, config.output.storage_options):
            raise ConfigError(f"no training files match {pattern!r}", key=key, source=config.source)


def check_quality(ctx: StageContext) -> None:
    config = ctx.config
    positives = config.train.quality.positives
    if positives is None:
        raise ConfigError("train_quality needs train.quality.positives (a table or files of reference text)",
                          key="train.quality.positives", source=config.source)
    _check_files(positives, "train.quality.positives", config)


def run_quality(ctx: StageContext) -> StageResult:
    from pyspark.sql import functions as F

    config, spark, store = ctx.config, ctx.spark, ctx.store
    settings = config.train.quality
    assert settings.positives is not None
    if not store.exists(settings.negatives_table):
        raise ConfigError(f"negatives table '{settings.negatives_table}' does not exist; run ingest first",
                          key="train.quality.negatives_table", source=config.source)
    positives = read_source(spark, store, settings.positives, config_key="train.quality.positives",
                            config_source=config.source).withColumn("label", F.lit(settings.positive_label))
    negatives = (store.read(settings.negatives_table).select(F.col("doc_id").alias("key"), "text")
                 .withColumn("label", F.lit(settings.negative_label)))
    available = {settings.positive_label: positives.count(), settings.negative_label: negatives.count()}
    per_class = min(settings.max_per_class, *available.values())
    _too_few({label: min(count, per_class) for label, count in available.items()}, "train.quality",
             config.source)
    sample = _collect(sample_per_label(positives.unionByName(negatives), per_class, settings.seed,
                                       settings.holdout_fraction), settings.seed)

    card = _train_binary(sample, settings, "quality", ctx, {"available": available, "per_class": per_class}, {
        "positives": settings.positives.model_dump(),
        "negatives": {"table": settings.negatives_table, "version": store.version(settings.negatives_table)}})
    return _result("train_quality", sample.num_rows, config.training_output("quality"), card)


# -------------------------------------------------------------------------------------------- topic


def _check_labelled(ctx: StageContext, kind: Literal["topic", "toxicity"]) -> None:
    """Labelled training documents are configured and their files exist."""
    config = ctx.config
    documents = getattr(config.train, kind).documents
    if documents is None or not documents.label_field:
        raise ConfigError(f"train_{kind} needs train.{kind}.documents with a label_field",
                          key=f"train.{kind}.documents", source=config.source)
    _check_files(documents, f"train.{kind}.documents", config)


def _labelled(ctx: StageContext, kind: Literal["topic", "toxicity"]) -> DataFrame:
    """(key, text, label) rows of the labelled training documents."""
    source = getattr(ctx.config.train, kind).documents
    assert source is not None and source.label_field
    return read_source(ctx.spark, ctx.store, source, config_key=f"train.{kind}.documents",
                       config_source=ctx.config.source, label_field=source.label_field)


def check_topic(ctx: StageContext) -> None:
    _check_labelled(ctx, "topic")


def run_topic(ctx: StageContext) -> StageResult:
    config, run_id = ctx.config, ctx.run_id
    settings = config.train.topic
    assert settings.documents is not None
    documents = _labelled(ctx, "topic")
    available = {row["label"]: int(row["count"]) for row in documents.groupBy("label").count().collect()}
    if len(available) < 2:
        raise ConfigError(f"a topic classifier needs at least two labels, found {sorted(available)}",
                          key="train.topic.documents.label_field", source=config.source)
    _too_few({label: min(count, settings.max_per_label) for label, count in available.items()},
             "train.topic", config.source)
    sample = _collect(sample_per_label(documents, settings.max_per_label, settings.seed,
                                       settings.holdout_fraction), settings.seed)

    def evaluate(model: Any, texts: list[str], labels: list[str]) -> dict[str, Any]:
        return multiclass_metrics(fasttext_models.predict_top(model, texts)[0], labels)

    card = _train_and_save(sample, settings, "topic", evaluate, config, run_id, {
        "labels": sorted(available), "positive_label": None,
        "data": {"available": dict(sorted(available.items())), "max_per_label": settings.max_per_label},
        "sources": {"documents": settings.documents.model_dump()},
    })
    return _result("train_topic", sample.num_rows, config.training_output("topic"), card)


# ----------------------------------------------------------------------------------------- toxicity


def check_toxicity(ctx: StageContext) -> None:
    _check_labelled(ctx, "toxicity")


def run_toxicity(ctx: StageContext) -> StageResult:
    """Balanced toxic vs clean labelled documents; with ``negatives_table``, as many documents again from
    the crawl join the negatives, so pages unlike the labelled comments are not scored toxic for being
    unfamiliar (the crawl is overwhelmingly clean; its few toxic pages are label noise, as in DCLM)."""
    from pyspark.sql import functions as F

    config, store = ctx.config, ctx.store
    settings = config.train.toxicity
    assert settings.documents is not None
    binary = _labelled(ctx, "toxicity").withColumn(
        "label", F.when(F.col("label") == settings.positive_label, F.lit(settings.positive_label))
        .otherwise(F.lit(settings.negative_label)))
    available = {row["label"]: int(row["count"]) for row in binary.groupBy("label").count().collect()}
    if settings.positive_label not in available:
        raise ConfigError(f"no documents labelled {settings.positive_label!r} in the toxicity training data",
                          key="train.toxicity.positive_label", source=config.source)
    per_class = min(settings.max_per_class, *available.values())
    _too_few({label: min(count, per_class) for label, count in available.items()}, "train.toxicity",
             config.source)
    sample = sample_per_label(binary, per_class, settings.seed, settings.holdout_fraction)
    sources: dict[str, Any] = {"documents": settings.documents.model_dump()}
    if settings.negatives_table:
        if not store.exists(settings.negatives_table):
            raise ConfigError(f"negatives table '{settings.negatives_table}' does not exist; run ingest "
                              "first", key="train.toxicity.negatives_table", source=config.source)
        crawl = (store.read(settings.negatives_table).select(F.col("doc_id").alias("key"), "text")
                 .withColumn("label", F.lit(CRAWL_LABEL)))
        available[CRAWL_LABEL] = crawl.count()
        crawl_sample = sample_per_label(crawl, per_class, settings.seed, settings.holdout_fraction)
        sample = sample.unionByName(crawl_sample.withColumn("label", F.lit(settings.negative_label)))
        sources["negatives"] = {"table": settings.negatives_table,
                                "version": store.version(settings.negatives_table)}
    collected = _collect(sample, settings.seed)

    data = {"available": available, "per_class": per_class}
    card = _train_binary(collected, settings, "toxicity", ctx, data, sources)
    return _result("train_toxicity", collected.num_rows, config.training_output("toxicity"), card)


def _result(stage: str, examples: int, target: str, card: ModelCard) -> StageResult:
    return StageResult(stage=stage, docs_in=examples, docs_out=examples,
                       details={"model": target, "card": card_uri(target), "model_sha256": card.model_sha256,
                                "data": card.data, "metrics": card.metrics})


QUALITY = Stage("train_quality", check_quality, run_quality,
                reads=lambda config: [config.train.quality.negatives_table])
TOPIC = Stage("train_topic", check_topic, run_topic)
TOXICITY = Stage("train_toxicity", check_toxicity, run_toxicity,
                 reads=lambda config: [name for name in [config.train.toxicity.negatives_table] if name])
