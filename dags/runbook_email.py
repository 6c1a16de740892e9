"""Email delivery issues (Mailgun or SendGrid): provider status and delivery rates, key and
sending domain, DNS blocklists through the configured resolver, bounces; then one Slack
diagnosis. Started by hand (params below), or by an incident in a check of group `email`."""

from airflow.sdk import Param

from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.runbooks import DiagnoseOperator, RunbookStepOperator

STEPS = {
    "check_email_dashboard": "email.check_email_dashboard",
    "verify_api_keys": "email.verify_api_keys",
    "check_blacklist_status": "email.check_blacklist_status",
    "review_email_logs": "email.review_email_logs",
}

with MaintenanceDAG(**dag_settings("runbook_email", schedule=None, tags=["runbook", "email"]),
                    is_paused_upon_creation=False,
                    # Optional: Airflow's trigger form requires a param unless its schema allows null.
                    params={"recipient": Param(None, type=["null", "string"],
                                               description="Optional: an address that did not get its mail")}):
    # Independent steps: one failing never stops the others; the diagnosis reads them all.
    [RunbookStepOperator(task_id=task_id, step=step) for task_id, step in STEPS.items()] \
        >> DiagnoseOperator(task_id="diagnose", steps=list(STEPS))
