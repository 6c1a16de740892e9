"""Daily at 03:00 UTC: error logs, uptime status, critical alerts, backup freshness; and the digest."""

from maintenance.operators.alerts import ReviewOpenAlertsOperator, SendDigestOperator
from maintenance.operators.backups import AtlasFreshnessOperator
from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.errors import SentryReviewOperator
from maintenance.operators.uptime import UptimeReportOperator

with MaintenanceDAG(**dag_settings("maintenance_daily", schedule="0 3 * * *", tags=["daily"])):
    SentryReviewOperator(task_id="monitor_error_logs")
    UptimeReportOperator(task_id="check_uptime_status")
    ReviewOpenAlertsOperator(task_id="review_critical_alerts")
    AtlasFreshnessOperator(task_id="check_backup_freshness")
    # The digest of the last day's non-critical alerts. Not downstream of the checks: a leaf
    # with trigger_rule all_done would turn a run with a failed check green.
    SendDigestOperator(task_id="send_daily_digest")
