"""File upload failures: storage credentials, a canary put/get/delete, the app's size limit and
MIME validation through its upload endpoint, one named upload, Sentry; then one Slack diagnosis.
Started by hand (params below), or by an incident in a check of group `storage`."""

from airflow.sdk import Param

from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.runbooks import DiagnoseOperator, RunbookStepOperator

STEPS = {
    "check_storage_credentials": "file_upload.check_storage_credentials",
    "test_canary_upload": "file_upload.canary_upload",
    "verify_file_size_limits": "file_upload.verify_file_size_limits",
    "check_mime_validation": "file_upload.check_mime_validation",
    "review_upload_logs": "file_upload.review_upload_logs",
}

with MaintenanceDAG(**dag_settings("runbook_file_upload", schedule=None, tags=["runbook", "storage"]),
                    is_paused_upon_creation=False,
                    # Optional: Airflow's trigger form requires a param unless its schema allows null.
                    params={"upload_key": Param(None, type=["null", "string"],
                                                description="Optional: an object key of a failed upload to look at")}):
    # Independent steps: one failing never stops the others; the diagnosis reads them all.
    [RunbookStepOperator(task_id=task_id, step=step) for task_id, step in STEPS.items()] \
        >> DiagnoseOperator(task_id="diagnose", steps=list(STEPS))
