"""Triggered by hand during an incident: payment failures (Stripe/M-Pesa status, API keys, webhooks, processing logs)."""

from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.placeholder import NotImplementedCheckOperator

with MaintenanceDAG(**dag_settings("runbook_payments", schedule=None, tags=["runbook", "payments"])):
    # Diagnostic steps are independent: one failing must not stop the others.
    [
        NotImplementedCheckOperator(task_id="check_payment_dashboards", check="payments.check_payment_dashboards", group="payments",
                                    planned_in="runbook: Stripe and Daraja status"),
        NotImplementedCheckOperator(task_id="verify_api_keys", check="payments.verify_api_keys", group="payments",
                                    planned_in="runbook: Stripe and Daraja credentials"),
        NotImplementedCheckOperator(task_id="check_webhook_logs", check="payments.check_webhook_logs", group="payments",
                                    planned_in="runbook: Stripe webhook deliveries"),
        NotImplementedCheckOperator(task_id="review_payment_logs", check="payments.review_payment_logs", group="payments",
                                    planned_in="runbook: failed payments"),
    ]
