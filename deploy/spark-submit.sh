#!/usr/bin/env bash
# Submit the pipeline, or one stage of it, to a cluster the way production runs it:
#   deploy/spark-submit.sh run   --config conf/cluster.yaml --run-date 2026-11-21 [-- extra spark-submit args]
#   deploy/spark-submit.sh STAGE --config conf/cluster.yaml [--set key=value ...] [-- extra spark-submit args]
# STAGE is a stage of the runner's registry: ingest, train_quality, train_topic, dedup, quality, mix, maintain.
# Both go through the one entry point jobs/run.py (with --stage STAGE for one stage).
# jobs/ and udfs/ travel to the executors as one zip via --py-files; the executors' Python must have the
# third-party dependencies installed (pip install . on the image, or a packed venv via --archives).
# The delta-spark connector comes from the cluster (Databricks/EMR) or from DELTA_PACKAGE below.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
stage="${1:?usage: deploy/spark-submit.sh run|STAGE --config FILE [...] [-- spark-submit args]}"
shift
job_args=()
if [ "$stage" != "run" ]; then job_args=(--stage "$stage"); fi
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
  "$root/jobs/run.py" "${job_args[@]}"
