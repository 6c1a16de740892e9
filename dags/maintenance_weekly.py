"""Weekly, Monday 04:00 UTC: performance metrics, backup status, security logs, dependency updates."""

from maintenance.operators.backups import BackupStatusOperator
from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.placeholder import NotImplementedCheckOperator

with MaintenanceDAG(**dag_settings("maintenance_weekly", schedule="0 4 * * 1", tags=["weekly"])):
    NotImplementedCheckOperator(task_id="review_performance_metrics", check="performance.weekly", group="performance",
                                planned_in="Vercel and Core Web Vitals review")
    BackupStatusOperator(task_id="check_backup_status")
    NotImplementedCheckOperator(task_id="review_security_logs", check="security.logs", group="security",
                                planned_in="security log review")
    NotImplementedCheckOperator(task_id="check_dependency_updates", check="dependencies.updates", group="dependencies",
                                planned_in="dependency scan (pip-audit, OSV, npm audit)")
