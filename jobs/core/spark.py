"""The one SparkSession factory.

Embedded ``local[*]`` by default; under ``spark-submit`` (or in a notebook with a live session) the
master and resources it was given are kept. Arrow is on, logs are quiet, and ``spark.conf`` entries from
the config are applied last so a team can tune anything without code changes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

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


def get_spark(settings: SparkSettings | None = None) -> SparkSession:
    """Build (or join) the session for a job; idempotent within a process."""
    from pyspark.sql import SparkSession

    settings = settings or SparkSettings()
    active = SparkSession.getActiveSession()
    if active is not None:
        for key, value in settings.conf.items():
            if not key.startswith("spark.driver.") and not key.startswith("spark.executor."):
                active.conf.set(key, str(value))
        return active

    builder = SparkSession.builder.appName(settings.app_name)
    conf = dict(BASE_CONF)
    if not under_spark_submit():
        # Executors of the embedded session must run the same interpreter (and venv) as the driver.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        builder = builder.master(settings.master)
        conf.update(LOCAL_ONLY_CONF)
        conf["spark.driver.memory"] = driver_memory(settings.driver_memory)
        log_config = Path(__file__).with_name("log4j2.properties")
        conf["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile=file:{log_config}"
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    conf.update({key: str(value) for key, value in settings.conf.items()})
    for key, value in conf.items():
        builder = builder.config(key, value)

    if under_spark_submit() and _submitted_with_delta():
        # spark-submit --packages io.delta:delta-spark... without the two session settings still works.
        builder = builder.config("spark.sql.extensions", conf.get("spark.sql.extensions", DELTA_EXTENSION))
        builder = builder.config(
            "spark.sql.catalog.spark_catalog", conf.get("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
        )

    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings.log_level)
    return spark
