#!/usr/bin/env bash
# Local Airflow: SQLite metadata DB, LocalExecutor, this repo's dags/ and plugins/, examples off.
# Migrates the DB, then scripts/airflow_local.py runs the API server, scheduler, DAG processor
# and triggerer (what `airflow standalone` runs, forked from one parent: lighter, and one
# Ctrl-C stops them all; MAINTENANCE_STOP_GRACE, MAINTENANCE_SERVE_LOGS: see that file).
set -euo pipefail
cd "$(dirname "$0")/.."
export AIRFLOW_HOME="${AIRFLOW_HOME:-$PWD/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$PWD/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
# LeanLocalExecutor (plugins/maintenance/executors.py): LocalExecutor whose workers exit after
# MAINTENANCE_IDLE_WORKER_S (default 60) idle seconds and keep the preloaded memory shared.
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-maintenance.executors.LeanLocalExecutor}"
export AIRFLOW__API__PORT="${PORT:-8080}"
export AIRFLOW__API__BASE_URL="http://127.0.0.1:${PORT:-8080}"
export AIRFLOW__API__HOST=127.0.0.1
# First run does the job: the DAGs start unpaused (they can still be paused in the UI);
# AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True makes new DAGs start paused instead.
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-False}"
# Sized for one small machine (benchmarks/footprint.py measures it); each can be overridden.
# LocalExecutor keeps `parallelism` worker processes alive (Airflow's default is 32).
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-2}"
export AIRFLOW__API__WORKERS="${AIRFLOW__API__WORKERS:-1}"
export AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES="${AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES:-1}"
# glibc gives every thread its own malloc arena (8 x cores of them); two are plenty here.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
# airflow_db_cleanup's `airflow db clean` gets the metadata DB as a connection (Airflow 3 hides
# AIRFLOW__DATABASE__SQL_ALCHEMY_CONN from tasks): the local SQLite file unless set otherwise.
if [ -z "${AIRFLOW_CONN_AIRFLOW_DB:-}" ]; then
  export AIRFLOW_CONN_AIRFLOW_DB="{\"conn_type\": \"sqlite\", \"extra\": {\"sqlalchemy_url\": \"${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}\"}}"
fi
export PYTHONPATH="$PWD/plugins${PYTHONPATH:+:$PYTHONPATH}"
export MAINTENANCE_CONFIG="${MAINTENANCE_CONFIG:-$PWD/include/config/maintenance.yaml}"
mkdir -p "$AIRFLOW_HOME"

python -m maintenance validate-config "$MAINTENANCE_CONFIG"
# Bytecode for plugins/, written even under PYTHONDONTWRITEBYTECODE: the DAG processor parses each
# DAG file in a fresh process, which would otherwise compile our operator modules every time.
python -m compileall -q plugins dags >/dev/null
password_file="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
(
  # Once the API server answers, say where it is and how to log in.
  for _ in $(seq 1 180); do
    kill -0 $$ 2>/dev/null || exit 0      # Airflow stopped before it was ready
    if curl -fsS "http://127.0.0.1:${AIRFLOW__API__PORT}/api/v2/monitor/health" >/dev/null 2>&1; then
      echo
      echo "=== Airflow UI: http://127.0.0.1:${AIRFLOW__API__PORT}  (Ctrl-C stops everything)"
      [ -f "$password_file" ] && echo "=== login: admin / $(python -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin"])' "$password_file")"
      exit 0
    fi
    sleep 2
  done
) &
echo "=== migrating the metadata DB ($AIRFLOW_HOME/airflow.db)"
airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/db-migrate.log"; exit 1; }
exec python scripts/airflow_local.py
