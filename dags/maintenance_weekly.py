"""Weekly, Monday 04:00 UTC: performance metrics, backup status, security logs, dependency updates."""

from maintenance.operators.backups import BackupStatusOperator
from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.dependencies import DependencyScanOperator
from maintenance.operators.performance import PerformanceReviewOperator
from maintenance.operators.security_logs import SecurityLogsOperator

with MaintenanceDAG(**dag_settings("maintenance_weekly", schedule="0 4 * * 1", tags=["weekly"])):
    PerformanceReviewOperator(task_id="review_performance_metrics", period="week")
    BackupStatusOperator(task_id="check_backup_status")
    SecurityLogsOperator(task_id="review_security_logs")
    DependencyScanOperator(task_id="check_dependency_updates")
