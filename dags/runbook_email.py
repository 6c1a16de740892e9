"""Triggered by hand during an incident: email delivery issues (Mailgun/SendGrid status, API keys, blacklists, logs)."""

from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.placeholder import NotImplementedCheckOperator

with MaintenanceDAG(**dag_settings("runbook_email", schedule=None, tags=["runbook", "email"])):
    # Diagnostic steps are independent: one failing must not stop the others.
    [
        NotImplementedCheckOperator(task_id="check_email_dashboard", check="email.check_email_dashboard", group="email",
                                    planned_in="runbook: Mailgun or SendGrid stats"),
        NotImplementedCheckOperator(task_id="verify_api_keys", check="email.verify_api_keys", group="email",
                                    planned_in="runbook: email API key"),
        NotImplementedCheckOperator(task_id="check_blacklist_status", check="email.check_blacklist_status", group="email",
                                    planned_in="runbook: DNSBL lookups"),
        NotImplementedCheckOperator(task_id="review_email_logs", check="email.review_email_logs", group="email",
                                    planned_in="runbook: bounces and failures"),
    ]
