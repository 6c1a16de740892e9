"""Where a rendered report goes: a folder, or a bucket through a boto3 client (the operator
gets it from S3Hook); its link for Slack; and the retention pruning of old reports.
No Airflow here: the S3 functions take the client."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

KINDS = ("weekly", "monthly")


@dataclass
class Published:
    location: str        # path or s3://bucket/key
    link: str            # what Slack shows: link_base + name, else the location
    name: str            # relative name: <kind>/<file>.html
    size: int


def report_name(site: str, kind: str, label: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", site).strip("-") or "site"
    return f"{kind}/{slug}-{kind}-{label}.html"


def link_for(name: str, location: str, link_base: str | None) -> str:
    return f"{link_base.rstrip('/')}/{name}" if link_base else location


def write_folder(folder: Path, name: str, html: str, link_base: str | None = None) -> Published:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".html.part")
    temporary.write_text(html, encoding="utf-8")
    temporary.replace(path)          # readers never see half a report
    return Published(str(path), link_for(name, path.resolve().as_uri(), link_base), name, path.stat().st_size)


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


def upload_s3(client: Any, bucket: str, prefix: str, name: str, html: str, link_base: str | None = None) -> Published:
    key = f"{prefix}{name}"
    body = html.encode("utf-8")
    client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/html; charset=utf-8",
                      CacheControl="no-cache")
    location = f"s3://{bucket}/{key}"
    return Published(location, link_for(name, location, link_base), name, len(body))


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
