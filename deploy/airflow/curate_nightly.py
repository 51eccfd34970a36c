"""Airflow DAG: the nightly curate run.

The run date comes from the schedule (``{{ ds }}``) and names the run, so Airflow's retries and manual
re-runs of a date are safe: a retry resumes at the first unfinished stage, a finished date is a no-op.
Never skip a failed date (README, "Nightly runs"): ``catchup=True`` runs every missed date in order and
``depends_on_past=True`` holds a date until the one before it succeeded, one run at a time. The config's
``run.stages`` ends with ``maintain`` (compaction and VACUUM), so table maintenance is part of each night.
Set the Airflow Variables ``curate_home`` (a checkout on the worker) and ``curate_config`` (the YAML).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

CURATE_HOME = "{{ var.value.get('curate_home', '/opt/curate') }}"
CONFIG = "{{ var.value.get('curate_config', '/opt/curate/conf/cluster.yaml') }}"

with DAG(
    dag_id="curate_nightly",
    description="ingest -> dedup -> quality -> mix over Delta tables, incrementally, once a night",
    schedule="0 2 * * *",
    start_date=datetime(2026, 11, 1),
    catchup=True,  # a missed night is run, not skipped
    max_active_runs=1,  # nights append in order
    default_args={
        "owner": "data-eng",
        "depends_on_past": True,  # a failed night holds the next one until it is re-run and succeeds
        "retries": 3,  # safe: the run date is the run id and the ledger skips finished stages
        "retry_delay": timedelta(minutes=10),
        "execution_timeout": timedelta(hours=8),
    },
    tags=["curate", "pretraining-data"],
) as dag:
    dry_run = BashOperator(
        task_id="plan",
        bash_command=(f"cd {CURATE_HOME} && .venv/bin/curate run --config {CONFIG} "
                      "--run-date {{ ds }} --dry-run"),
    )
    run = BashOperator(
        task_id="run",
        bash_command=(f"cd {CURATE_HOME} && deploy/spark-submit.sh run --config {CONFIG} "
                      "--run-date {{ ds }} -- --master yarn --deploy-mode client"),
    )
    report = BashOperator(
        task_id="report",
        bash_command=(f"cd {CURATE_HOME} && .venv/bin/curate report --config {CONFIG} "
                      "--run {{ var.value.get('curate_run_name', 'nightly') }}-{{ ds }}"),
    )
    dry_run >> run >> report
