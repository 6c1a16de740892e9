"""Monthly, the 1st at 05:00 UTC: audit, performance review, security scan, backup verification,
dependencies, traffic analytics; then the monthly report with its director's summary."""

from datetime import timedelta

from maintenance.operators.analytics import AppAnalyticsOperator, TrafficAnalyticsOperator
from maintenance.operators.audit import FullSystemAuditOperator
from maintenance.operators.backups import VerifyBackupsOperator
from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.dependencies import DependencyScanOperator
from maintenance.operators.performance import PerformanceReviewOperator
from maintenance.operators.reports import PeriodReportOperator, RunOutcomeOperator
from maintenance.operators.security import SecurityScanOperator

with MaintenanceDAG(**dag_settings("maintenance_monthly", schedule="0 5 1 * *", tags=["monthly"])):
    checks = [
        FullSystemAuditOperator(task_id="full_system_audit"),
        PerformanceReviewOperator(task_id="performance_optimization_review", period="month"),
        # Each site has its deadline (security_scan.site_deadline); this bounds the task as a whole.
        SecurityScanOperator(task_id="security_scan", execution_timeout=timedelta(hours=1)),
        VerifyBackupsOperator(task_id="verify_backups"),
        DependencyScanOperator(task_id="dependency_updates"),
        TrafficAnalyticsOperator(task_id="traffic_analytics", kind="monthly"),
        AppAnalyticsOperator(task_id="app_analytics", kind="monthly"),
    ]
    checks >> PeriodReportOperator(task_id="monthly_report", kind="monthly")
    checks >> RunOutcomeOperator(task_id="run_outcome")
