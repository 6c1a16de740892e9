"""Weekly, Monday 04:00 UTC: performance metrics, backup status, security logs, dependency updates."""

from maintenance.operators.backups import BackupStatusOperator
from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.dependencies import DependencyScanOperator
from maintenance.operators.performance import PerformanceReviewOperator
from maintenance.operators.placeholder import NotImplementedCheckOperator

with MaintenanceDAG(**dag_settings("maintenance_weekly", schedule="0 4 * * 1", tags=["weekly"])):
    PerformanceReviewOperator(task_id="review_performance_metrics", period="week")
    BackupStatusOperator(task_id="check_backup_status")
    NotImplementedCheckOperator(task_id="review_security_logs", check="security.logs", group="security",
                                planned_in="security log review: Atlas events and the admin audit log, issue 9")
    DependencyScanOperator(task_id="check_dependency_updates")
