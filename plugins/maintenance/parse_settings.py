"""What a DAG file needs from the config at parse time, without loading the config.

The DAG processor parses every file in a fresh process, often: validating the YAML with
pydantic there would cost more than the DAG itself. get_config() (config.py) writes the few
values DAG files use (owner, retries, retry delay, deadlines) to a small JSON file beside
Airflow's state, keyed by the config file's mtime and size; dag_defaults() reads it, and
only when it is missing or stale falls back to get_config(), which writes it anew.

This module imports nothing of ours and nothing heavy: keep it that way.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG_PATH = "include/config/maintenance.yaml"


def config_path() -> Path:
    path = Path(os.environ.get("MAINTENANCE_CONFIG", DEFAULT_CONFIG_PATH))
    return path if path.is_absolute() or path.exists() else PROJECT_ROOT / path


def file_key(path: Path) -> list[float]:
    """What identifies one version of the config file (a changed file has a new key)."""
    try:
        stat = path.stat()
    except OSError:
        return [0.0, -1]
    return [stat.st_mtime, stat.st_size]


def airflow_home() -> Path:
    """Where Airflow keeps its state ($AIRFLOW_HOME, Airflow's default ~/airflow): ours goes beside it."""
    return Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))


def cache_path(path: Path) -> Path:
    return airflow_home() / f"{path.stem}.parse_settings.json"


def save(path: Path, key: list[float], settings: dict[str, Any]) -> None:
    """Called by get_config() after each load (valid, or the last valid one it fell back to)."""
    target = cache_path(path)
    data = json.dumps({"path": str(path), "key": key, **settings})
    try:
        if target.exists() and target.read_text() == data:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(data)
        tmp.replace(target)   # atomic: parallel parsers never read half a file
    except OSError:
        pass   # a read-only home only costs the slow path


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(cache_path(path).read_text())
    except (OSError, ValueError):
        return None
    if "vercel_watch_interval_s" not in data:   # written by an older version: stale
        return None
    return data if data.get("path") == str(path) and data.get("key") == file_key(path) else None


def dag_defaults() -> dict[str, Any]:
    """{"owner", "retries", "retry_delay" (timedelta), "late_after" {dag_id: timedelta}, "watch_interval_s",
    "vercel_watch_interval_s"}."""
    path = config_path()
    data = _read(path)
    if data is None or "watch_interval_s" not in data or "vercel_watch_interval_s" not in data:   # missing or stale
        from maintenance.config import get_config   # the slow path, once per config version

        config = get_config()   # writes the file anew (unless the home is read-only)
        data = _read(path) or settings_of(config)
    return {"owner": data["owner"], "retries": data["retries"],
            "retry_delay": timedelta(seconds=data["retry_delay_s"]),
            "late_after": {dag: timedelta(seconds=s) for dag, s in data["late_after_s"].items()},
            "watch_interval_s": data["watch_interval_s"],
            "vercel_watch_interval_s": data["vercel_watch_interval_s"]}


def settings_of(config: Any) -> dict[str, Any]:
    """The parse-time values of a loaded MaintenanceConfig."""
    from maintenance.config import Heartbeat

    heartbeat = config.heartbeat or Heartbeat()
    return {"owner": config.tasks.owner, "retries": config.tasks.retries,
            "retry_delay_s": config.tasks.retry_delay.total_seconds(),
            "late_after_s": {dag: d.total_seconds() for dag, d in heartbeat.late_after.items()},
            "watch_interval_s": config.uptime.watch_interval.total_seconds(),
            # issue 19: 0 when there is no (enabled) vercel section: no deployments watcher
            "vercel_watch_interval_s": config.vercel.watch_interval.total_seconds()
            if config.vercel is not None and config.vercel.enabled else 0.0}
