"""Weekly, Sunday 01:30 UTC: purge old rows from Airflow's metadata DB and prune the results store."""

from airflow.sdk import Param

from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.housekeeping import AirflowDbCleanOperator, PruneResultsOperator

# Airflow 3 tasks cannot open ORM sessions: the purge is Airflow's own CLI in a BashOperator,
# given the metadata DB by the `airflow_db` connection (see AirflowDbCleanOperator).
# --error-on-cleanup-failure makes a failed table red (and alerted), not a silent exit 0.
DB_CLEAN = (
    "airflow db clean --yes --skip-archive --error-on-cleanup-failure"
    " --clean-before-timestamp '{{ (dag_run.run_after - macros.timedelta(days=params.keep_days)).isoformat() }}'"
)

with MaintenanceDAG(
    **dag_settings("airflow_db_cleanup", schedule="30 1 * * 0", tags=["housekeeping"]),
    params={"keep_days": Param(90, type="integer", minimum=7, description="Airflow metadata older than this is purged")},
):
    AirflowDbCleanOperator(task_id="clean_airflow_metadata", bash_command=DB_CLEAN)
    PruneResultsOperator(task_id="prune_results_store")
