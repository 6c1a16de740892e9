"""Payment failures: Stripe status and key, webhook endpoints and undelivered events, failed
payments by code; Daraja OAuth, callback URLs, an STK push query; Sentry; then one Slack
diagnosis. Started by hand (params below), or by an incident in a check of group `payments`."""

from airflow.sdk import Param

from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.runbooks import DiagnoseOperator, RunbookStepOperator

STEPS = {
    "check_payment_dashboards": "payments.check_payment_dashboards",
    "verify_api_keys": "payments.verify_api_keys",
    "check_webhook_logs": "payments.check_webhook_logs",
    "review_payment_logs": "payments.review_payment_logs",
}

with MaintenanceDAG(**dag_settings("runbook_payments", schedule=None, tags=["runbook", "payments"]),
                    is_paused_upon_creation=False,
                    # Optional: Airflow's trigger form requires a param unless its schema allows null.
                    params={"mpesa_checkout_request_id": Param(
                        None, type=["null", "string"],
                        description="Optional: an M-Pesa STK push (CheckoutRequestID, ws_CO_...) to look up")}):
    # Independent steps: one failing never stops the others; the diagnosis reads them all.
    [RunbookStepOperator(task_id=task_id, step=step) for task_id, step in STEPS.items()] \
        >> DiagnoseOperator(task_id="diagnose", steps=list(STEPS))
