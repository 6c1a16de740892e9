"""Config: the example validates; malformed files fail naming the file and the key."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from maintenance.config import ConfigError, load_config

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
