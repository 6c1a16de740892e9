"""Monthly, the 1st at 05:00 UTC: audit, performance review, security scan, backup verification,
dependencies; then the monthly report with its director's summary."""

from airflow.sdk import DAG

from maintenance.operators.analytics import TrafficAnalyticsOperator
from maintenance.operators.backups import VerifyBackupsOperator
from maintenance.operators.defaults import dag_settings
from maintenance.operators.placeholder import NotImplementedCheckOperator
from maintenance.operators.reports import PeriodReportOperator, RunOutcomeOperator

with DAG(**dag_settings("maintenance_monthly", schedule="0 5 1 * *", tags=["monthly"])):
    checks = [
        NotImplementedCheckOperator(task_id="full_system_audit", check="audit.full", group="audit",
                                    planned_in="full system audit"),
        NotImplementedCheckOperator(task_id="performance_optimization_review", check="performance.monthly",
                                    group="performance", planned_in="performance optimisation review"),
        NotImplementedCheckOperator(task_id="security_scan", check="security.scan", group="security",
                                    planned_in="security scan (TLS, headers, DNSBL)"),
        VerifyBackupsOperator(task_id="verify_backups"),
        NotImplementedCheckOperator(task_id="dependency_updates", check="dependencies.monthly",
                                    group="dependencies", planned_in="dependency updates"),
        TrafficAnalyticsOperator(task_id="traffic_analytics", kind="monthly"),
    ]
    checks >> PeriodReportOperator(task_id="monthly_report", kind="monthly")
    checks >> RunOutcomeOperator(task_id="run_outcome")
