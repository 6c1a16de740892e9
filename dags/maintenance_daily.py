"""Daily at 03:00 UTC: error logs, uptime status, critical alerts, backup freshness; then the digest."""

from airflow.sdk import DAG, TriggerRule

from maintenance.operators.alerts import ReviewOpenAlertsOperator, SendDigestOperator
from maintenance.operators.backups import AtlasFreshnessOperator
from maintenance.operators.defaults import dag_settings
from maintenance.operators.placeholder import NotImplementedCheckOperator
from maintenance.operators.uptime import UptimeReportOperator

with DAG(**dag_settings("maintenance_daily", schedule="0 3 * * *", tags=["daily"])):
    checks = [
        NotImplementedCheckOperator(task_id="monitor_error_logs", check="sentry.error_rate", group="errors",
                                    planned_in="Sentry error review"),
        UptimeReportOperator(task_id="check_uptime_status"),
        ReviewOpenAlertsOperator(task_id="review_critical_alerts"),
        AtlasFreshnessOperator(task_id="check_backup_freshness"),
    ]
    checks >> SendDigestOperator(task_id="send_daily_digest", trigger_rule=TriggerRule.ALL_DONE)
