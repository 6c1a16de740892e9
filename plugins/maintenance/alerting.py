"""The one alert path: alert state per check, the Slack outbox, the message, the callback.

Flow (docs/ARCHITECTURE.md, "Alert flow"):
1. A check task calls `assess()`: results are stored, each check's state is updated and the
   alerts due now (newly past failure_threshold, renotify_after elapsed, recovered) are put in
   the outbox, all in one transaction. During a maintenance window nothing is due.
2. The task fails when a check is at or past its threshold; Airflow retries it (a re-check).
   A check that recovers before its alert was delivered cancels that alert: nobody is paged.
3. After the last try, `on_failure_callback` delivers the outbox as one grouped Slack message
   (a crash of the task itself is added as such). A task that succeeds delivers its recoveries.
4. A message Slack does not accept stays in the outbox and goes out with the next one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from maintenance.config import Alerting, MaintenanceConfig, get_config
from maintenance.durations import format_duration
from maintenance.hooks.http_policy import RetryPolicy, redact
from maintenance.results import CheckResult, ResultsStore, utcnow

log = logging.getLogger(__name__)

SLACK_POLICY = RetryPolicy(timeout=10, attempts=3, backoff_base=1.0, backoff_max=8.0)
MAX_CHECKS_PER_MESSAGE = 20   # Slack allows 50 blocks; past this the rest are counted, not listed


class ChecksFailed(Exception):
    """Raised by a check task when a check is at or past its failure threshold."""

    def __init__(self, failing: list[CheckResult]) -> None:
        self.failing = failing
        lines = "; ".join(f"{r.check}: {r.summary}" for r in failing)
        super().__init__(f"{len(failing)} check(s) failing: {lines}")


@dataclass
class Due:
    kind: str                   # alert | reminder | recovered
    result: CheckResult
    failures: int
    failing_since: datetime | None
    outbox_id: int | None = None    # runbooks (issue 10): the enqueued message, to add the diagnosis link


@dataclass
class Assessment:
    paging: list[CheckResult] = field(default_factory=list)   # at/past threshold: fail the task
    due: list[Due] = field(default_factory=list)
    in_maintenance: list[str] = field(default_factory=list)


def next_state(result: CheckResult, state: dict[str, Any] | None, policy: Alerting,
               now: datetime, failure_threshold: int | None = None) -> tuple[dict[str, Any], Due | None, bool]:
    """Pure transition of one check's alert state: (new state, alert due or None, paging).

    failure_threshold overrides the config's (checks that run daily page on their first
    failure; their task retries are the re-check).
    """
    threshold = failure_threshold or policy.failure_threshold
    state = dict(state or {"check_name": result.check, "consecutive_failures": 0, "consecutive_successes": 0,
                           "alerting": False, "failing_since": None, "last_alert_at": None,
                           "last_outbox_id": None})
    state["updated_at"] = now
    due: Due | None = None
    if result.status == "skipped":
        return state, None, False
    if result.failed:
        state["consecutive_failures"] += 1
        state["consecutive_successes"] = 0
        state["failing_since"] = state["failing_since"] or result.time
        paging = state["consecutive_failures"] >= threshold
        if paging and not state["alerting"]:
            state.update(alerting=True, last_alert_at=now)
            due = Due("alert", result, state["consecutive_failures"], state["failing_since"])
        elif paging and now - state["last_alert_at"] >= policy.renotify_after:
            state["last_alert_at"] = now
            due = Due("reminder", result, state["consecutive_failures"], state["failing_since"])
        return state, due, paging
    # ok or warn: a success
    state["consecutive_successes"] += 1
    failures, since = state["consecutive_failures"], state["failing_since"]
    state["consecutive_failures"] = 0
    if state["alerting"]:
        if state["consecutive_successes"] >= policy.success_threshold:
            state.update(alerting=False, failing_since=None)
            due = Due("recovered", result, failures, since)
    else:
        state["failing_since"] = None
    return state, due, False


def assess(store: ResultsStore, config: MaintenanceConfig, results: list[CheckResult], *,
           dag_id: str | None = None, run_id: str | None = None, task_id: str | None = None,
           try_number: int | None = None, log_url: str | None = None,
           now: datetime | None = None, failure_threshold: int | None = None) -> Assessment:
    """Store results, update alert states and enqueue the alerts due now (one transaction)."""
    now = now or utcnow()
    policy = config.alerting
    assessment = Assessment(in_maintenance=[r.check for r in results if config.in_maintenance(r.check, now)])
    quiet = set(assessment.in_maintenance)
    store.record(results, dag_id=dag_id, run_id=run_id, task_id=task_id, try_number=try_number,
                 in_maintenance=quiet)
    states = store.alert_states(r.check for r in results)
    new_states = []
    with store.engine.begin() as conn:
        for result in results:
            if result.check in quiet:
                continue   # stored above, but neither counted nor alerted (Gatus semantics)
            state, due, paging = next_state(result, states.get(result.check), policy, now, failure_threshold)
            if paging:
                assessment.paging.append(result)
            if due is not None:
                assessment.due.append(due)
                if due.kind == "recovered" and state["last_outbox_id"] and store.cancel(conn, state["last_outbox_id"], now):
                    log.info("%s recovered before its alert was delivered: alert cancelled", result.check)
                    state["last_outbox_id"] = None
                elif due.kind != "recovered" or policy.send_on_resolved:
                    payload = _payload(due, dag_id=dag_id, run_id=run_id, task_id=task_id,
                                       try_number=try_number, log_url=log_url)
                    outbox_id = store.enqueue(
                        conn, kind=due.kind, payload=payload, check=result.check,
                        channel="now" if result.critical else "digest",
                        dag_id=dag_id, run_id=run_id, task_id=task_id, now=now)
                    state["last_outbox_id"] = outbox_id if due.kind != "recovered" else None
                    due.outbox_id = outbox_id
            new_states.append(state)
        store.save_alert_states(new_states, conn)
    return assessment


def _payload(due: Due, **context: Any) -> dict[str, Any]:
    r = due.result
    return {
        "kind": due.kind, "check": r.check, "target": r.target, "group": r.group, "status": r.status,
        "summary": r.summary, "reason": r.reason, "runbook": r.runbook, "provider": r.provider,
        "failures": due.failures, "failing_since": due.failing_since.isoformat() if due.failing_since else None,
        "checked_at": r.time.isoformat(), "metrics": r.metrics, **context,
    }


def describe_error(error: BaseException | None) -> str:
    """One redacted line: the exception type and the first line of its message."""
    if error is None:
        return "the task failed without an exception"
    first = (str(error).strip().splitlines() or [""])[0]
    return redact(f"{type(error).__name__}: {first}")[:300]


def enqueue_crash(store: ResultsStore, context: dict[str, Any], error: BaseException | None) -> None:
    what = describe_error(error)
    fields = _ti_fields(context)
    # The DAG's own doc_md is the runbook for its tasks.
    payload = {"kind": "crash", "check": None, "summary": what, "runbook": fields.get("dag_id"), **fields}
    with store.engine.begin() as conn:
        store.enqueue(conn, kind="crash", payload=payload, dag_id=payload.get("dag_id"),
                      run_id=payload.get("run_id"), task_id=payload.get("task_id"))


def enqueue_report(store: ResultsStore, result: CheckResult, context: dict[str, Any], channel: str = "report") -> None:
    """An informational message (e.g. manual_backup's snapshot id), sent by `deliver(channel=...)`."""
    payload = {"kind": "report", "check": result.check, "target": result.target, "group": result.group,
               "status": result.status, "summary": result.summary, "reason": None, "runbook": result.runbook,
               "provider": result.provider, "checked_at": result.time.isoformat(), "metrics": result.metrics,
               **_ti_fields(context)}
    with store.engine.begin() as conn:
        store.enqueue(conn, kind="report", payload=payload, check=result.check, channel=channel,
                      dag_id=payload.get("dag_id"), run_id=payload.get("run_id"), task_id=payload.get("task_id"))


# -- runbooks (issue 10): one diagnosis message per runbook run ---------------------------------
def enqueue_diagnosis(store: ResultsStore, result: CheckResult, body: str, context: dict[str, Any],
                      channel: str = "diagnosis") -> None:
    """A runbook's diagnosis: `result.summary` is the headline, `body` the mrkdwn shown under it."""
    payload = {"kind": "diagnosis", "check": result.check, "status": result.status, "summary": result.summary,
               "body": body, "runbook": result.runbook, "provider": result.provider,
               "checked_at": result.time.isoformat(), **_ti_fields(context)}
    with store.engine.begin() as conn:
        store.enqueue(conn, kind="diagnosis", payload=payload, check=result.check, channel=channel,
                      dag_id=payload.get("dag_id"), run_id=payload.get("run_id"), task_id=payload.get("task_id"))
# -- end runbooks -----------------------------------------------------------------------------


def task_key(context: dict[str, Any]) -> tuple[str, str, str] | None:
    ti = context.get("ti") or context.get("task_instance")
    return (ti.dag_id, ti.run_id, ti.task_id) if ti is not None else None


def _ti_fields(context: dict[str, Any]) -> dict[str, Any]:
    ti = context.get("ti") or context.get("task_instance")
    if ti is None:
        return {}
    try:
        log_url = ti.log_url
    except Exception:  # noqa: BLE001 - a missing base_url must not stop the alert
        log_url = None
    return {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id,
            "try_number": getattr(ti, "try_number", None), "log_url": log_url}


# -- the message ------------------------------------------------------------------------------
_ICON = {"alert": ":red_circle:", "reminder": ":red_circle:", "recovered": ":large_green_circle:",
         "crash": ":boom:", "report": ":white_check_mark:", "late": ":hourglass:",
         "diagnosis": ":mag:"}
_VERB = {"alert": "FAILING", "reminder": "STILL FAILING", "recovered": "RECOVERED", "crash": "TASK CRASHED",
         "report": "REPORT", "late": "RUN LATE", "diagnosis": "DIAGNOSIS"}   # late: a missed deadline (deadlines.py)


def _since(payload: dict[str, Any], now: datetime) -> str:
    if not payload.get("failing_since"):
        return ""
    since = datetime.fromisoformat(payload["failing_since"])
    verb = "was failing for" if payload["kind"] == "recovered" else "failing for"
    failures = payload.get("failures") or 0
    return f"{verb} {format_duration((now - since).total_seconds())} ({failures} check{'s' if failures != 1 else ''})"


def _runbook_link(runbook: str | None, ui_base: str) -> str:
    if not runbook:
        return ""
    if runbook.startswith(("http://", "https://")):
        return f"<{runbook}|runbook>"
    return f"<{ui_base}/dags/{runbook}|runbook {runbook}>"


def build_message(rows: list[dict[str, Any]], config: MaintenanceConfig, *, ui_base: str,
                  now: datetime | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(plain-text fallback, Block Kit blocks) for a batch of outbox payloads."""
    now = now or utcnow()
    payloads = [r["payload"] for r in rows]
    failing = sum(1 for p in payloads if p["kind"] in ("alert", "reminder", "crash", "late"))
    recovered = sum(1 for p in payloads if p["kind"] == "recovered")
    site = config.site.name
    title = f"{site}: {failing} failing" + (f", {recovered} recovered" if recovered else "") if failing \
        else f"{site}: {recovered} recovered" if recovered else f"{site}: {payloads[0].get('summary', '')}"
    text_lines = [title]
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": title[:150]}}]
    for payload in payloads[:MAX_CHECKS_PER_MESSAGE]:
        if payload["kind"] == "diagnosis":   # runbooks (issue 10): pre-rendered by checks/diagnosis.py
            body = f"{_ICON['diagnosis']} *{payload.get('summary', '')}*\n{payload.get('body', '')}"
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": redact(body)[:2900]}})
            text_lines.append(redact(f"DIAGNOSIS {payload.get('summary', '')}\n{payload.get('body', '')}"))
            continue
        contact = config.contacts.get(payload.get("provider") or "")
        name = payload.get("check") or f"{payload.get('dag_id')}.{payload.get('task_id')}"
        head = f"{_ICON[payload['kind']]} *{name}* {_VERB[payload['kind']]}"
        detail = [payload.get("summary") or ""]
        if payload.get("target"):
            detail.append(f"target: {payload['target']}")
        if payload.get("reason"):
            detail.append(f"reason: `{payload['reason']}`")
        since = _since(payload, now)
        if since:
            detail.append(since)
        follow = [link for link in (_runbook_link(payload.get("runbook"), ui_base),) if link]
        if payload.get("diagnosis_url"):     # runbooks (issue 10): the run this incident started
            follow.append(f"<{payload['diagnosis_url']}|diagnosis run>")
        elif payload.get("diagnosis_note"):
            follow.append(payload["diagnosis_note"])
        if contact and payload["kind"] not in ("recovered", "report"):
            follow.append(f"call {contact.name} ({contact.how})")
            if contact.status_page:
                follow.append(f"<{contact.status_page}|status page>")
        where = f"{payload.get('dag_id')} › {payload.get('task_id')} › run {payload.get('run_id')}"
        if payload.get("try_number"):
            where += f" › try {payload['try_number']}"
        if payload.get("log_url"):
            where += f" › <{payload['log_url']}|task log>"
        body = "\n".join([head, " · ".join(detail)] + ([" · ".join(follow)] if follow else []) + [where])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": redact(body)[:2900]}})
        text_lines.append(redact(f"{_VERB[payload['kind']]} {name}: " + " · ".join(detail)).replace("`", ""))
    if len(payloads) > MAX_CHECKS_PER_MESSAGE:
        more = f"... and {len(payloads) - MAX_CHECKS_PER_MESSAGE} more; see the results store."
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
        text_lines.append(more)
    return "\n".join(text_lines), blocks


# -- delivery -----------------------------------------------------------------------------------
class SlackNotConfigured(Exception):
    pass


class SlackSendError(Exception):
    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def slack_sender(conn_id: str) -> Callable[[str, list[dict[str, Any]]], None]:
    """A send(text, blocks) through SlackWebhookHook; raises SlackNotConfigured or SlackSendError."""
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    hook = SlackWebhookHook(slack_webhook_conn_id=conn_id, timeout=int(SLACK_POLICY.timeout))
    try:
        secret = hook.get_connection(conn_id).password
        client = hook.client
    except AirflowNotFoundException as exc:
        raise SlackNotConfigured(f"connection '{conn_id}' is not configured") from exc

    def send(text: str, blocks: list[dict[str, Any]]) -> None:
        try:
            response = client.send(text=text, blocks=blocks)
        except Exception as exc:  # noqa: BLE001 - urllib/socket errors: Slack unreachable
            raise SlackSendError(redact(f"Slack unreachable: {type(exc).__name__}: {exc}", [secret]), True) from None
        if response.status_code != 200:
            raise SlackSendError(f"Slack answered HTTP {response.status_code}: {redact(str(response.body)[:200], [secret])}",
                                 response.status_code >= 500 or response.status_code == 429)
    return send


def send_message(config: MaintenanceConfig, rows: list[dict[str, Any]], *,
                 sender: Callable[[str, list[dict[str, Any]]], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep, now: datetime | None = None) -> str | None:
    """Post one grouped message for these outbox rows, retrying transient errors.

    Returns None when it was delivered (or logged, Slack not being configured), else the error.
    """
    ui_base = (config.alerting.ui_base_url or _airflow_base_url()).rstrip("/")
    text, blocks = build_message(rows, config, ui_base=ui_base, now=now)
    try:
        sender = sender or slack_sender(config.alerting.slack_conn_id)
    except SlackNotConfigured as exc:
        log.warning("Slack alert not sent (%s); the message was:\n%s", exc, text)
        return None   # logged is the delivery we can make
    error = None
    for attempt in range(1, SLACK_POLICY.attempts + 1):
        try:
            sender(text, blocks)
            log.info("Slack alert delivered: %d item(s)", len(rows))
            return None
        except SlackSendError as exc:
            error = str(exc)
            if not exc.retryable or attempt == SLACK_POLICY.attempts:
                break
            wait = SLACK_POLICY.delay(attempt)
            log.warning("%s (try %d of %d); retrying in %.1fs", exc, attempt, SLACK_POLICY.attempts, wait)
            sleep(wait)
    log.warning("Slack alert not delivered (%s):\n%s", error, text)
    return error


def deliver(store: ResultsStore, config: MaintenanceConfig, *, channel: str = "now",
            task: tuple[str, str, str] | None = None,
            sender: Callable[[str, list[dict[str, Any]]], None] | None = None,
            sleep: Callable[[float], None] = time.sleep, now: datetime | None = None) -> int:
    """Send the undelivered messages of a channel as one grouped Slack message.

    Returns the number of messages delivered (0 when none was due or Slack refused them:
    refused ones stay in the outbox for the next delivery). Never raises for Slack's sake.
    """
    token, rows = store.claim(channel, task=task, now=now)
    if not rows:
        return 0
    error = send_message(config, rows, sender=sender, sleep=sleep, now=now)
    store.settle(token, delivered=error is None, error=error, now=now)
    if error is not None:
        log.warning("kept %d undelivered item(s) for the next message", len(rows))
        return 0
    return len(rows)


def _airflow_base_url() -> str:
    try:
        from airflow.configuration import conf
        return conf.get("api", "base_url", fallback="http://localhost:8080")
    except Exception:  # noqa: BLE001
        return "http://localhost:8080"


def on_failure_callback(context: dict[str, Any]) -> None:
    """default_args on_failure_callback of every DAG: one grouped Slack message, never a raise."""
    from maintenance.hooks.results_db import results_store

    try:
        config = get_config()
    except Exception:  # noqa: BLE001 - a callback that raises only hides the original failure
        log.exception("the failure alert could not be prepared: the config does not load")
        return
    error = context.get("exception")
    try:
        store = results_store(config.results.conn_id)
        if not isinstance(error, ChecksFailed):
            enqueue_crash(store, context, error)
        deliver(store, config, task=task_key(context))
    except Exception as store_error:  # noqa: BLE001
        # The results store itself is down: say so directly rather than lose the alert.
        log.exception("results store unavailable; alerting without it")
        fields = _ti_fields(context)
        payload = {"kind": "crash", **fields, "runbook": fields.get("dag_id"),
                   "summary": f"{describe_error(error)} (results store unavailable: {type(store_error).__name__})"}
        send_message(config, [{"payload": payload}])
