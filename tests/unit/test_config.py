"""Config: the example validates; malformed files fail naming the file and the key."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tracemalloc
import types
import typing
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import annotated_types
import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from maintenance import config as config_module
from maintenance.config import ConfigError, MaintenanceConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "include" / "config" / "maintenance.yaml"
MINIMAL = """
site: {name: t, url: "https://t.example"}
endpoints:
  - {name: home, url: "https://t.example/", conditions: ["[STATUS] == 200"]}
"""


def test_the_example_config_is_valid_and_complete():
    config = load_config(EXAMPLE)
    assert config.site.name == "example.org"
    assert {e.group for e in config.endpoints} == {"homepage", "api", "admin", "payments"}
    assert config.alerting.failure_threshold == 2 and config.alerting.renotify_after.total_seconds() == 4 * 3600
    assert config.maintenance_windows and config.contacts["atlas"].status_page


def test_minimal_config_gets_defaults(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(MINIMAL)
    config = load_config(path)
    assert config.alerting.slack_conn_id == "slack_alerts"
    assert config.tasks.retries == 2
    assert config.endpoints[0].timeout.total_seconds() == 10


BAD = [
    # (yaml, key path expected in the message, words expected)
    ("site: {name: t, url: x}\nendpointz: []\n", "endpointz", "unknown key"),
    ("endpoints: []\n", "site", "required"),
    (MINIMAL + "alerting: {failure_threshold: zero}\n", "alerting.failure_threshold", "integer"),
    (MINIMAL + "alerting: {failure_threshold: 0}\n", "alerting.failure_threshold", "greater than or equal"),
    (MINIMAL + "alerting: {renotify_after: soon}\n", "alerting.renotify_after", "not a duration"),
    (MINIMAL.replace("[STATUS] == 200", "[STATSU] == 200"), "endpoints[0].conditions", "endpoint 'home', condition 0 ('[STATSU] == 200'): unknown placeholder"),
    (MINIMAL.replace("[STATUS] == 200", "[STATUS] 200"), "endpoints[0].conditions", "no operator"),
    (MINIMAL.replace("[STATUS] == 200", "[RESPONSE_TIME] < fast"), "endpoints[0].conditions", "needs a number"),
    (MINIMAL.replace("[STATUS] == 200", "[CERTIFICATE_EXPIRATION] > soon"), "endpoints[0].conditions", "duration"),
    (MINIMAL.replace("[STATUS] == 200", "[STATUS] < any(200, 201)"), "endpoints[0].conditions", "== and !="),
    (MINIMAL.replace('"https://t.example/"', "ftp://t.example/"), "endpoints[0].url", "http"),
    (MINIMAL + "  - {name: home, url: \"https://t.example/2\", conditions: [\"[STATUS] == 200\"]}\n", "endpoints", "duplicate"),
    (MINIMAL + "maintenance_windows: [{start: '2026-12-01T02:00:00Z', duration: 2h, endpoints: [nope]}]\n",
     "maintenance_windows[0].endpoints", "unknown endpoint"),
    (MINIMAL + "maintenance_windows: [{start: yesterday, duration: 2h}]\n", "maintenance_windows[0].start", "datetime"),
    (MINIMAL + "contacts: {vercel: {name: V}}\n", "contacts.vercel.how", "required"),
    (MINIMAL + "tasks: {retries: 1}\n", "tasks.retries", "greater than or equal to 2"),
    (MINIMAL + "endpoints_extra: 1\n", "endpoints_extra", "unknown key"),
    (MINIMAL.replace("conditions:", "timeout: -5s, conditions:"), "endpoints[0].timeout", "duration"),
    ("site: [oops\n", "line 2", "not valid YAML"),
    # issue #18, item 14: numbers the code cannot run with
    (MINIMAL + "results: {retention_days: 10000000}\n", "results.retention_days", "less than or equal to 36500"),
    (MINIMAL + "reports: {retention_days: 10000000}\n", "reports.retention_days", "less than or equal to 36500"),
    (MINIMAL + "atlas: {max_archive_gb: .inf}\n", "atlas.max_archive_gb", "finite number"),
    (MINIMAL + "atlas: {max_snapshot_age_hours: 1e300}\n", "atlas.max_snapshot_age_hours", "less than or equal"),
    (MINIMAL + "sentry: {error_spike_factor: .nan}\n", "sentry.error_spike_factor", "finite number"),
    (MINIMAL + "alerting: {failure_threshold: 10000000000000000000000}\n", "alerting.failure_threshold",
     "less than or equal to 1000"),
    (MINIMAL + "alerting: {slack_timeout: 1000d}\n", "alerting.slack_timeout", "at most 5m"),
    (MINIMAL + "alerting: {outbox_max_age: 36000d}\n", "alerting.outbox_max_age", "at most 31d"),
    (MINIMAL + "tasks: {retry_delay: -300}\n", "tasks.retry_delay", "must not be negative"),
    (MINIMAL + "heartbeat: {late_after: {uptime_monitor: 400d}}\n", "heartbeat.late_after.uptime_monitor", "at most 31d"),
    (MINIMAL + "maintenance_windows: [{start: '9999-12-31T00:00:00Z', duration: 2d}]\n", "maintenance_windows[0]",
     "ends after the year 9999"),
    (MINIMAL + "runbooks: {file_upload: {max_upload_bytes: 99999999999999}}\n", "runbooks.file_upload.max_upload_bytes",
     "less than or equal"),
    (MINIMAL.replace("conditions:", "login: {expect_status: [200, 99999]}, conditions:"),
     "endpoints[0].login.expect_status[1]", "less than or equal to 599"),
    (MINIMAL.replace("conditions:", "timeout: 30d, conditions:"), "endpoints[0].timeout", "at most 10m"),
    ("- just\n- a list\n", "(top level)", "mapping"),
]


@pytest.mark.parametrize("text,key,words", BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_malformed_config_names_file_and_key(tmp_path, text, key, words):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert key in message, message
    assert words.lower() in message.lower(), message


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_cli_validate_config(tmp_path):
    env_cmd = [sys.executable, "-m", "maintenance", "validate-config"]
    env = {"PYTHONPATH": str(ROOT / "plugins"), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run(env_cmd + [str(EXAMPLE)], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "valid" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL + "alerting: {failure_threshold: -1}\n")
    fail = subprocess.run(env_cmd + [str(bad)], capture_output=True, text=True, env=env)
    assert fail.returncode == 1
    assert "alerting.failure_threshold" in fail.stderr and str(bad) in fail.stderr


def _numeric_keys(model: type, path: str = "") -> Iterator[tuple[str, list[Any]]]:
    """(key path, constraints) of every int, float and duration of the config model."""
    for name, field in model.model_fields.items():
        yield from _numeric(field.annotation, list(field.metadata), path + name)


def _numeric(annotation: Any, constraints: list[Any], path: str) -> Iterator[tuple[str, list[Any]]]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        extra = [m for a in args[1:] for m in (a.metadata if isinstance(a, FieldInfo) else [a])]
        yield from _numeric(args[0], constraints + extra, path)
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            yield from _numeric(arg, constraints, path)
    elif origin is list:
        yield from _numeric(args[0], [], path + "[]")
    elif origin is dict:
        yield from _numeric(args[1], [], path + "{}")
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield from _numeric_keys(annotation, path + ".")
    elif annotation in (int, float, timedelta):
        yield path, constraints


def test_every_numeric_key_has_an_upper_bound():
    """Issue #18, item 14: a number the code cannot run with is refused at load (retention_days:
    10000000 overflowed the prune). A new int, float or duration key needs `le` or at_most()."""
    keys = dict(_numeric_keys(MaintenanceConfig))
    assert len(keys) > 50 and "results.retention_days" in keys and "heartbeat.late_after{}" in keys
    unbounded = [path for path, constraints in keys.items()
                 if not any(isinstance(c, (annotated_types.Le, annotated_types.Lt)) or
                            getattr(getattr(c, "func", None), "__qualname__", "").startswith("at_most.")
                            for c in constraints)]
    assert unbounded == []


def test_the_largest_retention_runs(tmp_path):
    """At the bound, the prune and the reports' retention compute (10,000,000 days overflowed both)."""
    from maintenance.config import MAX_RETENTION_DAYS
    from maintenance.reports.publish import prune_folder
    from maintenance.results import ResultsStore, utcnow

    path = tmp_path / "m.yaml"
    path.write_text(MINIMAL + f"results: {{retention_days: {MAX_RETENTION_DAYS}}}\n"
                              f"reports: {{retention_days: {MAX_RETENTION_DAYS}}}\n")
    config = load_config(path)
    store = ResultsStore(f"sqlite:///{tmp_path / 'results.db'}")
    assert store.prune(timedelta(days=config.results.retention_days)) == 0
    reports = tmp_path / "reports"
    (reports / "weekly").mkdir(parents=True)
    (reports / "weekly" / "2026-W01.html").write_text("<p>kept: written today</p>")
    assert prune_folder(reports, timedelta(days=config.reports.retention_days), utcnow()) == []


def test_a_million_values_is_refused_before_it_is_built(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(MINIMAL.replace("endpoints:", "endpointz: [" + "1," * 1_000_000 + "]\nendpoints:"))
    assert path.stat().st_size > 2_000_000
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (f"{path}: (top level): more than 500,000 values: far larger than any "
                                 "configuration (25,000 endpoints take about 500,000)")


@pytest.mark.parametrize("bad", [
    "endpoints: [" + "1," * 20_000 + "]",                                              # a list of bad items
    "contacts: {" + ", ".join(f"c{i}: 1" for i in range(20_000)) + "}",               # a mapping of them
    'endpoints: [{name: h, url: "https://t/", conditions: [' + "[]," * 20_000 + "]}]",    # nested in an item
], ids=["list", "mapping", "nested"])
def test_errors_stop_after_the_first_hundred(tmp_path, bad):
    """20,000 bad items: 100 errors collected, 20 shown, and said so (before: all 20,000, +3 to +18 MB)."""
    path = tmp_path / "bad.yaml"
    path.write_text('site: {name: t, url: "https://t.example"}\n' + bad + "\n")
    tracemalloc.start()
    try:
        config_module._read(path)
        parsing = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        loading = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    lines = str(caught.value).splitlines()
    assert len(lines) == 22 and all(line.startswith(f"{path}: ") for line in lines)
    assert lines[-2] == f"{path}: ... and 80 more errors"
    assert lines[-1] == f"{path}: checking stopped after the first 100 errors"
    assert loading < parsing + 2 ** 20, (loading, parsing)   # the errors add nothing to the YAML's own


def test_a_long_valid_list_is_validated_whole(tmp_path):
    """Chunked validation keeps every item, in order, and the checks that see the whole list."""
    endpoints = "".join(f'  - {{name: e{i}, url: "https://t.example/{i}", conditions: ["[STATUS] == 200"]}}\n'
                        for i in range(450))
    path = tmp_path / "m.yaml"
    path.write_text('site: {name: t, url: "https://t.example"}\nendpoints:\n' + endpoints)
    assert [e.name for e in load_config(path).endpoints] == [f"e{i}" for i in range(450)]
    path.write_text('site: {name: t, url: "https://t.example"}\nendpoints:\n' + endpoints
                    + '  - {name: e7, url: "https://t.example/x", conditions: ["[STATUS] == 200"]}\n'
                    + '  - {name: e8, url: "ftp://t.example/x", conditions: ["[STATUS] == 200"]}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: endpoints[451].url: must start with http:// or https://"
