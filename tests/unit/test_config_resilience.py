"""A bad config edit never silences monitoring (issue #8, section 6): every malformed input
is a file-and-key error, and get_config() keeps running on the last valid configuration."""

from __future__ import annotations

import os
import textwrap

import pytest

from maintenance import config as config_module
from maintenance.config import ConfigError, config_problem, get_config, last_valid_path, load_config

BASE = 'site: {name: t, url: "https://t.example"}\n'
GOOD = BASE + 'endpoints:\n  - {name: home, url: "https://t.example/", conditions: ["[STATUS] == 200"]}\n'

HOSTILE = [
    # (bytes, what the message names)
    (BASE + "alerting: {renotify_after: 99999999999999d}\n", "alerting.renotify_after"),
    (BASE + 'endpoints: [{name: h, url: "https://t/", timeout: .inf, conditions: ["[STATUS] == 200"]}]\n',
     "endpoints[0].timeout"),
    (BASE + 'endpoints: [{name: h, url: "https://t/", timeout: .nan, conditions: ["[STATUS] == 200"]}]\n',
     "endpoints[0].timeout"),
    (BASE + "maintenance_windows: [{start: '2026-01-01T00:00:00Z', duration: 99999999999999d}]\n",
     "maintenance_windows[0].duration"),
    (BASE + "alerting: {failure_threshold: " + "9" * 5000 + "}\n", "not valid YAML"),
    (BASE + "x: " + "[" * 100_000 + "]" * 100_000 + "\n", "nesting depth"),
    (BASE + "contacts: " + "{a: " * 100_000 + "1" + "}" * 100_000 + "\n", "nesting depth"),
    (BASE + 'endpoints: [{name: h, url: "https://u:p@t/", headers: {Authorization: "Bearer x"}, '
            'conditions: ["[STATUS] == 200"]}]\n', "endpoint 'h'"),
]


@pytest.mark.parametrize("text,names", HOSTILE, ids=[n for _, n in HOSTILE])
def test_hostile_input_is_a_clean_file_and_key_error(tmp_path, text, names):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and names in message, message[:300]
    assert "Traceback" not in message and len(message) < 2000


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(GOOD.encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 text: byte 0xe9 on line 4"):
        load_config(path)


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    home = tmp_path / "airflow-home"
    home.mkdir()
    path = tmp_path / "maintenance.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    monkeypatch.setenv("MAINTENANCE_CONFIG", str(path))
    yield path
    config_module._cache.pop(path, None)


def break_it(path, text):
    path.write_text(text)
    os.utime(path, (1, 1))   # a new mtime even within the same clock tick


def test_an_invalid_edit_keeps_the_last_valid_config(config_file):
    assert [e.name for e in get_config().endpoints] == ["home"] and config_problem() is None
    assert last_valid_path(config_file).read_text() == GOOD
    break_it(config_file, GOOD.replace("[STATUS] == 200", "[STATSU] == 200"))
    config = get_config()
    assert [e.name for e in config.endpoints] == ["home"]               # still monitored
    problem = config_problem()
    assert problem and str(config_file) in problem and "endpoints[0].conditions" in problem and "STATSU" in problem
    break_it(config_file, GOOD + "  - {name: api, url: \"https://t.example/api\", conditions: [\"[STATUS] == 200\"]}\n")
    assert [e.name for e in get_config().endpoints] == ["home", "api"] and config_problem() is None


def test_a_fresh_process_with_an_invalid_file_uses_the_kept_copy(config_file):
    get_config()
    break_it(config_file, "site: [oops\n")
    config_module._cache.clear()   # as a new DAG-processor or worker process
    assert [e.name for e in get_config().endpoints] == ["home"]
    assert "not valid YAML" in config_problem()


def test_never_valid_runs_on_an_empty_config_and_says_so(config_file):
    break_it(config_file, "endpoints: 3\n")
    config = get_config()
    assert config.endpoints == [] and "invalid" in config.site.name
    assert "site" in config_problem()


def test_the_dags_stay_importable_on_an_invalid_config(config_file):
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    get_config()
    break_it(config_file, textwrap.dedent(GOOD) + "alerting: {failure_threshold: -1}\n")
    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags"))
    assert bag.import_errors == {}
    assert {"uptime_monitor", "maintenance_daily"} <= set(bag.dag_ids)


def test_a_host_name_dns_cannot_carry_is_a_config_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BASE + 'endpoints: [{name: h, url: "https://' + "a" * 70 + '.example/", conditions: ["[STATUS] == 200"]}]\n')
    with pytest.raises(ConfigError, match=r"endpoints\[0\]\.url: not a valid host name"):
        load_config(path)


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o400])
def test_the_kept_copy_is_never_more_readable_than_the_config(config_file, mode):
    """The config holds endpoint credentials: its kept copy has the original's mode (issue 18, item 11)."""
    keep = last_valid_path(config_file)
    keep.write_text(GOOD)            # a copy kept, world-readable, by an earlier build
    os.chmod(keep, 0o644)
    os.chmod(config_file, mode)
    get_config()
    assert oct(os.stat(keep).st_mode & 0o777) == oct(mode)      # same content: the mode is still corrected
    config_module._cache.clear()
    os.chmod(config_file, 0o600)
    config_file.write_text(GOOD + "alerting: {failure_threshold: 2}\n")
    os.chmod(config_file, mode)
    os.utime(config_file, (2, 2))
    get_config()
    assert keep.read_text().endswith("failure_threshold: 2}\n")
    assert oct(os.stat(keep).st_mode & 0o777) == oct(mode)      # a new copy: written with the mode
