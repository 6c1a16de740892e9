"""Every 5 minutes: the site's endpoints against their conditions; Slack when one fails."""

from airflow.sdk import DAG

from maintenance.operators.defaults import dag_settings
from maintenance.operators.placeholder import NotImplementedCheckOperator
from maintenance.operators.uptime import UptimeCheckOperator

with DAG(**dag_settings("uptime_monitor", schedule="*/5 * * * *", tags=["uptime"])):
    UptimeCheckOperator(task_id="check_endpoints")
    NotImplementedCheckOperator(task_id="cross_check_external_monitors", check="uptime.external_monitors",
                                group="uptime", planned_in="issue #3: UptimeRobot and Pingdom cross-check")
