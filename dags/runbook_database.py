"""Triggered by hand during an incident: database connection errors (Atlas status, connection string, IP access list, logs)."""

from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.placeholder import NotImplementedCheckOperator

with MaintenanceDAG(**dag_settings("runbook_database", schedule=None, tags=["runbook", "database"])):
    # Diagnostic steps are independent: one failing must not stop the others.
    [
        NotImplementedCheckOperator(task_id="check_atlas_status", check="database.check_atlas_status", group="database",
                                    planned_in="runbook: Atlas status page and cluster state"),
        NotImplementedCheckOperator(task_id="verify_connection_string", check="database.verify_connection_string", group="database",
                                    planned_in="runbook: connect with mongo_default"),
        NotImplementedCheckOperator(task_id="check_network_access", check="database.check_network_access", group="database",
                                    planned_in="runbook: Atlas IP access list"),
        NotImplementedCheckOperator(task_id="review_connection_logs", check="database.review_connection_logs", group="database",
                                    planned_in="runbook: Atlas connection logs"),
    ]
