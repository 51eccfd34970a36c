"""The one SparkSession factory.

Embedded ``local[*]`` by default; under ``spark-submit`` (or in a notebook with a live session) the
master and resources it was given are kept. Arrow is on, logs are quiet, and ``spark.conf`` entries from
the config are applied last so a team can tune anything without code changes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.core import connector
from jobs.core.config import SparkSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"

# Settings every job relies on; config ``spark.conf`` may override any of them.
BASE_CONF: dict[str, str] = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "2048",
    "spark.sql.session.timeZone": "UTC",
    # Standard Parquet timestamps (not legacy INT96) so delta-rs reads stats and values alike.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.compression.codec": "zstd",
    "spark.sql.sources.partitionOverwriteMode": "static",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "true",
    # Plans of cached frames nest (dedup's steps build on each other): their explain strings, which Spark
    # renders for every query, can outgrow the heap. Truncated, they cannot.
    "spark.sql.maxPlanStringLength": "100000",
}

LOCAL_ONLY_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    # Generous, and AQE coalesces small shuffles into ~64 MB partitions: a 1M-document dedup gets tasks
    # whose memory is bounded by partition size, a 1k-document test gets a handful of tasks.
    "spark.sql.shuffle.partitions": "200",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.sql.adaptive.advisoryPartitionSizeInBytes": "64m",
    # One machine, small Delta logs: delta-spark's cluster-sized defaults (50 partitions to rebuild a
    # table's state, 10,000 tasks to list its files for VACUUM) cost minutes of task overhead here.
    "spark.databricks.delta.snapshotPartitions": "8",
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "8",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
}


AUTO_MEMORY_FRACTION = 0.5  # of physical RAM for the embedded JVM; Python workers and the OS get the rest
MIN_AUTO_MEMORY_MB = 1024


def physical_memory_bytes() -> int:
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def driver_memory(setting: str) -> str:
    """``auto``: half the machine's RAM (at least 1 GiB), as a JVM size; anything else as given."""
    if setting != "auto":
        return setting
    megabytes = int(physical_memory_bytes() * AUTO_MEMORY_FRACTION) // (1 << 20)
    return f"{max(MIN_AUTO_MEMORY_MB, megabytes)}m"


def under_spark_submit() -> bool:
    """spark-submit starts the JVM first and hands Python the gateway through these variables."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def _delta_classes_loadable(jvm: object) -> bool:
    if jvm is None:
        return False
    try:
        loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()  # type: ignore[attr-defined]
        jvm.java.lang.Class.forName(DELTA_EXTENSION, False, loader)  # type: ignore[attr-defined]
        return True
    except Exception:
        return False


def delta_connector_available(spark: SparkSession) -> bool:
    """True when the delta-spark JVM connector is on the classpath and wired into the session."""
    jvm = getattr(spark.sparkContext, "_jvm", None)
    extensions = spark.conf.get("spark.sql.extensions", "") or ""
    return DELTA_EXTENSION in extensions and _delta_classes_loadable(jvm)


def _submitted_with_delta() -> bool:
    from pyspark import SparkConf, SparkContext

    SparkConf()  # joins spark-submit's JVM gateway, so its classpath can be inspected
    return _delta_classes_loadable(SparkContext._jvm)  # type: ignore[attr-defined]


def s3a_settings(storage_options: Mapping[str, str], bucket: str | None = None) -> dict[str, str]:
    """The Hadoop S3A settings equivalent to delta-rs style ``storage_options`` (endpoint, region,
    static keys), per bucket when one is named. Empty options: nothing, the cluster's own S3A setup
    (instance roles, core-site.xml) applies."""
    options = {key.upper(): str(value) for key, value in storage_options.items()}
    prefix = f"fs.s3a.bucket.{bucket}." if bucket else "fs.s3a."
    found: dict[str, str] = {}
    endpoint = options.get("AWS_ENDPOINT_URL") or options.get("AWS_ENDPOINT")
    if endpoint:
        found["endpoint"] = endpoint
        found["path.style.access"] = "true"
        found["connection.ssl.enabled"] = str(endpoint.startswith("https://")).lower()
    if options.get("AWS_REGION"):
        found["endpoint.region"] = options["AWS_REGION"]
    if options.get("AWS_ACCESS_KEY_ID"):
        found["access.key"] = options["AWS_ACCESS_KEY_ID"]
        found["secret.key"] = options.get("AWS_SECRET_ACCESS_KEY", "")
        provider = "SimpleAWSCredentialsProvider"
        if options.get("AWS_SESSION_TOKEN"):
            found["session.token"] = options["AWS_SESSION_TOKEN"]
            provider = "TemporaryAWSCredentialsProvider"
        found["aws.credentials.provider"] = f"org.apache.hadoop.fs.s3a.{provider}"
    return {prefix + key: value for key, value in found.items()}


def configure_s3a(spark: SparkSession, paths_and_options: Sequence[tuple[str, Mapping[str, str]]]) -> None:
    """Hand each S3 location's storage options to Hadoop (S3A), in memory only (never in a file or a log)."""
    from jobs.core import storage

    hadoop = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
    for path, options in paths_and_options:
        if storage.is_s3(path) and options:
            for key, value in s3a_settings(options, storage.split_s3(path)[0]).items():
                hadoop.set(key, value)


def _connector_conf(settings: SparkSettings, s3: bool) -> tuple[dict[str, str], list[str]]:
    """Session settings that load the JVM packages (from the jar cache when an earlier session fetched them),
    and the packages still to fetch (empty when cached or none wanted)."""
    packages = connector.packages_for(settings.packages, s3)
    if not packages:
        return {}, []
    conf: dict[str, str] = {}
    if any(package.startswith("io.delta:delta-spark") for package in packages):
        conf["spark.sql.extensions"] = DELTA_EXTENSION
        conf["spark.sql.catalog.spark_catalog"] = DELTA_CATALOG
    if any(package.startswith("org.apache.hadoop:hadoop-aws") for package in packages):
        conf["spark.hadoop.fs.s3.impl"] = "org.apache.hadoop.fs.s3a.S3AFileSystem"  # s3:// as on EMR
    jars = connector.cached_jars(packages, settings.jar_cache)
    if jars is not None:
        conf["spark.jars"] = ",".join(jars)
        return conf, []
    conf["spark.jars.packages"] = ",".join(packages)
    conf["spark.jars.ivy"] = connector.ivy_folder(settings.jar_cache)
    return conf, packages


def _build(settings: SparkSettings, conf: dict[str, str]) -> SparkSession:
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(settings.app_name)
    if not under_spark_submit():
        builder = builder.master(settings.master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def get_spark(settings: SparkSettings | None = None, s3: bool = True) -> SparkSession:
    """Build (or join) the session for a job; idempotent within a process. ``s3``: whether the job may
    reach an S3 path (hadoop-aws is loaded only then; see :func:`jobs.core.storage.mentions_s3`)."""
    from pyspark.sql import SparkSession

    settings = settings or SparkSettings()
    active = SparkSession.getActiveSession()
    if active is not None:
        for key, value in settings.conf.items():
            if not key.startswith("spark.driver.") and not key.startswith("spark.executor."):
                active.conf.set(key, str(value))
        return active

    conf = dict(BASE_CONF)
    fetching: list[str] = []
    if not under_spark_submit():
        # Executors of the embedded session must run the same interpreter (and venv) as the driver.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        conf.update(LOCAL_ONLY_CONF)
        conf["spark.driver.memory"] = driver_memory(settings.driver_memory)
        log_config = Path(__file__).with_name("log4j2.properties")
        conf["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile=file:{log_config}"
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        packages_conf, fetching = _connector_conf(settings, s3)
        conf.update(packages_conf)
    user_conf = {key: str(value) for key, value in settings.conf.items()}
    if "spark.jars" in user_conf and "spark.jars" in conf:
        user_conf["spark.jars"] = f"{conf['spark.jars']},{user_conf['spark.jars']}"
    conf.update(user_conf)

    if under_spark_submit() and _submitted_with_delta():
        # spark-submit --packages io.delta:delta-spark... without the two session settings still works.
        conf.setdefault("spark.sql.extensions", DELTA_EXTENSION)
        conf.setdefault("spark.sql.catalog.spark_catalog", DELTA_CATALOG)

    try:
        spark = _build(settings, conf)
    except Exception as exc:
        if not fetching:
            raise
        # No route to Maven (or a resolver failure): the session still starts, without the packages.
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        print(f"curate: could not fetch {', '.join(fetching)} from Maven ({reason}); "
              "running without them: tables on the embedded backend, no s3a://", file=sys.stderr)
        for key in ("spark.jars.packages", "spark.jars.ivy", "spark.sql.extensions",
                    "spark.sql.catalog.spark_catalog"):
            if key not in user_conf:
                conf.pop(key, None)
        spark = _build(settings, conf)
    else:
        if fetching:
            resolved = spark.sparkContext.getConf().get("spark.jars", "") or ""
            connector.record_jars(fetching, settings.jar_cache, resolved)
    spark.sparkContext.setLogLevel(settings.log_level)
    return spark
