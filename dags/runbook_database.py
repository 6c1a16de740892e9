"""Database connection errors: Atlas status and cluster state, the connection string (SRV, TXT,
hosts), the IP access list, a timed ping, recent project events; then one Slack diagnosis.
Started by hand, or by an incident in a check of group `database` (runbooks.auto_start)."""

from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.runbooks import DiagnoseOperator, RunbookStepOperator

STEPS = {
    "check_atlas_status": "database.check_atlas_status",
    "verify_connection_string": "database.verify_connection_string",
    "check_network_access": "database.check_network_access",
    "ping_database": "database.ping_database",
    "review_connection_logs": "database.review_connection_logs",
}

with MaintenanceDAG(**dag_settings("runbook_database", schedule=None, tags=["runbook", "database"]),
                    is_paused_upon_creation=False):
    # Independent steps: one failing never stops the others; the diagnosis reads them all.
    [RunbookStepOperator(task_id=task_id, step=step) for task_id, step in STEPS.items()] \
        >> DiagnoseOperator(task_id="diagnose", steps=list(STEPS))
