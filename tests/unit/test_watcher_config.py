"""uptime.watch_interval (issue 16): default 30 s, 0 turns the watcher off, 10 s to 1 h otherwise;
the DAG file reads it at parse time through parse_settings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from maintenance.config import ConfigError, load_config
from maintenance.parse_settings import settings_of

BASE = 'site: {name: t, url: "https://example.org"}\n'


def load(tmp_path, extra: str):
    path = tmp_path / "maintenance.yaml"
    path.write_text(BASE + extra)
    return load_config(path)


def test_default_and_off(tmp_path):
    assert load(tmp_path, "").uptime.watch_interval == timedelta(seconds=30)
    off = load(tmp_path, "uptime: {watch_interval: 0s}\n")
    assert off.uptime.watch_interval == timedelta(0)
    assert settings_of(off)["watch_interval_s"] == 0.0
    assert settings_of(load(tmp_path, "uptime: {watch_interval: 1m}\n"))["watch_interval_s"] == 60.0


@pytest.mark.parametrize("value", ["5s", "2h", "-30s"])
def test_out_of_range_names_the_key(tmp_path, value):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, f"uptime: {{watch_interval: {value}}}\n")
    assert "watch_interval" in str(error.value)


def test_the_schedule_follows_the_interval():
    from airflow.sdk import AssetOrTimeSchedule

    from maintenance.triggers.uptime_watch import uptime_schedule

    assert uptime_schedule("*/5 * * * *", 0) == "*/5 * * * *"
    schedule = uptime_schedule("*/5 * * * *", 45.0)
    assert isinstance(schedule, AssetOrTimeSchedule)
    (asset,) = schedule.asset_condition.objects
    assert asset.watchers[0].trigger.serialize()[1] == {"interval": 45.0, "groups": []}


def test_a_parse_settings_file_from_before_the_watcher_is_not_trusted(tmp_path, monkeypatch):
    """An upgrade keeps the old cache file (same config file): its missing watch_interval_s must
    not turn a watcher the config switched off (0) back on."""
    import json

    from maintenance import parse_settings

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    config = tmp_path / "maintenance.yaml"
    config.write_text(BASE + "uptime: {watch_interval: 0s}\n")
    monkeypatch.setenv("MAINTENANCE_CONFIG", str(config))
    old = {"owner": "o", "retries": 2, "retry_delay_s": 0.0, "late_after_s": {}}
    parse_settings.save(config, parse_settings.file_key(config), old)
    assert "watch_interval_s" not in json.loads(parse_settings.cache_path(config).read_text())
    assert parse_settings.dag_defaults()["watch_interval_s"] == 0.0
