"""The shape of a runbook diagnosis, and the ranking of its causes: plain functions, no Airflow.

A runbook run stores one or more CheckResults per step (ok / warn / fail, reason, evidence).
`diagnose()` turns them into one Diagnosis: a red/green line per step, the causes ranked most
likely first (each with its evidence, the first thing to do and whom to call) and a headline.

Ranking (`rank_causes`): every non-ok result is matched to a Cause of the runbook's catalogue
by its `reason`. A cause's `weight` says how close to the root it sits: a provider incident or
a cluster that is changing explains a timed-out ping, not the other way round, so symptoms
carry a large weight and root causes a small one. A warning counts WARN_PENALTY more than a
failure of the same weight; ties keep the order of the steps. Reasons the catalogue does not
know rank after every known root cause (GENERIC_FAIL / GENERIC_WARN).

Two things are never the incident's cause: a step skipped for want of configuration (when most
steps were, the diagnosis says first what to configure) and a result with reason
MONITOR_NETWORK (a status page the monitor could not reach: its own network; its step's line
says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from maintenance.hooks.http_policy import redact
from maintenance.hooks.slack import outside, slack_link
from maintenance.results import CheckResult

WARN_PENALTY = 25
MONITOR_NETWORK = "monitor_network"   # the monitor could not reach a page: its own network, not the incident
NOT_CONFIGURED = "not_configured"
GENERIC_FAIL = 70
GENERIC_WARN = 90
_ICON = {"ok": ":large_green_circle:", "warn": ":large_yellow_circle:", "fail": ":red_circle:",
         "skipped": ":white_circle:"}


@dataclass(frozen=True)
class Cause:
    reason: str                 # the CheckResult.reason it explains
    title: str                  # what is wrong, in words a person acts on
    weight: int                 # lower: closer to the root (ranked first)
    action: str | None          # the first thing to do; None: the runbook does not know this reason
    contact: str | None = None  # key of the config's contacts; None: the result's provider


@dataclass
class Finding:
    cause: Cause
    result: CheckResult
    step: str
    score: int

    @property
    def evidence(self) -> str:
        return evidence_line(self.result)


@dataclass
class StepLine:
    step: str
    status: str                 # worst status of the step's results; "missing" when none was stored
    summary: str


@dataclass
class ContactLine:
    key: str
    name: str
    how: str
    status_page: str | None = None


@dataclass
class Diagnosis:
    runbook: str
    status: str                 # ok | warn | fail
    headline: str
    steps: list[StepLine]
    findings: list[Finding]
    contacts: list[ContactLine]
    trigger: str | None = None  # what started the run (an incident, or by hand)
    unconfigured: list[tuple[str, str]] = field(default_factory=list)   # (step, how to configure it)

    @property
    def root(self) -> Finding | None:
        return self.findings[0] if self.findings else None


def _generic(result: CheckResult) -> Cause:
    failed = result.status == "fail"
    return Cause(reason=result.reason or "unknown", title=result.summary.split(";")[0][:160],
                 weight=GENERIC_FAIL if failed else GENERIC_WARN, action=None, contact=result.provider)


def rank_causes(steps: Iterable[tuple[str, list[CheckResult]]], catalogue: Mapping[str, Cause]) -> list[Finding]:
    """Every warn/fail result as a Finding, most likely root cause first (pure, deterministic)."""
    findings: list[tuple[int, int, int, Finding]] = []
    order = 0
    for step_index, (step, results) in enumerate(steps):
        for result in results:
            order += 1
            if result.status not in ("warn", "fail") or result.reason == MONITOR_NETWORK:
                continue
            cause = catalogue.get(result.reason or "") or _generic(result)
            score = cause.weight + (WARN_PENALTY if result.status == "warn" else 0)
            findings.append((score, step_index, order, Finding(cause, result, step, score)))
    findings.sort(key=lambda item: item[:3])
    return [item[3] for item in findings]


def worst(statuses: Iterable[str]) -> str:
    statuses = list(statuses)
    for status in ("fail", "warn", "ok"):
        if status in statuses:
            return status
    return "skipped" if statuses else "missing"


def evidence_line(result: CheckResult, limit: int = 6) -> str:
    """The result's evidence as `key: value` pairs, short enough for one Slack line."""
    parts = []
    for key, value in list(result.evidence.items())[:limit]:
        if isinstance(value, (list, tuple)):
            shown = ", ".join(str(v) for v in value[:5]) + (f" (+{len(value) - 5})" if len(value) > 5 else "")
            value = f"[{shown}]"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in list(value.items())[:5])
        parts.append(f"{key}: {value}")
    return "; ".join(parts)[:600]


def diagnose(runbook: str, steps: list[tuple[str, list[CheckResult]]], catalogue: Mapping[str, Cause],
             contacts: Mapping[str, Any], *, default_contacts: Iterable[str] = (),
             trigger: str | None = None) -> Diagnosis:
    """The whole diagnosis of one runbook run.

    contacts: the config's `contacts` (objects with name, how, status_page). Whom to call: the
    root cause's contact first, then the other findings', each once; `default_contacts` (the
    runbook's providers) only when no finding names anyone.
    """
    lines = []
    for step, results in steps:
        status = worst(r.status for r in results)
        shown = [r for r in results if r.status == status] or results
        summary = "; ".join(r.summary for r in shown[:3]) if shown else "no result stored (the step did not run)"
        lines.append(StepLine(step, status, summary))
    findings = rank_causes(steps, catalogue)
    keys: list[str] = []
    for finding in findings:
        key = finding.cause.contact or finding.result.provider
        if key and key not in keys:
            keys.append(key)
    if not keys:    # a provider nothing points at is not worth a call
        keys = list(dict.fromkeys(default_contacts))
    people = [ContactLine(k, c.name, c.how, getattr(c, "status_page", None))
              for k in keys if (c := contacts.get(k)) is not None]
    status = worst([line.status for line in lines if line.status in ("ok", "warn", "fail")] or ["ok"])
    unconfigured = [(step, _how(r)) for step, results in steps for r in results if r.reason == NOT_CONFIGURED]
    skipped = sum(1 for line in lines if line.status == "skipped")
    most_skipped = skipped * 2 > len(lines)
    if most_skipped:
        headline = f"{runbook}: {skipped} of {len(lines)} steps skipped, not configured: configure them first"
        if findings:
            headline += f"; so far the most likely cause: {findings[0].cause.title}"
        status = "fail" if status == "fail" else "warn"
    elif findings:
        headline = f"{runbook}: most likely cause: {findings[0].cause.title}"
    elif any(line.status == "missing" for line in lines):
        headline = f"{runbook}: no cause found, but some steps stored no result"
        status = "warn"
    else:
        headline = f"{runbook}: every step is green, no cause found"
    return Diagnosis(runbook, status, headline, lines, findings, people, trigger,
                     unconfigured if most_skipped else [])


def _how(result: CheckResult) -> str:
    """What a not_configured result says to set ("skipped: not configured (HOW)")."""
    summary = result.summary
    start = summary.find("(")
    return summary[start + 1:-1] if start >= 0 and summary.endswith(")") else summary


def render(diagnosis: Diagnosis, *, run_url: str | None = None, max_findings: int = 4, markup: bool = True) -> str:
    """The body under the headline: what to configure (when most steps were skipped), the root
    cause, the monitor's own trouble, whom to call, then one line per step.

    markup=True: Slack mrkdwn, every text from outside escaped here, the only links the ones
    built here. markup=False: plain text for the task log (still redacted).
    """
    def text(value: Any) -> str:
        return outside(value) if markup else redact(str(value))

    def label(name: str) -> str:
        return f"*{name}:*" if markup else f"{name}:"

    def code(value: Any) -> str:
        return f"`{text(value)}`" if markup else text(value)

    def link(url: str, name: str) -> str:
        return slack_link(url, name) if markup else f"{name}: {url}"

    out: list[str] = []
    if diagnosis.trigger:
        out.append(f"_{text(diagnosis.trigger)}_" if markup else text(diagnosis.trigger))
    if diagnosis.unconfigured:
        steps_by_how: dict[str, list[str]] = {}
        for step, how in diagnosis.unconfigured:
            steps_by_how.setdefault(how, []).append(step)
        out.append(f"{label('Configure first')} " + "; ".join(
            f"{text(how)} (for {', '.join(code(s) for s in dict.fromkeys(steps))})"
            for how, steps in steps_by_how.items()))
    root = diagnosis.root
    if root is not None:
        known = root.cause.action is not None
        said = root.result.summary.startswith(root.cause.title)
        line = f"{label('Most likely cause')} {text(root.cause.title)}, found by {code(root.step)}"
        if known and not said:
            line += f": {text(root.result.summary)}"
        elif not known:
            line += f" (reason {code(root.cause.reason)} is not in this runbook; see that step's result below)"
        out.append(line)
        if root.evidence:
            out.append(f"{label('Evidence')} {text(root.evidence)}")
        if known:
            out.append(f"{label('Do first')} {text(root.cause.action)}")
        others = diagnosis.findings[1:max_findings]
        if others:
            out.append(f"{label('Also seen')} " + " · ".join(f"{text(f.cause.title)} ({text(f.step)})" for f in others))
    elif not diagnosis.unconfigured:
        out.append(f"{label('No cause found')} every step that ran is green.")
    if diagnosis.contacts and (root is not None or not diagnosis.unconfigured):
        calls = []
        for c in diagnosis.contacts:
            line = f"{text(c.name)} ({text(c.how)})"
            if c.status_page:
                line += f", status {link(c.status_page, c.status_page.split('://')[-1])}"
            calls.append(line)
        out.append(f"{label('Call')} " + " · ".join(calls))
    out.append(label("Steps"))
    for line in diagnosis.steps:
        summary = line.summary
        if root is not None and line.step == root.step:   # said above: not a third time
            summary = summary.replace(root.result.summary, "the most likely cause, above")
        if diagnosis.unconfigured and line.status == "skipped":
            summary = "not configured (see above)"
        shown = f"{_ICON.get(line.status, ':white_circle:')} {code(line.step)} {text(summary)}" if markup \
            else f"[{line.status}] {text(line.step)}: {text(summary)}"
        out.append(shown[:400])
    if run_url:
        out.append(link(run_url, "diagnosis run"))
    return "\n".join(out)
