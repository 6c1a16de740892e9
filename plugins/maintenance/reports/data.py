"""The data of the status page and of the weekly and monthly reports: plain queries over the
results store (no Airflow), so they are fast to test and to benchmark.

Uptime accounting (stated in every report and on the status page, see ACCOUNTING):
- a stored result counts as down when its status is `fail` (a condition failed, or the probe
  failed); `ok` and `warn` count as up;
- results stored during a maintenance window and skipped results are not counted;
- every stored result counts once, including the re-checks made by task retries;
- an incident runs from its first failed result to the first passing one after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable

from maintenance.results import ResultsStore

ACCOUNTING = (
    "Uptime is the share of counted checks that passed. A check counts as down when any of its "
    "conditions fails or the probe itself fails (status fail); a warning counts as up. Results "
    "stored during a planned maintenance window, and skipped checks, are not counted. Every "
    "stored result counts once, including the re-checks made by task retries, so a failure that "
    "retries confirmed weighs once per try. An incident runs from its first failed check to the "
    "first passing one; its duration is the downtime. Days are UTC days."
)


@dataclass(frozen=True)
class Monitored:
    """A check shown on the status page and in the reports' uptime sections."""

    name: str
    critical: bool = True
    group: str = ""


def monitored(config: Any) -> list[Monitored]:
    return [Monitored(e.name, e.critical, e.group) for e in config.endpoints]


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def percent(up: int, counted: int) -> float | None:
    return 100.0 * up / counted if counted else None


def incident_view(incident: dict[str, Any], now: datetime, until: datetime | None = None) -> dict[str, Any]:
    """An incident with its duration (cut at `until`, the period's end, when it lasted beyond)."""
    end = incident["end"]
    stop = end or now
    if until is not None:
        stop = min(stop, until)
    return {**incident, "ongoing": end is None, "duration_s": max(0.0, (stop - incident["start"]).total_seconds())}


# -- the status page --------------------------------------------------------------------------------
_DAYS_CACHE: dict[tuple[str, date, tuple[str, ...]], tuple[Any, dict[str, dict[date, dict[str, Any]]]]] = {}


def _rolled_days(store: ResultsStore, first_day: date, names: list[str]) -> dict[str, dict[date, dict[str, Any]]]:
    """The rolled-up days of the checks, kept in this process until a day is rolled up (again):
    the page is reloaded every minute, its past days change once a day."""
    key = (store.url, first_day, tuple(names))
    marker = store.rollup_marker(first_day)
    cached = _DAYS_CACHE.get(key)
    if cached is not None and cached[0] == marker:
        return cached[1]
    by_day: dict[str, dict[date, dict[str, Any]]] = {n: {} for n in names}
    for row in store.daily(first_day, names, columns=("counted", "down", "maintenance", "p50_ms", "p95_ms")):
        by_day[row["check_name"]][row["day"]] = row
    if len(_DAYS_CACHE) > 16:
        _DAYS_CACHE.clear()
    _DAYS_CACHE[key] = (marker, by_day)
    return by_day

def status_page_data(store: ResultsStore, checks: list[Monitored], windows: Iterable[Any], *, now: datetime,
                     days: int = 90, incident_days: int = 14, max_incidents: int = 20) -> dict[str, Any]:
    """Everything the status page shows, from rollups (past days) and today's raw results.

    Cost: the rollups of finished days are made once; a request then reads at most
    days x checks rollup rows, two GROUP BY counts over today and the last 24 h, the latest
    result and two indexed look-ups per check, and the failures of the last incident_days.
    """
    today = now.date()
    first_day = today - timedelta(days=days - 1)
    store.roll_up(first_day, now)
    names = [c.name for c in checks]
    by_day = _rolled_days(store, first_day, names)
    live = store.live_counts({"today": day_start(today), "24h": now - timedelta(hours=24)}, names, now=now)
    today_counts, last_24h = live["today"], live["24h"]
    latest = store.current_states(names)
    live = today_details(store, names, now)
    day_list = [first_day + timedelta(days=i) for i in range(days)]
    first_results = _first_results(store, by_day, first_day, names)
    rows = []
    for check in checks:
        mine = by_day[check.name]
        now_counts = today_counts.get(check.name) or {}
        counts = [mine.get(day) or {} for day in day_list[:-1]] + [now_counts]
        counted = [c.get("counted", 0) for c in counts]
        down = [c.get("down", 0) for c in counts]
        bars = [{"day": day, "percent": percent(n - d, n), "down": d, "counted": n,
                 "maintenance": c.get("maintenance", 0)} for day, n, d, c in zip(day_list, counted, down, counts)]

        def window(n: int) -> float | None:
            total = sum(counted[-n:])
            return percent(total - sum(down[-n:]), total)

        h24 = last_24h.get(check.name) or {}
        last = latest.get(check.name)
        state = "unknown" if last is None else ("maintenance" if last["in_maintenance"] else
                                                 "skipped" if last["status"] == "skipped" else
                                                 last["state"] or "unknown")
        first = first_results.get(check.name)

        def partial(start: datetime, total: int) -> dict[str, Any] | None:
            # A window that began before the check's first result: say since when it counts.
            return {"since": first, "counted": total} if first is not None and first > start else None

        details = live.get(check.name) or {}
        rows.append({
            "name": check.name, "critical": check.critical, "group": check.group, "state": state,
            "last": last, "since": last["state_since"] if last else None,
            "uptime": {"24h": percent(h24.get("up", 0), h24.get("counted", 0)), "7d": window(7),
                       "30d": window(30), f"{days}d": window(days)},
            "partial": {"24h": partial(now - timedelta(hours=24), h24.get("counted", 0)),
                        **{f"{n}d": partial(day_start(day_list[-min(n, days)]), sum(counted[-n:])) for n in (7, 30, days)}},
            "response_ms": last["response_ms"] if last else None,
            "today_p95": details.get("p95_ms"), "tls_days_left": details.get("tls_days_left"),
            "bars": bars,
            "p95": [(day, c.get("p95_ms")) for day, c in zip(day_list[:-1], counts)],
            "p50": [(day, c.get("p50_ms")) for day, c in zip(day_list[:-1], counts)],
        })
    failing_critical = [r for r in rows if r["critical"] and r["state"] == "down"]
    endpoint_names = set(names)
    open_alerts = [a for a in store.open_alerts() if a["critical"] and a["check_name"] not in endpoint_names]
    incidents = [incident_view(i, now) for i in store.incidents(now - timedelta(days=incident_days), names,
                                                                 newest_failures=max_incidents * 20)]
    incidents.sort(key=lambda i: i["start"], reverse=True)
    windows = list(windows)
    current = [w for w in windows if w.start <= now < w.start + w.duration]
    upcoming = sorted((w for w in windows if w.start > now), key=lambda w: w.start)
    return {
        "now": now, "days": days, "day_list": day_list, "checks": rows,
        "banner": [{"name": r["name"], "since": r["since"], "summary": r["last"]["summary"]} for r in failing_critical]
        + [{"name": a["check_name"], "since": a["failing_since"], "summary": a["summary"]} for a in open_alerts],
        "incidents": incidents[:max_incidents], "incident_days": incident_days,
        "deploys": recent_deploys(store, now - timedelta(days=incident_days), max_incidents),
        "maintenance": {"current": current, "next": upcoming[0] if upcoming else None},
        "accounting": ACCOUNTING,
    }


_TODAY_CACHE: dict[tuple[str, date, tuple[str, ...]], dict[str, Any]] = {}
LATE_RESULT = timedelta(minutes=10)   # a result stored up to this long after it was made still counts today


def today_details(store: ResultsStore, names: list[str], now: datetime) -> dict[str, dict[str, Any]]:
    """Per check: the p95 of today's counted response times and the newest TLS certificate days
    left ({check: {"p95_ms", "samples", "tls_days_left"}}).

    Kept per process for the day: a request reads only the results made after the previous
    request's "settled" time (LATE_RESULT before it), not the whole day again (with 30-second
    samples, 144,000 rows a day for 50 checks).
    """
    from maintenance.results import _quantile   # the rollups' rank rule: today's p95 = a past day's

    key = (store.url, now.date(), tuple(names))
    entry = _TODAY_CACHE.get(key)
    if entry is None:
        if len(_TODAY_CACHE) > 16:
            _TODAY_CACHE.clear()
        entry = _TODAY_CACHE[key] = {"settled": day_start(now.date()) - timedelta(microseconds=1),
                                     "times": {n: [] for n in names}, "tls": {}}
    settle = now - LATE_RESULT
    fresh: dict[str, list[float]] = {}
    settled: set[str] = set()
    tls = dict(entry["tls"])
    for name, at, ms, days_left in store.live_samples(entry["settled"], names):
        if days_left is not None:
            tls[name] = days_left                       # oldest first: the newest wins
        if at <= settle:
            if ms is not None:
                entry["times"][name].append(ms)
                settled.add(name)
            if days_left is not None:
                entry["tls"][name] = days_left
        elif ms is not None:
            fresh.setdefault(name, []).append(ms)
    for name in settled:
        entry["times"][name].sort()
    entry["settled"] = max(entry["settled"], settle)
    found = {}
    for name in names:
        values = entry["times"][name]
        if fresh.get(name):
            values = sorted(values + fresh[name])
        if values or name in tls:
            found[name] = {"p95_ms": _quantile(values, 0.95), "samples": len(values), "tls_days_left": tls.get(name)}
    return found


_FIRST_CACHE: dict[tuple[str, str], datetime] = {}


def _first_results(store: ResultsStore, by_day: dict[str, dict[date, dict[str, Any]]], first_day: date,
                   names: list[str]) -> dict[str, datetime]:
    """When the checks without a rolled-up result on the page's first day were first checked: the
    page says "since 6 Dec, 7 checks" for a window that began before. Checks with the full history
    cost no query, and a first result, once found, is kept in the process (it does not change)."""
    newer = [n for n in names if first_day not in by_day[n]]
    unknown = [n for n in newer if (store.url, n) not in _FIRST_CACHE]
    if unknown:
        if len(_FIRST_CACHE) > 10_000:
            _FIRST_CACHE.clear()
        for name, first in store.first_checked(unknown).items():
            _FIRST_CACHE[(store.url, name)] = first
    return {n: _FIRST_CACHE[(store.url, n)] for n in newer if (store.url, n) in _FIRST_CACHE}


def check_facts(store: ResultsStore, name: str, now: datetime) -> dict[str, Any]:
    """A check's page header: the latest response time, today's p95, the TLS certificate's days left."""
    last = store.current_states([name]).get(name) or {}
    live = today_details(store, [name], now).get(name) or {}
    return {"response_ms": last.get("response_ms"), "checked_at": last.get("checked_at"),
            "today_p95": live.get("p95_ms"), "tls_days_left": live.get("tls_days_left")}

def recent_deploys(store: ResultsStore, since: datetime, limit: int) -> list[dict[str, Any]]:
    """post_deploy_verification's verdicts (issue 19), newest first: one indexed query."""
    from maintenance.checks.deploys import VERDICT_CHECK

    rows = store.history(check=VERDICT_CHECK, since=since)[::-1][:limit]
    return [{"uid": (r["evidence"] or {}).get("uid"), "url": r["target"], "sha": ((r["evidence"] or {}).get("sha")
                                                                                 or "")[:7],
             "verdict": (r["reason"] or r["status"]).replace("_", " "), "status": r["status"], "at": r["checked_at"],
             "summary": (r["summary"] or "").splitlines()[0]} for r in rows]


# -- the weekly and monthly reports ------------------------------------------------------------------
def report_period(kind: str, at: datetime) -> tuple[datetime, datetime, str]:
    """(start, end, label) of the report due at `at`: the 7 UTC days before it (weekly), or the
    calendar month before it (monthly)."""
    midnight = day_start(at.astimezone(timezone.utc).date())
    if kind == "weekly":
        start = midnight - timedelta(days=7)
        iso = start.isocalendar()
        return start, midnight, f"{iso.year}-W{iso.week:02d}"
    if kind == "monthly":
        end = midnight.replace(day=1)
        start = (end - timedelta(days=1)).replace(day=1)
        return start, end, f"{start:%Y-%m}"
    raise ValueError(f"unknown report kind {kind!r}")


def uptime_section(store: ResultsStore, checks: list[Monitored], start: datetime, end: datetime,
                   now: datetime, target_percent: float) -> dict[str, Any]:
    days = [(start + timedelta(days=i)).date() for i in range((end - start).days)]
    store.roll_up(days[0], now)
    names = [c.name for c in checks]
    rolled: dict[str, dict[date, dict[str, Any]]] = {n: {} for n in names}
    for row in store.daily(days[0], names):
        if row["day"] <= days[-1]:
            rolled[row["check_name"]][row["day"]] = row
    today = now.date()
    if days[0] <= today <= days[-1]:   # a period that includes today: today is counted live, not rolled up yet
        for name, counts in store.live_counts({"today": day_start(today)}, names, now=now)["today"].items():
            rolled[name][today] = {**counts, "p50_ms": None, "p95_ms": None}
    incidents = [incident_view(i, now, end) for i in store.incidents(start, names, until=end)]
    endpoints = []
    total_up = total_counted = total_maintenance = 0
    for check in checks:
        mine = [rolled[check.name].get(d) for d in days]
        counted = sum(r["counted"] for r in mine if r)
        up = sum(r["up"] for r in mine if r)
        maintenance = sum(r["maintenance"] for r in mine if r)
        total_up, total_counted, total_maintenance = total_up + up, total_counted + counted, total_maintenance + maintenance
        own = [i for i in incidents if i["check"] == check.name]
        closed = [i["duration_s"] for i in own if not i["ongoing"]]
        value = percent(up, counted)
        endpoints.append({
            "name": check.name, "critical": check.critical, "uptime_percent": value, "counted": counted,
            "down": counted - up, "maintenance": maintenance,
            "met": None if value is None else value >= target_percent,
            "days": [{"day": d, "percent": percent(r["up"], r["counted"]) if r else None,
                      "p50_ms": r["p50_ms"] if r else None, "p95_ms": r["p95_ms"] if r else None,
                      "down": r["down"] if r else 0} for d, r in zip(days, mine)],
            "incidents": own, "downtime_s": sum(i["duration_s"] for i in own),
            "longest_s": max((i["duration_s"] for i in own), default=0.0),
            "mttr_s": sum(closed) / len(closed) if closed else None,
        })
    overall = percent(total_up, total_counted)
    return {
        "days": days, "endpoints": endpoints, "incidents": sorted(incidents, key=lambda i: i["start"]),
        "overall_percent": overall, "target_percent": target_percent,
        "met": None if overall is None else overall >= target_percent,
        "downtime_s": sum(i["duration_s"] for i in incidents),
        "longest": max(incidents, key=lambda i: i["duration_s"]) if incidents else None,
        "maintenance_results": total_maintenance, "accounting": ACCOUNTING,
    }


def _per_day(rows: list[dict[str, Any]], days: list[date], metric: str, pick: str = "last") -> list[tuple[date, Any]]:
    values: dict[date, Any] = {}
    for row in rows:
        value = (row["metrics"] or {}).get(metric)
        if value is None:
            continue
        day = row["checked_at"].date()
        values[day] = value if pick == "last" or day not in values else max(values[day], value)
    return [(d, values.get(d)) for d in days]


def _latest_per_check(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:   # ordered by time
        latest[row["check_name"]] = row
    return sorted(latest.values(), key=lambda r: r["check_name"])


def _real(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results that checked something (not placeholders or unconfigured providers)."""
    return [r for r in rows if r["reason"] not in ("not_implemented", "not_configured")]


def errors_section(store: ResultsStore, start: datetime, end: datetime, days: list[date]) -> dict[str, Any] | None:
    rows = _real(store.group_results(["errors"], start, end))
    rate = [r for r in rows if r["check_name"] == "sentry.error_rate"]
    if not rate:
        return None
    per_day = _per_day(rate, days, "errors_24h")
    new = _per_day([r for r in rows if r["check_name"] == "sentry.new_issues"], days, "new_issues")
    fatal = [r for r in rows if r["check_name"] == "sentry.critical_errors" and r["status"] == "fail"]
    known = [v for _, v in per_day if v is not None]
    return {"per_day": per_day, "new_issues": new, "total": sum(known), "days_with_data": len(known),
            "fatal_days": len({r["checked_at"].date() for r in fatal}),
            "spikes": [r for r in rate if r["status"] == "fail"],
            # the days drawn red: an error-rate spike or a fatal issue (the others are normal days)
            "alert_days": sorted({r["checked_at"].date() for r in rate if r["status"] == "fail"}
                                 | {r["checked_at"].date() for r in fatal})}


CWV_LIMITS = {   # (good up to, poor above): web.dev thresholds at the 75th percentile
    "lcp": (2500, 4000), "inp": (200, 500), "cls": (0.1, 0.25), "fcp": (1800, 3000), "ttfb": (800, 1800),
}


def cwv_rating(metric: str, value: float | None) -> str | None:
    if value is None or metric not in CWV_LIMITS:
        return None
    good, poor = CWV_LIMITS[metric]
    return "good" if value <= good else "poor" if value > poor else "needs improvement"


def cwv_section(store: ResultsStore, start: datetime, end: datetime) -> dict[str, Any] | None:
    """Core Web Vitals stored by the performance checks: metrics named lcp/inp/cls (optionally
    with a _ms or _p75 suffix); the latest result of each such check in the period."""
    rows = _real(store.group_results(["performance"], start, end, prefixes=("cwv.",)))
    found = []
    for row in _latest_per_check(rows):
        values = {}
        for key, value in (row["metrics"] or {}).items():
            base = key.lower().removesuffix("_ms").removesuffix("_p75")
            if base in CWV_LIMITS and isinstance(value, (int, float)):
                values[base] = value
        if values:
            found.append({"check": row["check_name"], "target": row["target"], "at": row["checked_at"],
                          "values": {k: (v, cwv_rating(k, v)) for k, v in values.items()}})
    return {"pages": found} if found else None


VERIFICATION_CHECKS = ("atlas.restore_archive", "atlas.restore_counts")


def backups_section(store: ResultsStore, start: datetime, end: datetime, days: list[date],
                    now: datetime) -> dict[str, Any] | None:
    """Snapshot age per day of the period; the last verification and the failing backup checks
    up to now (the monthly run verifies just before its report)."""
    rows = _real(store.group_results(["backups"], start - timedelta(days=62), now))
    if not rows:
        return None
    in_period = [r for r in rows if start <= r["checked_at"] < end]
    recent = [r for r in rows if r["checked_at"] >= start]
    age = _per_day([r for r in in_period if r["check_name"] == "atlas.snapshot_age"], days, "age_hours", pick="max")
    limit = next(((r["metrics"] or {}).get("max_age_hours") for r in reversed(in_period)
                  if r["check_name"] == "atlas.snapshot_age"), None)
    verifications = [r for r in rows if r["check_name"] in VERIFICATION_CHECKS
                     or (r["check_name"].startswith("storage.") and r["check_name"].endswith((".checksums", ".restore")))]
    last = verifications[-1] if verifications else None
    failing = [r for r in _latest_per_check(recent) if r["status"] == "fail"]
    return {"age_per_day": age, "max_age_hours": limit, "last_verification": last,
            "verified": last is not None and last["status"] == "ok" and last["checked_at"] >= start - timedelta(days=31),
            "failing": failing, "checks": len({r["check_name"] for r in recent})}


SCAN_GROUPS = ("dependencies", "security")
PAGING_SEVERITIES = ("critical", "high")   # checks/dependencies.py PAGING: these, with a fix, fail a scan


def critical_finding(row: dict[str, Any]) -> bool:
    """Whether a scan's latest result has a critical finding in it now, whatever its status: a
    dependency scan fails only for what is new, and its known findings are still there."""
    if row["status"] == "fail":
        return True
    findings = (row.get("evidence") or {}).get("findings") or []
    return any(isinstance(f, dict) and f.get("severity") in PAGING_SEVERITIES and f.get("fixed_in")
               for f in findings)


def findings_section(store: ResultsStore, start: datetime, end: datetime) -> dict[str, Any]:
    """The newest result of each dependency and security check (and each audited credential)
    stored in the period; open: what it found is still there (fail or warn, or critical findings
    in its evidence). Without a scan in the period, `nothing_scanned` says so and why."""
    rows = store.group_results([*SCAN_GROUPS], start, end, prefixes=("audit.credentials.",))
    real = _real(rows)
    scans = [r for r in real if r["check_group"] in SCAN_GROUPS]
    latest = _latest_per_check(real)
    open_ = [r for r in latest if r["status"] in ("fail", "warn") or critical_finding(r)]
    unconfigured = not scans and any(r["reason"] == "not_configured" for r in rows if r["check_group"] in SCAN_GROUPS)
    return {"scanned": bool(scans), "nothing_scanned": None if scans else nothing_scanned(configured=not unconfigured),
            "checks": len(latest), "open": open_, "critical_open": [r for r in open_ if critical_finding(r)]}


def nothing_scanned(*, configured: bool) -> str:
    if not configured:
        return ("No dependency or security scan is configured, so nothing was scanned (add a dependencies: "
                "or security_scan: section to the maintenance config).")
    return "No dependency or security scan ran in this period, so nothing was scanned."


def analytics_section(store: ResultsStore, kind: str, start: datetime, end: datetime) -> dict[str, Any]:
    """The analytics results stored by this period's analytics tasks (check names analytics.<kind>.*)."""
    prefix = f"analytics.{kind}."
    rows = store.group_results([], end - timedelta(days=1), end + timedelta(days=3), prefixes=(prefix,))
    latest = {r["check_name"].removeprefix(prefix): r for r in _latest_per_check(rows)}
    return {"traffic": latest.get("traffic"), "app": {k: v for k, v in latest.items() if k != "traffic"}}


def report_data(store: ResultsStore, kind: str, *, checks: list[Monitored], site: str, now: datetime,
                at: datetime | None = None, target_percent: float = 99.5,
                windows: Iterable[Any] = ()) -> dict[str, Any]:
    """All sections of one report. A section without data is None (the template says so)."""
    start, end, label = report_period(kind, at or now)
    uptime = uptime_section(store, checks, start, end, now, target_percent)
    days = uptime["days"]
    data = {
        "kind": kind, "site": site, "label": label, "start": start, "end": end, "generated_at": now,
        "uptime": uptime, "errors": errors_section(store, start, end, days),
        # Web Vitals and backup verification: their state when the report is made; findings:
        # the newest scans of the period (a finding first seen after it is not in it)
        "cwv": cwv_section(store, start, now), "backups": backups_section(store, start, end, days, now),
        "findings": findings_section(store, start, end), "analytics": analytics_section(store, kind, start, end),
        "windows": [w for w in windows if w.start < end and w.start + w.duration > start],
        "deploys": [d for d in recent_deploys(store, start, 1000) if d["at"] < end],   # issue 19: chart marks
    }
    data["summary"] = director_summary(data)
    return data


def director_summary(data: dict[str, Any]) -> str:
    """One paragraph a director can read: uptime against the target, incidents, backups, findings."""
    from maintenance.durations import format_duration

    up = data["uptime"]
    period = f"{data['start']:%B %Y}" if data["kind"] == "monthly" else \
        f"the week of {data['start']:%d %B} to {(data['end'] - timedelta(days=1)):%d %B %Y}"
    parts = []
    if up["overall_percent"] is None:
        parts.append(f"In {period} no uptime results were stored, so availability cannot be stated.")
    else:
        verdict = "met" if up["met"] else "missed"
        parts.append(f"In {period} the site was available {up['overall_percent']:.2f}% of the time across "
                     f"{len(up['endpoints'])} monitored endpoint(s), against a target of "
                     f"{up['target_percent']:g}%: the target was {verdict}.")
    incidents = up["incidents"]
    if incidents:
        longest = up["longest"]
        parts.append(f"There were {len(incidents)} incident(s) with {format_duration(up['downtime_s'])} of downtime "
                     f"in total; the longest lasted {format_duration(longest['duration_s'])} "
                     f"({longest['check']}, {longest['reason'] or 'failure'}).")
    else:
        parts.append("There were no incidents.")
    backups = data["backups"]
    last = backups and backups["last_verification"]
    if backups is None:
        parts.append("No backup checks are configured, so backups are unverified.")
    elif backups["verified"]:
        parts.append(f"Backups were verified by a restore test on {last['checked_at']:%d %B %Y}.")
    elif last is not None:
        parts.append(f"The last backup verification ({last['checked_at']:%d %B %Y}) did not pass: "
                     f"{last['summary']}.")
    else:
        parts.append("No backup restore test ran in the period: backups are not verified.")
    findings = data["findings"]
    if findings["critical_open"]:
        names = ", ".join(r["check_name"] for r in findings["critical_open"][:5])
        parts.append(f"{len(findings['critical_open'])} critical finding(s) remain open ({names}).")
    if not findings["scanned"]:
        parts.append(findings["nothing_scanned"])
    elif not findings["critical_open"]:
        parts.append("No critical security or dependency finding is open.")
    return " ".join(parts)

