"""Weekly, Sunday 01:30 UTC: purge old rows from Airflow's metadata DB and prune the results store."""

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param

from maintenance.operators.defaults import dag_settings
from maintenance.operators.housekeeping import PruneResultsOperator

# Airflow 3 tasks cannot open ORM sessions, so the purge is Airflow's own CLI, run by the
# worker with the metadata DB connection every component already has (the official image
# sets AIRFLOW__DATABASE__SQL_ALCHEMY_CONN everywhere). --error-on-cleanup-failure makes a
# failed table red (and alerted) instead of a silent exit 0.
DB_CLEAN = (
    "airflow db clean --yes --skip-archive --error-on-cleanup-failure"
    " --clean-before-timestamp '{{ (dag_run.run_after - macros.timedelta(days=params.keep_days)).isoformat() }}'"
)

with DAG(
    **dag_settings("airflow_db_cleanup", schedule="30 1 * * 0", tags=["housekeeping"]),
    params={"keep_days": Param(90, type="integer", minimum=7, description="Airflow metadata older than this is purged")},
):
    BashOperator(task_id="clean_airflow_metadata", bash_command=DB_CLEAN)
    PruneResultsOperator(task_id="prune_results_store")
