"""Monthly, the 1st at 05:00 UTC: audit, performance review, security scan, backup verification, dependencies."""

from maintenance.operators.audit import FullSystemAuditOperator
from maintenance.operators.backups import VerifyBackupsOperator
from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.dependencies import DependencyScanOperator
from maintenance.operators.performance import PerformanceReviewOperator
from maintenance.operators.security import SecurityScanOperator

with MaintenanceDAG(**dag_settings("maintenance_monthly", schedule="0 5 1 * *", tags=["monthly"])):
    FullSystemAuditOperator(task_id="full_system_audit")
    PerformanceReviewOperator(task_id="performance_optimization_review", period="month")
    SecurityScanOperator(task_id="security_scan")
    VerifyBackupsOperator(task_id="verify_backups")
    DependencyScanOperator(task_id="dependency_updates")
