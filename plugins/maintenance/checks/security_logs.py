"""The weekly security log review (plain functions): Atlas project events and the application's
admin audit log, each change with who and when.

A change nobody expects fails (one Slack alert): an IP access list entry added (always when it
opens the project to the whole internet), a new API key in the project, a role raised to admin
in the application. Event types listed in `security_logs.expected_event_types` and users in
`expected_admins` are planned: summarised, not alerted. Failed admin logins above the configured
rate per hour fail too. Everything else goes to the summary (the digest).
Event type names: provider-apis.md section 1 (the spec warns they change often: matched by name
and by prefix, unknown ones are counted as "other").
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timedelta
from typing import Any

from maintenance.checks.fields import identities, listed, number, text
from maintenance.results import CheckResult

RUNBOOK = "maintenance_weekly"
GROUP = "security"

# Event type names and fields: the Atlas v2 spec (provider-apis.md section 1). A project's events
# (listGroupEvents) and its organisation's (listOrgEvents) are different sets: organisation settings
# never show among the project's events, so they are read from the organisation's endpoint.
NEW_API_KEY = {"API_KEY_CREATED", "API_KEY_ADDED_TO_GROUP"}
PROJECT_ACCESS_OPENED = {"NETWORK_PERMISSION_ENTRY_ADDED", "API_KEY_ACCESS_LIST_ENTRY_ADDED"}
ORG_ACCESS_OPENED = {"ORG_PUBLIC_API_ACCESS_LIST_NOT_REQUIRED", "ORG_UI_IP_ACCESS_LIST_DISABLED"}
ORG_EVENT_TYPES = sorted(ORG_ACCESS_OPENED | {"ORG_EDITED_UI_IP_ACCESS_LIST_ENTRIES"})   # asked of listOrgEvents
ACCESS_OPENED = PROJECT_ACCESS_OPENED | ORG_ACCESS_OPENED
ROLE_RAISED = {"API_KEY_ROLES_CHANGED", "USER_ROLES_CHANGED_AUDIT"}
_FAILED_LOGIN = re.compile(r"LOGIN.*FAIL|FAIL.*LOGIN|AUTH\w*_FAIL|FAILED_AUTH")


def category(event_type: str) -> str:
    """access_list | api_key | database_user | role | failed_login | other."""
    if event_type.startswith("NETWORK_PERMISSION_ENTRY") or "ACCESS_LIST" in event_type or "WHITELIST" in event_type:
        return "access_list"
    if "API_KEY" in event_type:
        return "api_key"
    if event_type.startswith(("MONGODB_USER_", "MONGODB_ROLE_", "DATABASE_USER_")):
        return "database_user"
    if _FAILED_LOGIN.search(event_type):
        return "failed_login"
    if "ROLE" in event_type or event_type in ("JOINED_GROUP", "INVITED_TO_GROUP", "REMOVED_FROM_GROUP"):
        return "role"
    return "other"


def _whole_internet(entry: str) -> bool:
    try:
        return ipaddress.ip_network(entry.strip(), strict=False).prefixlen == 0
    except ValueError:
        return False


def describe_event(event: dict[str, Any]) -> dict[str, Any]:
    """Who, when, what of one Atlas event (every field optional: the shapes vary by type)."""
    kind = text(event.get("eventTypeName") or "UNKNOWN")
    key = text(event.get("publicKey"))
    who = text(event.get("username")) or (f"API key {key}" if key else "") or "Atlas"
    entry = text(event.get("whitelistEntry"))     # the spec's one field for the entry an event adds or removes
    target = text(event.get("targetUsername") or event.get("targetPublicKey") or event.get("dbUserUsername")
                  or event.get("apiKeyId"))
    detail = " ".join(part for part in (entry, target) if part)
    return {"type": kind, "category": category(kind), "who": who, "when": text(event.get("created") or "?"),
            "from": text(event.get("remoteAddress")) or None, "detail": detail, "id": text(event.get("id")) or None,
            "whole_internet": bool(entry) and _whole_internet(entry)}


def unexpected_reason(described: dict[str, Any], expected: set[str]) -> str | None:
    """Why this change needs a person now, or None."""
    if described["whole_internet"]:
        return "access list opened to the whole internet"          # never "expected"
    if described["type"] in expected:
        return None
    if described["type"] in ACCESS_OPENED:
        return "access list opened"
    if described["type"] in NEW_API_KEY:
        return "new API key"
    if described["type"] in ROLE_RAISED:
        return "roles changed"
    return None


def _line(d: dict[str, Any]) -> str:
    detail = f" {d['detail']}" if d["detail"] else ""
    origin = f" from {d['from']}" if d.get("from") else ""
    return f"{d['type']}{detail} by {d['who']} at {d['when']}{origin}"


def judge_atlas_events(events: list[dict[str, Any]], expected: list[str], *, project: str,
                       runbook: str = RUNBOOK, org: str | None = None) -> CheckResult:
    """The week's Atlas project events (or, with `org`, that organisation's events): unexpected
    changes fail; the rest is summarised by category."""
    described = [describe_event(e) for e in events if isinstance(e, dict)]
    planned = set(expected)
    security = [d for d in described if d["category"] != "other"]
    unexpected = [(d, why) for d in security if (why := unexpected_reason(d, planned))]
    counts = {c: sum(1 for d in described if d["category"] == c)
              for c in ("access_list", "api_key", "database_user", "role", "failed_login", "other")}
    metrics = {"events": len(described), "unexpected": len(unexpected), **{f"{c}_events": n for c, n in counts.items()}}
    evidence = {"events": security[:200], "unexpected": [{**d, "why": why} for d, why in unexpected][:50],
                "other_types": sorted({d["type"] for d in described if d["category"] == "other"})[:50]}
    common = dict(check="security.logs.atlas_org" if org else "security.logs.atlas",
                  target=f"atlas-org:{org}" if org else f"atlas:{project}", group=GROUP, runbook=runbook,
                  provider="atlas", metrics=metrics, evidence=evidence)
    tally = ", ".join(f"{n} {c.replace('_', ' ')}" for c, n in counts.items() if n and c != "other")
    head = (f"Atlas organisation {org}" if org else "Atlas") + f": {len(described)} event(s) this week" \
        + (f" ({tally})" if tally else "")
    if unexpected:
        lines = "; ".join(f"{why}: {_line(d)}" for d, why in unexpected[:6])
        flagged = {id(d) for d, _ in unexpected}
        rest = [d for d in security if id(d) not in flagged]
        also = ("; also: " + "; ".join(_line(d) for d in rest[:6])) if rest else ""
        return CheckResult(status="fail", reason="unexpected_change", summary=f"{head}; UNEXPECTED: {lines}{also}",
                           **common)
    if security:
        lines = "; ".join(_line(d) for d in security[:6])
        return CheckResult(status="ok", critical=False, summary=f"{head}: {lines}", **common)
    return CheckResult(status="ok", critical=False, summary=f"{head}: no security-relevant change", **common)


# -- the application's admin audit log ----------------------------------------------------------------
def judge_admin_actions(by_user: list[dict[str, Any]], *, collection: str, runbook: str = RUNBOOK) -> CheckResult:
    """by_user: [{user, action, count, last}] from the aggregation, most active first."""
    by_user = [r for r in by_user if isinstance(r, dict)]
    total = sum(int(number(r.get("count"))) for r in by_user)
    users = sorted({text(r.get("user")) for r in by_user})
    per_user: dict[str, list[str]] = {}
    for row in by_user:
        per_user.setdefault(text(row.get("user")), []).append(f"{text(row.get('action'))} x{int(number(row.get('count')))}")
    lines = "; ".join(f"{user}: {', '.join(actions[:5])}" for user, actions in list(per_user.items())[:8])
    return CheckResult(check="security.logs.admin_actions", target=collection, group=GROUP, runbook=runbook,
                       status="ok", critical=False, metrics={"actions": total, "admins_active": len(users)},
                       evidence={"by_user_and_action": by_user[:200]},
                       summary=f"admin log: {total} action(s) by {len(users)} user(s) this week"
                               + (f": {lines}" if lines else ""))


def judge_role_changes(changes: list[dict[str, Any]], admin_roles: list[str], expected_admins: list[str], *,
                       collection: str, runbook: str = RUNBOOK) -> CheckResult:
    """changes: [{user, target, role, time}] oldest first. A role raised to an admin role for a user
    not in expected_admins fails."""
    admin = {r.lower() for r in admin_roles}
    planned = set(expected_admins)
    # The app may store the user or the role as an object ({id, email}) or a list: every name
    # it gives is compared, and it is shown by its names.
    changes = [c for c in changes if isinstance(c, dict)]

    def line(c: dict[str, Any]) -> str:
        when = f"{c['time']:%Y-%m-%d %H:%M} UTC" if isinstance(c.get("time"), datetime) else text(c.get("time"))
        return f"{text(c.get('target')) or '?'} made {text(c.get('role'))} by {text(c.get('user'))} at {when}"

    def to_admin(c: dict[str, Any]) -> bool:
        return any(name.lower() in admin for name in identities(c.get("role")))

    raised = [c for c in changes if to_admin(c) and not planned.intersection(identities(c.get("target")))]
    common = dict(check="security.logs.role_changes", target=collection, group=GROUP, runbook=runbook,
                  metrics={"role_changes": len(changes), "raised_to_admin": len(raised)},
                  evidence={"changes": [{**c, "time": text(c.get("time"))} for c in changes[:200]]})
    if raised:
        return CheckResult(status="fail", reason="unexpected_change", **common,
                           summary=f"admin log: {len(raised)} role(s) raised to admin unexpectedly: "
                                   + "; ".join(line(c) for c in raised[:6]))
    summary = f"admin log: {len(changes)} role change(s) this week"
    return CheckResult(status="ok", critical=False, **common,
                       summary=summary + (": " + "; ".join(line(c) for c in changes[:6]) if changes else ""))


def busy_windows(per_minute: list[dict[str, Any]], limit: int, span: timedelta = timedelta(hours=1),
                 ) -> tuple[int, list[dict[str, Any]]]:
    """(peak count in any `span`, the windows above `limit`): per_minute is [{minute, count, users}]
    oldest first. Overlapping windows above the limit are one burst: its extent, its largest count
    within `span` and every user name tried."""
    minutes = sorted((m for m in per_minute if isinstance(m, dict) and isinstance(m.get("minute"), datetime)),
                     key=lambda m: m["minute"])
    peak, found, left, total = 0, [], 0, 0
    for right, row in enumerate(minutes):
        total += int(number(row.get("count")))
        while row["minute"] - minutes[left]["minute"] >= span:
            total -= int(number(minutes[left].get("count")))
            left += 1
        peak = max(peak, total)
        if total <= limit:
            continue
        users = {text(u) for m in minutes[left:right + 1] for u in listed(m.get("users"))}
        if found and minutes[left]["minute"] <= found[-1]["last"]:    # the same burst, going on
            burst = found[-1]
            burst.update(last=row["minute"], count=max(burst["count"], total), users=sorted(set(burst["users"]) | users))
        else:
            found.append({"first": minutes[left]["minute"], "last": row["minute"], "count": total, "users": sorted(users)})
    return peak, found


def judge_failed_logins(per_minute: list[dict[str, Any]], total_logins: int, max_per_hour: int, *,
                        collection: str, runbook: str = RUNBOOK) -> CheckResult:
    """per_minute: [{minute, count, users}] of failed admin logins. More than max_per_hour within
    any 60 minutes fails, naming the window and the user names tried."""
    failed = sum(int(number(m.get("count"))) for m in per_minute if isinstance(m, dict))
    peak, over = busy_windows(per_minute, max_per_hour)
    common = dict(check="security.logs.failed_logins", target=collection, group=GROUP, runbook=runbook,
                  metrics={"failed_logins": failed, "logins": total_logins, "peak_per_hour": peak,
                           "windows_over_limit": len(over)},
                  evidence={"windows": [{**w, "first": w["first"].isoformat(), "last": w["last"].isoformat(),
                                         "users": w["users"][:20]} for w in over[:20]]})

    def line(w: dict[str, Any]) -> str:
        return (f"{w['count']} between {w['first']:%Y-%m-%d %H:%M} and {w['last']:%H:%M} UTC "
                f"({', '.join(w['users'][:5])})")

    if over:
        return CheckResult(status="fail", reason="failed_logins_rate", **common,
                           summary=f"admin log: more than {max_per_hour} failed admin logins within an hour, "
                                   f"{len(over)} time(s): " + "; ".join(line(w) for w in over[:5]))
    return CheckResult(status="ok", critical=False, **common,
                       summary=f"admin log: {failed} failed of {total_logins} admin login(s) this week "
                               f"(peak {peak} in an hour, limit {max_per_hour})")


def logs_summary(results: list[CheckResult], start: datetime, end: datetime) -> CheckResult:
    """The week's review in one digest item."""
    counted = [r for r in results if r.status != "skipped"]
    failing = [r for r in counted if r.status == "fail"]
    head = (f"Security logs {start:%Y-%m-%d} to {end:%Y-%m-%d}: " +
            (f"{len(failing)} unexpected finding(s)" if failing else "nothing unexpected"))
    lines = [head] + [f"• [{r.status}] {r.summary}" for r in sorted(counted, key=lambda r: r.status != "fail")]
    lines += [f"• [skipped] {r.check.removeprefix('security.logs.')}: {r.summary.removeprefix('skipped: ')}"
              for r in results if r.status == "skipped"]
    return CheckResult(check="security.logs.summary", group=GROUP, status="ok", critical=False, runbook=RUNBOOK,
                       summary="\n".join(lines)[:2800], metrics={"findings": len(failing), "reviewed": len(counted)},
                       evidence={"period": [start.isoformat(), end.isoformat()]})
