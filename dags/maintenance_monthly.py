"""Monthly, the 1st at 05:00 UTC: audit, performance review, security scan, backup verification, dependencies."""

from maintenance.operators.backups import VerifyBackupsOperator
from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.placeholder import NotImplementedCheckOperator

with MaintenanceDAG(**dag_settings("maintenance_monthly", schedule="0 5 1 * *", tags=["monthly"])):
    NotImplementedCheckOperator(task_id="full_system_audit", check="audit.full", group="audit",
                                planned_in="full system audit")
    NotImplementedCheckOperator(task_id="performance_optimization_review", check="performance.monthly",
                                group="performance", planned_in="performance optimisation review")
    NotImplementedCheckOperator(task_id="security_scan", check="security.scan", group="security",
                                planned_in="security scan (TLS, headers, DNSBL)")
    VerifyBackupsOperator(task_id="verify_backups")
    NotImplementedCheckOperator(task_id="dependency_updates", check="dependencies.monthly", group="dependencies",
                                planned_in="dependency updates")
