"""Weekly, Monday 04:00 UTC: performance metrics, backup status, security logs, dependency updates,
traffic analytics; then the weekly report (rendered, published and announced whatever the checks' outcome)."""

from maintenance.operators.analytics import AppAnalyticsOperator, TrafficAnalyticsOperator
from maintenance.operators.backups import BackupStatusOperator
from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.dependencies import DependencyScanOperator
from maintenance.operators.performance import PerformanceReviewOperator
from maintenance.operators.reports import PeriodReportOperator, RunOutcomeOperator
from maintenance.operators.security_logs import SecurityLogsOperator

with MaintenanceDAG(**dag_settings("maintenance_weekly", schedule="0 4 * * 1", tags=["weekly"])):
    checks = [
        PerformanceReviewOperator(task_id="review_performance_metrics", period="week"),
        BackupStatusOperator(task_id="check_backup_status"),
        SecurityLogsOperator(task_id="review_security_logs"),
        DependencyScanOperator(task_id="check_dependency_updates"),
        TrafficAnalyticsOperator(task_id="traffic_analytics", kind="weekly"),
        AppAnalyticsOperator(task_id="app_analytics", kind="weekly"),
    ]
    # The report runs after every check (trigger_rule all_done); run_outcome keeps the run red
    # when a check failed, since a green leaf would otherwise make it green.
    checks >> PeriodReportOperator(task_id="weekly_report", kind="weekly")
    checks >> RunOutcomeOperator(task_id="run_outcome")
