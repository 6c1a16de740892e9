"""Every 5 minutes: the site's endpoints against their conditions; Slack when one fails."""

from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.uptime import ExternalMonitorsOperator, UptimeCheckOperator

with MaintenanceDAG(**dag_settings("uptime_monitor", schedule="*/5 * * * *", tags=["uptime"])):
    UptimeCheckOperator(task_id="check_endpoints")
    # Compares UptimeRobot/Pingdom with our latest stored results. Not downstream of
    # check_endpoints: a leaf with trigger_rule all_done would turn a failed run green.
    ExternalMonitorsOperator(task_id="cross_check_external_monitors")
