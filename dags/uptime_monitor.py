"""Every 5 minutes, and within seconds when the uptime watcher (in the triggerer) sees an alert
open or resolve: the site's endpoints against their conditions; Slack when one fails."""

from maintenance.operators.defaults import MaintenanceDAG, dag_settings  # an airflow.sdk.DAG
from maintenance.operators.uptime import ExternalMonitorsOperator, UptimeCheckOperator
from maintenance.parse_settings import dag_defaults
from maintenance.triggers.uptime_watch import uptime_schedule

# The 5-minute cron OR the watcher's asset events (just the cron when uptime.watch_interval is 0).
schedule = uptime_schedule("*/5 * * * *", dag_defaults()["watch_interval_s"])

with MaintenanceDAG(**dag_settings("uptime_monitor", schedule=schedule, tags=["uptime"])):
    # A scheduled run sweeps everything (login flows, payment providers, the watcher's health);
    # a run started by the watcher delivers its alerts and starts the runbooks.
    UptimeCheckOperator(task_id="check_endpoints")
    # Compares UptimeRobot/Pingdom with our latest stored results (skipped in a watcher's run).
    # Not downstream of check_endpoints: a leaf with trigger_rule all_done would turn a failed run green.
    ExternalMonitorsOperator(task_id="cross_check_external_monitors")
