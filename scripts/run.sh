#!/usr/bin/env bash
# Local Airflow: SQLite metadata DB, LocalExecutor, this repo's dags/ and plugins/, examples off.
# `airflow standalone` runs migrations, then the API server, scheduler, DAG processor and triggerer.
set -euo pipefail
cd "$(dirname "$0")/.."
export AIRFLOW_HOME="${AIRFLOW_HOME:-$PWD/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$PWD/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__API__PORT="${PORT:-8080}"
export AIRFLOW__API__BASE_URL="http://127.0.0.1:${PORT:-8080}"
export AIRFLOW__API__HOST=127.0.0.1
export PYTHONPATH="$PWD/plugins${PYTHONPATH:+:$PYTHONPATH}"
export MAINTENANCE_CONFIG="${MAINTENANCE_CONFIG:-$PWD/include/config/maintenance.yaml}"
mkdir -p "$AIRFLOW_HOME"

python -m maintenance validate-config "$MAINTENANCE_CONFIG"
password_file="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
(
  # Once the API server answers, say where it is and how to log in.
  for _ in $(seq 1 180); do
    if curl -fsS "http://127.0.0.1:${AIRFLOW__API__PORT}/api/v2/monitor/health" >/dev/null 2>&1; then
      echo
      echo "=== Airflow UI: http://127.0.0.1:${AIRFLOW__API__PORT}  (Ctrl-C stops everything)"
      [ -f "$password_file" ] && echo "=== login: admin / $(python -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin"])' "$password_file")"
      exit 0
    fi
    sleep 2
  done
) &
exec airflow standalone
