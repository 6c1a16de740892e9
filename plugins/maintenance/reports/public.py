"""The opt-in public status page (issue 17): one static, self-contained HTML file for members and
donors, written after each uptime_monitor run to a folder or s3://bucket/prefix.

What it may show is built field by field from the status page's data (public_view), never by
removing fields: only the listed checks, their state, uptime and daily bars, incident times and
durations, and planned maintenance times. No target URL, summary, reason, evidence, maintenance
reason or link to the Airflow UI can reach it. No Airflow here: the S3 client is passed in.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from maintenance.durations import format_duration
from maintenance.reports import publish
from maintenance.reports.data import Monitored, status_page_data
from maintenance.results import ResultsStore

PAGE_NAME = "index.html"
PUBLIC_STATES = {"up": "Operational", "down": "Down", "maintenance": "Maintenance", "unknown": "No data yet",
                 "skipped": "No data yet"}


def public_view(data: dict[str, Any], title: str, checked_every: str = "5m") -> dict[str, Any]:
    """The public subset of status_page_data(): a new dict of allowed fields only. checked_every:
    how often the endpoints are checked (the uptime watcher's interval, else the 5-minute run)."""
    checks = [{
        "name": c["name"], "state": c["state"] if c["state"] in ("up", "down", "maintenance") else "unknown",
        "label": PUBLIC_STATES.get(c["state"], "No data yet"),
        "since": c["since"] if c["state"] in ("up", "down") else None,
        "uptime": {key: c["uptime"][key] for key in ("24h", "7d", "30d", f"{data['days']}d")},
        "partial": {key: {"since": p["since"], "counted": p["counted"]} if p else None
                    for key, p in c["partial"].items()},
        "bars": [{"day": b["day"], "percent": b["percent"], "counted": b["counted"], "down": b["down"]}
                 for b in c["bars"]],
    } for c in data["checks"]]
    names = {c["name"] for c in checks}
    incidents = [{"check": i["check"], "start": i["start"], "end": i["end"], "ongoing": i["ongoing"],
                  "duration_s": i["duration_s"]} for i in data["incidents"] if i["check"] in names]
    windows = [{"start": w.start, "end": w.start + w.duration}
               for w in [*data["maintenance"]["current"], *([data["maintenance"]["next"]]
                                                             if data["maintenance"]["next"] else [])]
               if not w.endpoints or names & set(w.endpoints)]
    down = [c["name"] for c in checks if c["state"] == "down"]
    return {"title": title, "now": data["now"], "days": data["days"], "checks": checks, "incidents": incidents,
            "incident_days": data["incident_days"], "maintenance": windows, "down": down,
            "checked_every": checked_every}


def public_page(store: ResultsStore, config: Any, now: datetime) -> str:
    from maintenance.reports.render import render_public_page

    settings = config.status_page.public
    by_name = {e.name: e for e in config.endpoints}
    checks = [Monitored(n, by_name[n].critical, by_name[n].group) for n in settings.checks if n in by_name]
    data = status_page_data(store, checks, config.maintenance_windows, now=now, days=90)
    watch = config.uptime.watch_interval.total_seconds()
    return render_public_page(public_view(data, settings.title or config.site.name,
                                          format_duration(watch) if watch else "5m"))


def bucket_and_prefix(publish_to: str) -> tuple[str, str]:
    bucket, _, prefix = publish_to.removeprefix("s3://").partition("/")
    return bucket, (prefix.rstrip("/") + "/") if prefix.strip("/") else ""


def storage_conn_id(config: Any, bucket: str) -> str:
    """status_page.public.conn_id, else the connection of that bucket in storage.buckets, else aws_default."""
    settings = config.status_page.public
    if settings.conn_id:
        return settings.conn_id
    known = {b.name: b.conn_id for b in (config.storage.buckets if config.storage else [])}
    return known.get(bucket, "aws_default")


def write_public_page(html: str, publish_to: str, client: Any = None) -> str:
    """Write the page to the folder (index.html) or to s3://bucket/prefix/index.html; its location."""
    if publish_to.startswith("s3://"):
        bucket, prefix = bucket_and_prefix(publish_to)
        publish.put_html(client, bucket, f"{prefix}{PAGE_NAME}", html)
        return f"s3://{bucket}/{prefix}{PAGE_NAME}"
    path = Path(publish_to) / PAGE_NAME
    publish.write_file(path, html)
    return str(path)
