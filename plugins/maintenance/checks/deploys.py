"""Post-deployment verification (issue 19): which deployments to announce, the build's error
line, the verdict of a deploy and the way back. Plain functions: no Airflow, no HTTP.

A deployment here is Vercel's JSON (provider-apis.md sections 6 and 13): uid, url, readyState
(or state), target, created (ms), meta.githubCommitSha, inspectorUrl.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from maintenance.results import CheckResult

FINAL = ("READY", "ERROR")          # the states a production deployment is announced in
VERDICT_CHECK = "deploy.verdict"    # one stored result per verified deployment (family `deploy`)
ROLLBACK_CHECK = "deploy.rollback"  # one per rollback attempt (auto_rollback)
STARTED_CHECK = "deploy.started"    # a READY deployment's verification started (by one run only)
GROUP = "deploy"


def state_of(deployment: dict[str, Any]) -> str:
    return str(deployment.get("readyState") or deployment.get("state") or "").upper()


def created_ms(deployment: dict[str, Any]) -> int:
    try:
        return int(deployment.get("created") or deployment.get("createdAt") or 0)
    except (TypeError, ValueError):
        return 0


def uid_of(deployment: dict[str, Any]) -> str:
    return str(deployment.get("uid") or deployment.get("id") or "")


def facts(deployment: dict[str, Any]) -> dict[str, Any]:
    """What the event payload and the messages carry about one deployment (nothing secret)."""
    meta = deployment.get("meta") if isinstance(deployment.get("meta"), dict) else {}
    url = str(deployment.get("url") or "")
    return {"uid": uid_of(deployment), "state": state_of(deployment), "created": created_ms(deployment),
            "url": f"https://{url}" if url and "://" not in url else url,
            "sha": str(meta.get("githubCommitSha") or meta.get("gitlabCommitSha") or meta.get("bitbucketCommitSha")
                       or ""),
            "commit_message": str(meta.get("githubCommitMessage") or "")[:200],
            "inspector_url": str(deployment.get("inspectorUrl") or ""),
            "error": str(deployment.get("errorMessage") or "")[:300]}


def announcements(deployments: list[dict[str, Any]], memory: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(deployments to announce now, oldest first; the memory after announcing them).

    memory = {"since": ms, "announced": {uid: created_ms}}: deployments created before `since`
    are settled; among the later ones, those in `announced` were announced already. `since`
    stays at the oldest deployment still building, so one that turns READY after a newer one
    is announced too. No memory (a trigger that never ran): nothing is announced, the READY and
    ERROR deployments of today are taken as known, the ones still building will be announced.
    """
    items = [d for d in deployments if uid_of(d)]
    first = not isinstance(memory, dict) or not isinstance(memory.get("announced"), dict)
    since = 0 if first else int(memory.get("since") or 0)
    announced = {} if first else {str(k): int(v) for k, v in memory["announced"].items()
                                  if isinstance(v, (int, float))}
    recent = [d for d in items if created_ms(d) >= since]
    due = [] if first else sorted((d for d in recent if state_of(d) in FINAL and uid_of(d) not in announced),
                                  key=created_ms)
    for d in (recent if first else due):
        if state_of(d) in FINAL:
            announced[uid_of(d)] = created_ms(d)
    pending = [created_ms(d) for d in recent if state_of(d) not in FINAL and state_of(d) != "CANCELED"]
    newest = max((created_ms(d) for d in recent), default=since)
    since = min(pending) if pending else max(newest, since)
    announced = {uid: at for uid, at in announced.items() if at >= since}
    return due, {"since": since, "announced": announced}


def build_error_line(events: list[dict[str, Any]], deployment: dict[str, Any] | None = None) -> str:
    """The line of the build log that says why it failed: the last stderr/error line that names an
    error, else the last stderr line, else the deployment's errorMessage."""
    lines: list[tuple[str, str]] = []
    for event in events:
        payload = event.get("payload") if isinstance(event.get("payload"), dict) else {}
        text = event.get("text") if isinstance(event.get("text"), str) else payload.get("text")
        if isinstance(text, str) and text.strip():
            lines.append((str(event.get("type") or ""), text.strip()))
    errors = [t for kind, t in lines if kind in ("stderr", "command-error", "error", "fatal")]
    named = [t for t in errors if "error" in t.lower() or "failed" in t.lower() or "exited with" in t.lower()]
    # The build tool's closing "Command ... exited with 1" says that it failed, the line before it why.
    causes = [t for t in named if "exited with" not in t.lower()]
    line = (causes or named or errors or [""])[-1]
    if not line and deployment is not None:
        line = str(deployment.get("errorMessage") or "")
    return line.splitlines()[0][:300] if line else "(no error line in the build log)"


def release_name(template: str, sha: str) -> str:
    return template.format(sha=sha, short_sha=sha[:7]) if sha else ""


@dataclass
class SentryFacts:
    release: str
    new_issues: list[dict[str, Any]] = field(default_factory=list)
    errors_before: int | None = None
    errors_after: int | None = None
    window_s: float = 0.0
    problem: str | None = None          # Sentry could not be read (the verdict says so)


def sentry_findings(facts_: SentryFacts, *, max_new_issues: int, rate_factor: float, min_errors: int) -> list[str]:
    """The regressions Sentry shows: new issues of the release, an error rate up after the deploy."""
    found = []
    if len(facts_.new_issues) > max_new_issues:
        names = ", ".join(f"{i.get('shortId') or i.get('id')} {str(i.get('title') or '')[:80]}"
                          f" ({i.get('count') or '?'} events)" for i in facts_.new_issues[:5])
        more = f" and {len(facts_.new_issues) - 5} more" if len(facts_.new_issues) > 5 else ""
        found.append(f"{len(facts_.new_issues)} new Sentry issue(s) first seen in release {facts_.release}: "
                     f"{names}{more}")
    before, after = facts_.errors_before, facts_.errors_after
    if before is not None and after is not None and after >= min_errors and after > rate_factor * before:
        found.append(f"error events {before} before -> {after} after the deploy (same {_minutes(facts_.window_s)} "
                     f"window; above {rate_factor:g}x)")
    return found


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min"


def rollback_advice(previous: dict[str, Any] | None, verified: bool) -> str:
    """The way back, in one line: the deployment, the CLI command and the UI link."""
    if previous is None:
        return "way back: no earlier production deployment known"
    uid = previous.get("uid") or ""
    label = "verified healthy" if verified else "NOT verified by this project"
    link = previous.get("inspector_url") or previous.get("inspectorUrl") or ""
    return (f"way back: previous production deployment {uid} ({label}): `vercel rollback {uid}`"
            + (f" or Instant Rollback at {link}" if link else ""))


def verdict(deployment: dict[str, Any], *, endpoint_failures: list[CheckResult], sentry: SentryFacts | None,
            sentry_problems: list[str], way_back: str, action: str = "", now: datetime | None = None) -> CheckResult:
    """One verdict of one READY deployment: healthy, or regressed with the evidence and the way back."""
    failing = [f"{r.check.split(':', 1)[-1]} ({r.target}): {r.summary}" for r in endpoint_failures]
    evidence = {**{k: deployment.get(k) for k in ("uid", "url", "sha", "inspector_url", "created")},
                "endpoints_failing": failing, "sentry": sentry_problems,
                "release": sentry.release if sentry else None,
                "errors_before": sentry.errors_before if sentry else None,
                "errors_after": sentry.errors_after if sentry else None,
                "new_issues": [i.get("shortId") or i.get("id") for i in (sentry.new_issues if sentry else [])]}
    head = f"deploy {deployment.get('uid')} ({(deployment.get('sha') or '?')[:7]}) {deployment.get('url')}"
    if failing or sentry_problems:
        lines = [f"{head}: REGRESSED"] + [f"endpoint failing: {f}" for f in failing] + sentry_problems
        lines.append(way_back)
        if action:
            lines.append(action)
        status, reason = "fail", "regressed"
    else:
        checked = "endpoints green" + (f"; Sentry: no new issue in release {sentry.release}, errors "
                                       f"{sentry.errors_before} -> {sentry.errors_after}" if sentry and
                                       sentry.problem is None else "")
        note = [f"Sentry not read: {sentry.problem}"] if sentry and sentry.problem else []
        lines = [f"{head}: healthy ({checked})"] + note
        status, reason = "ok", "healthy"
    return CheckResult(check=VERDICT_CHECK, group=GROUP, status=status, reason=reason, summary="\n".join(lines),
                       target=str(deployment.get("url") or ""), evidence=evidence, runbook="post_deploy_verification",
                       provider="vercel", critical=status == "fail", time=now or datetime.now(timezone.utc))


def build_failed(deployment: dict[str, Any], error_line: str, serving: dict[str, Any] | None) -> CheckResult:
    """An ERROR build: the alert at once, with what production still serves."""
    serving_text = (f"production still serves {serving.get('uid')} ({serving.get('url') or ''})"
                    if serving else "production's current deployment unknown")
    summary = (f"deploy {deployment.get('uid')} ({(deployment.get('sha') or '?')[:7]}) build FAILED: {error_line}\n"
               f"{serving_text}\n{deployment.get('inspector_url') or deployment.get('url')}")
    return CheckResult(check=VERDICT_CHECK, group=GROUP, status="fail", reason="build_error", summary=summary,
                       target=str(deployment.get("url") or ""), runbook="post_deploy_verification", provider="vercel",
                       evidence={**{k: deployment.get(k) for k in ("uid", "url", "sha", "inspector_url", "created")},
                                 "error_line": error_line, "serving": (serving or {}).get("uid")})
