"""Generated history for the reports, the status page and their benchmark.

`uptime_rows()` makes 5-minute results per check over N days (latency noise, a few outages
and blips, some results inside a maintenance window); `load()` writes them fast through the
driver (executemany on SQLite, COPY on Postgres). `daily_family_results()` adds a month of the daily/weekly check
families the reports read (Sentry, backups, Core Web Vitals, findings).
"""

from __future__ import annotations

import io
import itertools
import random
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from maintenance.results import CheckResult, ResultsStore, check_results


_COLUMNS = ("checked_at", "check_name", "target", "check_group", "status", "summary", "reason", "metrics",
            "evidence", "runbook", "provider", "critical", "in_maintenance", "dag_id", "run_id", "task_id",
            "try_number")


def uptime_rows(checks: list[str], *, days: int, now: datetime, interval_min: int = 5, seed: int = 7,
                outages: int = 2, maintenance: tuple[datetime, datetime] | None = None,
                critical: set[str] | None = None, stamp: Any = None,
                blip_rate: float = 0.002, maintenance_checks: set[str] | None = None,
                ) -> Iterator[tuple[Any, ...]]:
    """Rows (tuples in _COLUMNS order; metrics and evidence as JSON text) of 5-minute results.

    Each check has up to `outages` outages of 10-90 minutes, 0.2 % single failed checks
    (blips), 1 % warnings, and log-normal response times around its own base latency.
    `stamp` turns each time into what the database driver takes (default: the datetime).
    """
    rng = random.Random(seed)
    noise = [rng.lognormvariate(0, 0.35) for _ in range(4099)]
    start = now - timedelta(days=days)
    steps = int(days * 24 * 60 / interval_min)
    times = [start + timedelta(minutes=interval_min * step) for step in range(steps)]
    stamps = [stamp(t) for t in times] if stamp else times
    quiet = [bool(maintenance and maintenance[0] <= t < maintenance[1]) for t in times]
    runs = [f"scheduled__{t:%Y%m%dT%H%M}" for t in times]
    reasons = ("timeout", "http_5xx", "condition", "refused")
    for index, name in enumerate(checks):
        base = 80 + 40 * (index % 7)
        down = bytearray(steps)
        for _ in range(rng.randint(0, outages)):
            first = rng.randrange(steps)
            last = min(steps, first + rng.randint(2, 18))
            down[first:last] = b"\x01" * (last - first)
        target, group = f"https://example.org/{name}", "homepage" if index == 0 else "api"
        is_critical = critical is None or name in critical
        quiet_here = quiet if maintenance_checks is None or name in maintenance_checks else [False] * steps
        ok_summary, warn_summary = f"{name}: ok", f"{name}: warn"
        draws = [rng.random() for _ in range(steps)]
        for step in range(steps):
            draw = draws[step]
            blip = draw < blip_rate
            if down[step] or blip:
                status = "fail"
                reason = reasons[(step + index) % 4]
                summary = f"{name}: {reason}"
                metrics = f'{{"response_ms": {round(noise[(step * 7 + index) % 4099] * base, 1)}, "status_code": 503}}' \
                    if blip else '{"response_ms": null, "status_code": null}'
            else:
                status, reason = ("warn", None) if draw > 0.99 else ("ok", None)
                summary = warn_summary if status == "warn" else ok_summary
                metrics = f'{{"response_ms": {round(noise[(step * 7 + index) % 4099] * base, 1)}, "status_code": 200}}'
            yield (stamps[step], name, target, group, status, summary, reason, metrics, "{}", "uptime_monitor",
                   "vercel", is_critical, quiet_here[step], "uptime_monitor", runs[step], "check_endpoints", 1)


def load(store: ResultsStore, rows: Iterator[tuple[Any, ...]], rebuild_indexes: bool = False) -> int:
    """Bulk-write generated rows through the driver (a fixture and benchmark loader: the DAGs
    write with ResultsStore.record). Rows must come from uptime_rows(stamp=stamp_for(store)).
    rebuild_indexes: drop check_results' indexes first and build them after (millions of rows)."""
    if rebuild_indexes:
        for index in check_results.indexes:
            index.drop(store.engine, checkfirst=True)
        try:
            return load(store, rows)
        finally:
            for index in check_results.indexes:
                index.create(store.engine, checkfirst=True)
    if store.engine.dialect.name == "postgresql":
        return _copy_postgres(store, rows)
    raw = store.engine.raw_connection()
    total = 0
    try:
        cursor = raw.cursor()
        sql = f"INSERT INTO check_results ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
        while True:
            chunk = list(itertools.islice(rows, 50000))
            if not chunk:
                break
            # The store's connections run in autocommit (it issues BEGIN itself): one
            # transaction per chunk, not one per row.
            cursor.execute("BEGIN")
            cursor.executemany(sql, chunk)
            cursor.execute("COMMIT")
            total += len(chunk)
        # No ANALYZE: a production SQLite store never gets one, so the plans measured are its plans.
    finally:
        raw.close()
    return total


def stamp_for(store: ResultsStore) -> Any:
    """How the store's driver wants a time: SQLAlchemy's SQLite text format, or ISO for COPY."""
    if store.engine.dialect.name == "postgresql":
        return lambda t: t.isoformat()
    return lambda t: t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _pg(value: Any) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _copy_postgres(store: ResultsStore, rows: Iterator[tuple[Any, ...]]) -> int:
    total = 0
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        while True:
            chunk = list(itertools.islice(rows, 50000))
            if not chunk:
                break
            buffer = io.StringIO("".join("\t".join(map(_pg, row)) + "\n" for row in chunk))
            cursor.copy_expert(f"COPY check_results ({', '.join(_COLUMNS)}) FROM STDIN", buffer)
            total += len(chunk)
        raw.commit()
        cursor.execute("ANALYZE check_results")
        raw.commit()
    finally:
        raw.close()
    return total


def daily_family_results(*, days: int, now: datetime, seed: int = 3) -> list[CheckResult]:
    """A month of the other check families, as their operators store them."""
    rng = random.Random(seed)
    results: list[CheckResult] = []
    for back in range(days, 0, -1):
        at = (now - timedelta(days=back)).replace(hour=3, minute=0, second=0, microsecond=0)
        hourly = [rng.randint(5, 40) for _ in range(24)]
        if back == 9:
            hourly[-2] = 400
        results.append(CheckResult(check="sentry.error_rate", group="errors", status="fail" if back == 9 else "ok",
                                   summary="errors", metrics={"errors_last_hour": hourly[-2], "errors_24h": sum(hourly),
                                                              "median_errors_per_hour": 20}, time=at))
        results.append(CheckResult(check="sentry.new_issues", group="errors", status="ok", summary="new",
                                   metrics={"new_issues": rng.randint(0, 4)}, time=at))
        age = 30.5 if back == 12 else round(rng.uniform(2, 20), 2)
        results.append(CheckResult(check="atlas.snapshot_age", group="backups", status="fail" if age > 26 else "ok",
                                   summary=f"snapshot {age} h old", time=at,
                                   metrics={"age_hours": age, "max_age_hours": 26}))
    results.append(CheckResult(check="atlas.restore_archive", group="backups", status="ok", time=now - timedelta(days=5),
                               summary="restore archive of snapshot s-1 verified: 12 collections"))
    results.append(CheckResult(check="cwv.homepage", group="performance", status="ok", target="https://example.org/",
                               summary="CWV", time=now - timedelta(days=2),
                               metrics={"lcp_ms": 2100, "inp_ms": 260, "cls": 0.05}))
    results.append(CheckResult(check="security.headers", group="security", status="fail", reason="missing_header",
                               summary="Content-Security-Policy missing on https://example.org/",
                               time=now - timedelta(days=3)))
    results.append(CheckResult(check="dependencies.pip_audit", group="dependencies", status="warn",
                               summary="2 outdated packages", time=now - timedelta(days=3)))
    return results


UTC = timezone.utc
