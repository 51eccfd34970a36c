#!/usr/bin/env bash
# EMR bootstrap action: install the curate wheel (and its dependencies) into /opt/curate/.venv on every node;
# spark.pyspark.python points the executors at it. Usage: bootstrap.sh s3://.../curate-<version>-py3-none-any.whl
set -euo pipefail
wheel_uri="${1:?usage: bootstrap.sh S3_URI_OF_THE_CURATE_WHEEL}"
sudo mkdir -p /opt/curate && sudo chown "$(id -u)" /opt/curate
aws s3 cp "$wheel_uri" /opt/curate/
python3.11 -m venv /opt/curate/.venv
/opt/curate/.venv/bin/pip install --quiet "/opt/curate/$(basename "$wheel_uri")"
