#!/usr/bin/env bash
# Submit one curate stage to a cluster the way production runs it:
#   deploy/spark-submit.sh JOB --config conf/cluster.yaml [--set key=value ...] [-- extra spark-submit args]
# JOB is a file in jobs/: run (the whole pipeline, with --run-date), ingest, dedup, quality, mix, train.
# jobs/ and udfs/ travel to the executors as one zip via --py-files; the executors' Python must have the
# third-party dependencies installed (pip install . on the image, or a packed venv via --archives).
# The delta-spark connector comes from the cluster (Databricks/EMR) or from DELTA_PACKAGE below.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
stage="${1:?usage: deploy/spark-submit.sh STAGE --config FILE [...] [-- spark-submit args]}"
shift
job_args=()
submit_args=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; submit_args=("$@"); break; fi
  job_args+=("$1"); shift
done
build="$root/build"
mkdir -p "$build"
zip_file="$build/curate-py.zip"
rm -f "$zip_file"
(cd "$root" && python3 -m zipfile -c "$zip_file" jobs udfs >/dev/null)
delta_package="${DELTA_PACKAGE-io.delta:delta-spark_2.13:4.0.0}"
packages=()
if [ -n "$delta_package" ]; then
  packages=(--packages "$delta_package"
            --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension
            --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog)
fi
exec "${SPARK_SUBMIT:-spark-submit}" \
  --name "curate-$stage" \
  --py-files "$zip_file" \
  "${packages[@]}" \
  "${submit_args[@]}" \
  "$root/jobs/$stage.py" "${job_args[@]}"
