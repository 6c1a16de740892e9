"""The Slack message of a batch of outbox rows: Block Kit plus a plain-text fallback.

Everything that came from outside (summaries quoting response bodies, targets, reasons, run
ids) is redacted and then escaped for Slack (&, <, >), so a hostile body can neither ping a
channel (<!channel>) nor disguise a link (<https://evil|https://status>). Only the links this
module builds itself are left as links.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from maintenance.config import MaintenanceConfig
from maintenance.durations import format_duration
from maintenance.hooks.slack import outside, slack_escape, slack_link  # noqa: F401 - slack_escape re-exported
from maintenance.results import utcnow

MAX_CHECKS_PER_MESSAGE = 20   # Slack allows 50 blocks; past this the rest are counted, not listed
HEADER_LIMIT = 150            # Slack's limit for a header block's text

_ICON = {"alert": ":red_circle:", "reminder": ":red_circle:", "recovered": ":large_green_circle:",
         "crash": ":boom:", "report": ":white_check_mark:", "late": ":hourglass:", "config": ":warning:",
         "diagnosis": ":mag:", "deploy": ":rocket:"}
_VERB = {"alert": "FAILING", "reminder": "STILL FAILING", "recovered": "RECOVERED", "crash": "TASK CRASHED",
         "report": "REPORT", "late": "RUN LATE", "config": "CONFIG INVALID",
         "diagnosis": "DIAGNOSIS", "deploy": "DEPLOY"}


def _cut(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word boundary with an ellipsis (Slack's header limit)."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


def _first_line(summary: Any) -> str:
    # A report's summary may span lines (the monthly audit): the header is its first line only.
    return outside((str(summary).splitlines() or [""])[0])


def _since(payload: dict[str, Any], now: datetime) -> str:
    if not payload.get("failing_since"):
        return ""
    since = datetime.fromisoformat(payload["failing_since"])
    recovered = payload["kind"] == "recovered"
    verb = "was failing for" if recovered else "failing for"
    failures = payload.get("failures") or 0
    # From the first failing result to the recovering one (not to a delivery Slack delayed), or to now.
    end = datetime.fromisoformat(payload["checked_at"]) if recovered and payload.get("checked_at") else now
    lasted = format_duration((end - since).total_seconds(), exact_minutes=True)
    # failed checks, not runs: the watcher's sweeps (issue 16) count as well as uptime_monitor's runs
    return f"{verb} {lasted} ({failures} failed check{'s' if failures != 1 else ''})"


def _runbook_link(runbook: str | None, ui_base: str) -> str:
    if not runbook:
        return ""
    if runbook.startswith(("http://", "https://")):
        return slack_link(runbook, "runbook")
    return slack_link(f"{ui_base}/dags/{runbook}", f"runbook {runbook}")


def build_message(rows: list[dict[str, Any]], config: MaintenanceConfig, *, ui_base: str,
                  now: datetime | None = None, gated_for: float | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(plain-text fallback, Block Kit blocks) for a batch of outbox payloads; `gated_for`:
    seconds Slack's Retry-After kept every message back, said on the first line after the title."""
    now = now or utcnow()
    payloads = [r["payload"] for r in rows]
    failing = sum(1 for p in payloads if p["kind"] in ("alert", "reminder", "crash", "late", "config"))
    recovered = sum(1 for p in payloads if p["kind"] == "recovered")
    site = slack_escape(config.site.name)
    title = f"{site}: {failing} failing" + (f", {recovered} recovered" if recovered else "") if failing \
        else f"{site}: {recovered} recovered" if recovered else f"{site}: {_first_line(payloads[0].get('summary', ''))}"
    text_lines = [title]
    header = _cut(title, HEADER_LIMIT)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": header}}]
    if gated_for:
        text_lines.append(f"Slack asked us to wait (HTTP 429 Retry-After): gated for {format_duration(gated_for)}, "
                          "so what follows may be late.")
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": text_lines[-1]}]})
    for payload in payloads[:MAX_CHECKS_PER_MESSAGE]:
        kind = payload["kind"] if payload["kind"] in _VERB else "report"
        if kind == "diagnosis":   # runbooks (issue 10): body rendered and escaped by checks/diagnosis.render()
            # A diagnosis alone in its message has its headline in the header (the body's first
            # lines say it in full when the header is cut): not again below it.
            alone = len(payloads) == 1
            summary = outside(payload.get("summary", ""))
            body = payload.get("body", "") if alone else f"{_ICON[kind]} *{summary}*\n{payload.get('body', '')}"
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}})
            text_lines.append(payload.get("body", "") if alone else f"{_VERB[kind]} {summary}\n{payload.get('body', '')}")
            continue
        contact = config.contacts.get(payload.get("provider") or "")
        name = outside(payload.get("check") or f"{payload.get('dag_id')}.{payload.get('task_id')}")
        icon = ":red_circle:" if kind == "deploy" and payload.get("status") == "fail" else _ICON[kind]
        head = f"{icon} *{name}* {_VERB[kind]}"
        detail = [outside(payload.get("summary") or "")]
        if payload.get("target"):
            detail.append(f"target: {outside(payload['target'])}")
        if payload.get("reason"):
            detail.append(f"reason: `{outside(payload['reason'])}`")
        since = _since(payload, now)
        if since:
            detail.append(since)
        follow = [link for link in (_runbook_link(payload.get("runbook"), ui_base),) if link]
        if payload.get("diagnosis_url"):     # runbooks (issue 10): the run this incident started
            follow.append(slack_link(str(payload["diagnosis_url"]), "diagnosis run"))
        if payload.get("diagnosis_note"):
            follow.append(outside(payload["diagnosis_note"]))
        if contact and kind not in ("recovered", "report", "deploy"):   # a bad deploy is ours to fix
            follow.append(f"call {slack_escape(contact.name)} ({slack_escape(contact.how)})")
            if contact.status_page:
                follow.append(slack_link(contact.status_page, "status page"))
        where = " › ".join(outside(payload.get(key)) for key in ("dag_id", "task_id"))
        where += f" › run {outside(payload.get('run_id'))}"
        if payload.get("try_number"):
            where += f" › try {outside(payload['try_number'])}"
        if payload.get("log_url"):
            where += f" › {slack_link(str(payload['log_url']), 'task log')}"
        body = "\n".join([head, " · ".join(detail)] + ([" · ".join(follow)] if follow else []) + [where])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}})
        text_lines.append(f"{_VERB[kind]} {name}: " + " · ".join(detail).replace("`", ""))
    if len(payloads) > MAX_CHECKS_PER_MESSAGE:
        more = f"... and {len(payloads) - MAX_CHECKS_PER_MESSAGE} more; see the results store."
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
        text_lines.append(more)
    return "\n".join(text_lines), blocks
