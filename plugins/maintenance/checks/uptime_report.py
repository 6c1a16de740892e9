"""Uptime % and incidents per endpoint from stored results (maintenance_daily)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from maintenance.durations import format_duration
from maintenance.results import CheckResult


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def incidents(rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Runs of consecutive failures: start, end (None while ongoing), duration, reason."""
    found: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for row in rows:
        if row["status"] == "fail":
            if current is None:
                current = {"start": row["checked_at"], "end": None, "reason": row["reason"],
                           "summary": row["summary"], "checks": 0}
            current["checks"] += 1
        elif current is not None:
            current["end"] = row["checked_at"]
            found.append(current)
            current = None
    if current is not None:
        found.append(current)
    for incident in found:
        incident["duration_s"] = ((incident["end"] or now) - incident["start"]).total_seconds()
    return found


def uptime_report(rows: list[dict[str, Any]], endpoints: list[str], *, now: datetime,
                  target_percent: float = 99.5) -> list[CheckResult]:
    """One result per endpoint: uptime % over the rows given (results in maintenance windows
    and skipped ones do not count), p95 response time, and the incidents."""
    results = []
    for name in endpoints:
        mine = [r for r in rows if r["check_name"] == name and r["status"] != "skipped" and not r["in_maintenance"]]
        check = f"uptime_24h.{name}"
        if not mine:
            results.append(CheckResult(check=check, group="uptime", status="warn", reason="no_data",
                                       summary=f"{name}: no results in the period (is uptime_monitor running?)",
                                       runbook="uptime_monitor"))
            continue
        up = sum(1 for r in mine if r["status"] in ("ok", "warn"))
        percent = 100.0 * up / len(mine)
        times = [r["metrics"].get("response_ms") for r in mine if r["metrics"].get("response_ms") is not None]
        p95 = percentile(times, 95)
        found = incidents(mine, now)
        described = [
            f"{i['start']:%H:%M}-{i['end']:%H:%M} ({format_duration(i['duration_s'])}, {i['reason']})" if i["end"]
            else f"since {i['start']:%H:%M} ({format_duration(i['duration_s'])}, {i['reason']}, ongoing)"
            for i in found
        ]
        summary = f"{name}: {percent:.2f}% up over {len(mine)} checks"
        if p95 is not None:
            summary += f", p95 {p95:.0f} ms"
        summary += f"; {len(found)} incident(s)" + (": " + "; ".join(described) if described else "")
        results.append(CheckResult(
            check=check, group="uptime", status="ok" if percent >= target_percent else "warn",
            reason=None if percent >= target_percent else "below_target", summary=summary,
            metrics={"uptime_percent": round(percent, 3), "p95_response_ms": p95, "checks": len(mine),
                     "incidents": len(found)},
            evidence={"incidents": [{**i, "start": i["start"].isoformat(),
                                     "end": i["end"].isoformat() if i["end"] else None} for i in found]},
            runbook="uptime_monitor",
        ))
    return results
