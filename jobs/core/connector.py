"""The JVM packages an embedded session loads: the delta-spark connector (native Delta tables) and hadoop-aws
(``s3a://``), fetched once from Maven Central by Spark's own resolver into a local cache.

The first session resolves ``spark.jars.packages`` with its Ivy cache under ``spark.jar_cache``, then records
the jar files it got in a small manifest; later sessions put those files straight on ``spark.jars`` and skip
the resolver. A machine with no route to Maven gets a session without them (and the embedded backend)."""

from __future__ import annotations

import glob
import hashlib
import importlib.metadata
import json
import os
import re
from collections.abc import Sequence

SCALA_BINARY_VERSION = "2.13"  # pyspark 4 is built for Scala 2.13 only


def _pyspark_hadoop_version() -> str:
    """The Hadoop release bundled with pyspark: hadoop-aws must be the same one."""
    import pyspark

    jars = glob.glob(os.path.join(os.path.dirname(pyspark.__file__), "jars", "hadoop-client-api-*.jar"))
    found = re.search(r"hadoop-client-api-(.+)\.jar$", jars[0]) if jars else None
    if found is None:
        raise RuntimeError("pyspark's jars folder has no hadoop-client-api jar to match hadoop-aws to")
    return found.group(1)


def default_packages(s3: bool = True) -> list[str]:
    """delta-spark at the version of the installed ``delta-spark`` Python package (as
    ``configure_spark_with_delta_pip`` does) and, when ``s3``, hadoop-aws at pyspark's Hadoop version (its
    AWS SDK bundle is 558 MB: a session that reaches no S3 path does not load it)."""
    delta_version = importlib.metadata.version("delta-spark")
    packages = [f"io.delta:delta-spark_{SCALA_BINARY_VERSION}:{delta_version}"]
    if s3:
        packages.append(f"org.apache.hadoop:hadoop-aws:{_pyspark_hadoop_version()}")
    return packages


def packages_for(setting: str | Sequence[str], s3: bool = True) -> list[str]:
    return default_packages(s3) if setting == "auto" else list(setting)


def _manifest_path(packages: Sequence[str], cache: str) -> str:
    digest = hashlib.sha256("\n".join(sorted(packages)).encode()).hexdigest()[:16]
    return os.path.join(os.path.expanduser(cache), f"resolved-{digest}.json")


def _manifest_jars(path: str) -> tuple[set[str], list[str]] | None:
    """(packages, jar files) of a manifest whose jars are all still there."""
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
        packages, jars = set(manifest["packages"]), list(manifest["jars"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (packages, jars) if jars and all(os.path.isfile(jar) for jar in jars) else None


def cached_jars(packages: Sequence[str], cache: str) -> list[str] | None:
    """The jar files an earlier session resolved for exactly these packages, if they are all still there;
    else those of a resolved superset (a machine that fetched delta-spark with hadoop-aws and has no route
    to Maven now still gets delta-spark, with a jar more than it needs)."""
    exact = _manifest_jars(_manifest_path(packages, cache))
    if exact is not None:
        return exact[1]
    wanted = set(packages)
    for path in sorted(glob.glob(os.path.join(os.path.expanduser(cache), "resolved-*.json"))):
        found = _manifest_jars(path)
        if found is not None and wanted <= found[0]:
            return found[1]
    return None


def record_jars(packages: Sequence[str], cache: str, spark_jars: str) -> list[str]:
    """Remember what the resolver put on ``spark.jars`` (``file:`` URIs into the Ivy cache)."""
    jars = [entry.removeprefix("file://").removeprefix("file:") for entry in spark_jars.split(",") if entry]
    jars = [jar for jar in jars if os.path.isfile(jar)]
    if jars:
        path = _manifest_path(packages, cache)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump({"packages": sorted(packages), "jars": jars}, handle, indent=1)
        os.replace(temporary, path)
    return jars


def ivy_folder(cache: str) -> str:
    return os.path.join(os.path.expanduser(cache), "ivy")
