"""Triggered by hand during an incident: file upload failures (storage credentials, size limits, MIME types, logs)."""

from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.placeholder import NotImplementedCheckOperator

with MaintenanceDAG(**dag_settings("runbook_file_upload", schedule=None, tags=["runbook", "storage"])):
    # Diagnostic steps are independent: one failing must not stop the others.
    [
        NotImplementedCheckOperator(task_id="check_storage_credentials", check="storage.check_storage_credentials", group="storage",
                                    planned_in="runbook: S3/R2 credentials"),
        NotImplementedCheckOperator(task_id="verify_file_size_limits", check="storage.verify_file_size_limits", group="storage",
                                    planned_in="runbook: size limits"),
        NotImplementedCheckOperator(task_id="check_mime_validation", check="storage.check_mime_validation", group="storage",
                                    planned_in="runbook: MIME type validation"),
        NotImplementedCheckOperator(task_id="review_upload_logs", check="storage.review_upload_logs", group="storage",
                                    planned_in="runbook: upload errors"),
    ]
