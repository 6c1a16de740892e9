"""The one alert path (docs/ARCHITECTURE.md, "Alert flow"), one job per module:

state.py     the pure state machine of one check (thresholds, reminders, recoveries)
assess.py    a task's results -> stored, states moved, due alerts in the outbox (one transaction)
message.py   outbox rows -> one Slack message (redacted, escaped)
delivery.py  claim, send through hooks/slack.py, settle; Retry-After gate, dead letters

Every sender goes through notifications/slack.py (MaintenanceNotifier), which calls deliver().
"""

from maintenance.alerting.assess import (
    Assessment, ChecksFailed, assess, crash_payload, describe_error, enqueue_crash, enqueue_diagnosis, enqueue_once,
    enqueue_report, task_key, ti_fields,
)
from maintenance.alerting.delivery import SLACK_POLICY, Outcome, deliver, send_message, ui_base_url
from maintenance.alerting.message import build_message, slack_escape
from maintenance.alerting.state import Due, next_state
from maintenance.hooks.slack import SlackNotConfigured, SlackSendError

__all__ = [
    "Assessment", "ChecksFailed", "Due", "Outcome", "SLACK_POLICY", "SlackNotConfigured", "SlackSendError",
    "assess", "build_message", "crash_payload", "deliver", "describe_error", "enqueue_crash", "enqueue_diagnosis", "enqueue_once",
    "enqueue_report", "next_state", "send_message", "slack_escape", "task_key", "ti_fields", "ui_base_url",
]
