"""Where a rendered report goes: a folder, or a bucket through a boto3 client (the operator
gets it from S3Hook); its link for Slack; the retention pruning of old reports; and the listing
and reading the status-page app serves them with. No Airflow here: the S3 functions take the client.

Links (issue 17): `reports.link_base` + name when the folder or bucket is served elsewhere (an R2
public domain, a web server); otherwise the status-page app in the Airflow UI, which serves the
reports behind Airflow's login from wherever they are published. Never a file:/// path: nobody
can open one from Slack."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

KINDS = ("weekly", "monthly")
STATUS_APP_PREFIX = "/maintenance-status"       # where the API server mounts the status-page app
REPORT_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*\.html$")   # report_name()'s file part; no path


@dataclass
class Published:
    location: str        # path or s3://bucket/key
    link: str            # what Slack shows: link_base + name, else the location
    name: str            # relative name: <kind>/<file>.html
    size: int


def reports_folder(settings: Any) -> Path:
    """The folder of `reports:` (config.Reports): its `folder`, else $AIRFLOW_HOME/reports."""
    if settings.folder:
        return Path(settings.folder)
    from maintenance.parse_settings import airflow_home

    return airflow_home() / "reports"


def report_name(site: str, kind: str, label: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", site).strip("-") or "site"
    return f"{kind}/{slug}-{kind}-{label}.html"


def status_app_url(ui_base: str) -> str:
    return f"{ui_base.rstrip('/')}{STATUS_APP_PREFIX}"


def link_for(name: str, link_base: str | None, ui_base: str) -> str:
    """The report's link in Slack: under link_base when set, else the status-page app's URL."""
    if link_base:
        return f"{link_base.rstrip('/')}/{name}"
    return f"{status_app_url(ui_base)}/reports/{name}"


def write_file(path: Path, content: str) -> int:
    """Write atomically (readers never see half a page); the size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".part")
    temporary.write_text(content, encoding="utf-8")
    temporary.replace(path)
    return path.stat().st_size


def write_folder(folder: Path, name: str, html: str, link_base: str | None = None,
                 ui_base: str = "http://localhost:8080") -> Published:
    path = folder / name
    size = write_file(path, html)
    return Published(str(path), link_for(name, link_base, ui_base), name, size)


def prune_folder(folder: Path, retention: timedelta, now: datetime) -> list[str]:
    """Delete the reports (only <kind>/*.html) last written before now - retention."""
    cutoff = (now - retention).timestamp()
    removed = []
    for kind in KINDS:
        for path in sorted((folder / kind).glob("*.html")) if (folder / kind).is_dir() else []:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(f"{kind}/{path.name}")
    return removed


def upload_s3(client: Any, bucket: str, prefix: str, name: str, html: str, link_base: str | None = None,
              ui_base: str = "http://localhost:8080") -> Published:
    key = f"{prefix}{name}"
    size = put_html(client, bucket, key, html)
    return Published(f"s3://{bucket}/{key}", link_for(name, link_base, ui_base), name, size)


def put_html(client: Any, bucket: str, key: str, html: str) -> int:
    body = html.encode("utf-8")
    client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/html; charset=utf-8",
                      CacheControl="no-cache")
    return len(body)


# -- what the status-page app lists and serves ------------------------------------------------------
def valid_report(kind: str, file: str) -> bool:
    return kind in KINDS and REPORT_FILE.match(file) is not None


def list_folder(folder: Path) -> list[dict[str, Any]]:
    """The reports in a folder, newest first: kind, name (<kind>/<file>), size, written_at."""
    found = []
    for kind in KINDS:
        for path in (folder / kind).glob("*.html") if (folder / kind).is_dir() else []:
            if valid_report(kind, path.name):
                stat = path.stat()
                found.append({"kind": kind, "name": f"{kind}/{path.name}", "size": stat.st_size,
                              "written_at": datetime.fromtimestamp(stat.st_mtime, timezone.utc)})
    return sorted(found, key=lambda r: r["written_at"], reverse=True)


def read_folder(folder: Path, kind: str, file: str) -> str | None:
    if not valid_report(kind, file):
        return None
    path = folder / kind / file
    return path.read_text(encoding="utf-8") if path.is_file() else None


def list_s3(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    found = []
    paginator = client.get_paginator("list_objects_v2")
    for kind in KINDS:
        for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}{kind}/"):
            for entry in page.get("Contents", []):
                file = entry["Key"].removeprefix(f"{prefix}{kind}/")
                if valid_report(kind, file):
                    found.append({"kind": kind, "name": f"{kind}/{file}", "size": entry["Size"],
                                  "written_at": entry["LastModified"].astimezone(timezone.utc)})
    return sorted(found, key=lambda r: r["written_at"], reverse=True)


def read_s3(client: Any, bucket: str, prefix: str, kind: str, file: str) -> str | None:
    if not valid_report(kind, file):
        return None
    try:
        return client.get_object(Bucket=bucket, Key=f"{prefix}{kind}/{file}")["Body"].read().decode("utf-8")
    except client.exceptions.NoSuchKey:
        return None


def prune_s3(client: Any, bucket: str, prefix: str, retention: timedelta, now: datetime) -> list[str]:
    cutoff = now - retention
    removed = []
    for kind in KINDS:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}{kind}/"):
            old = [o["Key"] for o in page.get("Contents", [])
                   if o["Key"].endswith(".html") and o["LastModified"].astimezone(timezone.utc) < cutoff]
            if old:
                client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in old], "Quiet": True})
                removed.extend(old)
    return removed
