"""The dependency scan against local OSV, PyPI and npm servers in their real shapes."""

from __future__ import annotations

import json
import textwrap

import pytest

from maintenance.config import load_config
from maintenance.hooks.http_policy import ProviderError, RetryPolicy
from maintenance.hooks.osv import OsvHook
from maintenance.hooks.registries import NpmHook, PyPIHook, latest_versions
from maintenance.operators.dependencies import DependencyScanOperator, scan
from osv_server import DEEP_JSON, OsvServer, RegistryServer, advisory
from figures import report
from servers import LocalServer

FAST = RetryPolicy(timeout=5, attempts=3, backoff_base=0.01, backoff_max=0.05)

LOCK = {"name": "web", "lockfileVersion": 3, "packages": {
    "": {"dependencies": {"next": "^15", "@acme/ui": "^1", "lodash": "^4"}},
    "node_modules/next": {"version": "15.0.1"},
    "node_modules/@acme/ui": {"version": "1.0.0"},
    "node_modules/lodash": {"version": "4.17.20"},
    "node_modules/next/node_modules/postcss": {"version": "8.4.0"},
}}

RECORDS = [
    advisory("GHSA-next-1", "next", "npm", ["15.0.1"], fixed="15.0.3", severity="CRITICAL", aliases=["CVE-2026-0001"]),
    advisory("GHSA-lodash-1", "lodash", "npm", ["4.17.20"], fixed="4.17.21", severity="MODERATE"),
    advisory("PYSEC-2026-1", "jinja2", "PyPI", ["3.1.4"], fixed="3.1.5",
             cvss="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:L/A:N"),   # 8.2: high
] + [advisory(f"GHSA-postcss-{i}", "postcss", "npm", ["8.4.0"], fixed="8.4.31", severity="LOW") for i in range(5)]


@pytest.fixture
def servers():
    with OsvServer(RECORDS, page_size=2) as osv, RegistryServer(
            pypi={"jinja2": "3.1.6", "requests": "2.32.3"}, npm={"next": "16.0.0", "@acme/ui": "1.0.0",
                                                                  "lodash": "4.17.21"}) as registry:
        yield osv, registry


def test_querybatch_chunks_and_follows_page_tokens(servers):
    osv, _ = servers
    hook = OsvHook(osv.url, policy=FAST)
    items = [("npm", "next", "15.0.1"), ("npm", "postcss", "8.4.0"), ("npm", "lodash", "4.17.20"),
             ("PyPI", "jinja2", "3.1.4"), ("PyPI", "clean", "1.0")]
    found = hook.vuln_ids(items, batch_size=3)
    assert [len(ids) for ids in found] == [1, 5, 1, 1, 0]
    assert sorted(v for v, _ in found[1]) == [f"GHSA-postcss-{i}" for i in range(5)]
    # 5 queries in batches of 3; postcss's 2nd page shares the 2nd batch, its 3rd page follows
    assert osv.batch_sizes == [3, 3, 1]
    assert hook.vuln("PYSEC-2026-1")["affected"][0]["package"]["name"] == "jinja2"


def test_osv_429_is_retried_and_malformed_is_classified(servers):
    osv, _ = servers
    osv.faults = [(429, {"Retry-After": "0"}), (503, {})]
    assert OsvHook(osv.url, policy=FAST).vuln_ids([("npm", "next", "15.0.1")]) == [[("GHSA-next-1",
                                                                                    "2026-10-01T00:00:00Z")]]
    osv.faults = [(429, {"Retry-After": "0"})] * 3
    with pytest.raises(ProviderError) as caught:
        OsvHook(osv.url, policy=FAST).vuln_ids([("npm", "next", "15.0.1")])
    assert caught.value.reason == "rate_limited"
    osv.malformed_batch = True
    with pytest.raises(ProviderError) as caught:
        OsvHook(osv.url, policy=FAST).vuln_ids([("npm", "next", "15.0.1")])
    assert caught.value.reason == "malformed_response"


def test_registries_latest_versions_scoped_names_and_errors(servers):
    _, registry = servers
    registry.broken.add("broken")
    npm, errors = latest_versions(NpmHook(registry.url, policy=FAST).latest, ["next", "@acme/ui", "nope"])
    assert npm == {"next": "16.0.0", "@acme/ui": "1.0.0", "nope": None} and errors == {"nope": "http_4xx"}
    assert "/@acme%2fui" in [p.lower() for p in registry.paths]     # the scope slash encoded
    pypi, errors = latest_versions(PyPIHook(registry.url, policy=FAST).latest, ["jinja2", "broken"])
    assert pypi == {"jinja2": "3.1.6", "broken": None} and list(errors) == ["broken"]
    assert "/pypi/broken/json: response is not valid JSON" in errors["broken"]


def write(tmp_path, osv, registry, lock_url=None, extra=""):
    (tmp_path / "package-lock.json").write_text(json.dumps(LOCK))
    (tmp_path / "requirements.txt").write_text("jinja2==3.1.4\n-r more.txt\n")
    (tmp_path / "more.txt").write_text("requests==2.32.3\n")
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent(f"""
        site: {{name: test.example, url: "https://test.example"}}
        results: {{conn_id: test_results}}
        dependencies:
          own_requirements: false
          osv_url: {osv.url}
          pypi_url: {registry.url}
          npm_url: {registry.url}
          lock_files:
            - {{name: app, {"url: " + lock_url + ", conn_id: repo_token" if lock_url else "path: " + str(tmp_path / "package-lock.json")}}}
            - {{name: api, path: {tmp_path / "requirements.txt"}}}
    """) + textwrap.dedent(extra))
    return load_config(path)


@pytest.fixture
def store_env(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_TEST_RESULTS", json.dumps(
        {"conn_type": "sqlite", "extra": {"sqlalchemy_url": f"sqlite:///{tmp_path / 'r.db'}"}}))


def test_scan_reports_findings_then_only_new_ones_alert(servers, tmp_path, store_env):
    osv, registry = servers
    config = write(tmp_path, osv, registry)
    first = {r.check: r for r in scan(config.dependencies, config, runbook="maintenance_weekly", run_id="w1")}
    app = first["dependencies.vulnerabilities.app"]
    assert app.status == "fail" and app.reason == "new_vulnerability"
    assert "next 15.0.1: GHSA-next-1 (CVE-2026-0001) critical, fixed in 15.0.3" in app.summary
    assert app.metrics["vulnerabilities"] == 7 and app.metrics["sev_low"] == 5 and app.metrics["osv_batch_requests"] == 3
    row = next(f for f in app.evidence["findings"] if f["advisory"] == "GHSA-next-1")
    assert row == {**row, "package": "next", "installed": "15.0.1", "fixed_in": "15.0.3", "severity": "critical",
                   "aliases": ["CVE-2026-0001"]}
    api = first["dependencies.vulnerabilities.api"]
    assert api.status == "fail" and "jinja2 3.1.4: PYSEC-2026-1 high, fixed in 3.1.5" in api.summary
    assert api.evidence["findings"][0]["severity_source"] == "cvss_v3"
    outdated = first["dependencies.outdated.app"]
    assert outdated.status == "warn" and "next 15.0.1 -> 16.0.0" in outdated.summary and "lodash" in outdated.summary
    assert first["dependencies.outdated.api"].metrics["outdated"] == 1          # jinja2 3.1.4 -> 3.1.6
    gets = len(osv.vuln_gets)
    assert gets == 8

    # a retry of the same run: still new (so it still fails: retries re-check)
    again = {r.check: r for r in scan(config.dependencies, config, runbook="maintenance_weekly", run_id="w1")}
    assert again["dependencies.vulnerabilities.app"].status == "fail"
    assert len(osv.vuln_gets) == gets, "unchanged advisories come from the cache"

    # next week: nothing new and nothing fixed: the incident stays open (still fail), not
    # re-paged and not recovered, even long past renotify_after
    from datetime import timedelta

    from maintenance.alerting import assess, deliver
    from maintenance.hooks.results_db import results_store
    from maintenance.results import utcnow
    store = results_store("test_results")
    t0 = utcnow()

    posts = []

    def week(n, results):
        at = t0 + timedelta(days=7 * (n - 1))
        assessed = assess(store, config, list(results.values()), dag_id="maintenance_weekly", run_id=f"w{n}",
                          task_id="check_dependency_updates", now=at, failure_threshold=1,
                          renotify=DependencyScanOperator(task_id="scan").renotify(list(results.values())))
        deliver(store, config, sender=lambda text, blocks: posts.append(text), now=at)
        return assessed

    assert sorted((d.kind, d.result.check) for d in week(1, first).due) == [
        ("alert", "dependencies.vulnerabilities.api"), ("alert", "dependencies.vulnerabilities.app")]
    week2 = {r.check: r for r in scan(config.dependencies, config, runbook="maintenance_weekly", run_id="w2")}
    app2 = week2["dependencies.vulnerabilities.app"]
    assert app2.status == "fail" and app2.reason == "open_vulnerability" and app2.evidence["repage"] is False
    assert "1 critical/high vulnerability with a fix still open (already alerted): next 15.0.1" in app2.summary
    assessed = week(2, week2)
    assert assessed.due == [], "a finding still present is neither re-paged nor RECOVERED"
    assert {r.check for r in assessed.paging} == {"dependencies.vulnerabilities.app",
                                                  "dependencies.vulnerabilities.api"}
    # a new critical appears: paged again (the incident is open, so as a reminder), the old one named apart
    osv.records["GHSA-ui-1"] = advisory("GHSA-ui-1", "@acme/ui", "npm", ["1.0.0"], fixed="1.0.1", severity="HIGH")
    week3 = {r.check: r for r in scan(config.dependencies, config, runbook="maintenance_weekly", run_id="w3")}
    app3 = week3["dependencies.vulnerabilities.app"]
    assert app3.status == "fail" and app3.metrics["new"] == 1 and "@acme/ui 1.0.0: GHSA-ui-1" in app3.summary
    assert "GHSA-next-1" not in app3.summary and "(1 known one(s) still open)" in app3.summary
    assert [(d.kind, d.result.check) for d in week(3, week3).due] == [("reminder", "dependencies.vulnerabilities.app")]
    # the lock file no longer has them: now it recovers (the moderate and low ones stay in the digest)
    fixed = json.loads(json.dumps(LOCK))
    fixed["packages"]["node_modules/next"]["version"] = "15.0.3"
    fixed["packages"]["node_modules/@acme/ui"]["version"] = "1.0.1"
    (tmp_path / "package-lock.json").write_text(json.dumps(fixed))
    week4 = {r.check: r for r in scan(config.dependencies, config, runbook="maintenance_weekly", run_id="w4")}
    assert week4["dependencies.vulnerabilities.app"].status == "warn"
    assert [(d.kind, d.result.check) for d in week(4, week4).due] == [("recovered", "dependencies.vulnerabilities.app")]
    assert [sum(line.startswith(verb) for p in posts for line in p.splitlines())
            for verb in ("FAILING", "STILL FAILING")] == [2, 1]
    assert [(m["kind"], m["check_name"]) for m in store.outbox() if m["kind"] == "recovered"] == [
        ("recovered", "dependencies.vulnerabilities.app")], "one RECOVERED, when the lock file was fixed"


def test_lock_file_from_a_url_with_a_token_and_broken_inputs(servers, tmp_path, store_env, monkeypatch):
    osv, registry = servers
    token = "ghp_repoTOKEN123"
    seen = []

    def repo(request):
        seen.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") != f"Bearer {token}":
            return 404, {"Content-Type": "text/plain"}, "404: Not Found"
        return 200, {"Content-Type": "text/plain"}, json.dumps(LOCK)

    with LocalServer(repo) as raw:
        monkeypatch.setenv("AIRFLOW_CONN_REPO_TOKEN", json.dumps({"conn_type": "http", "password": token}))
        config = write(tmp_path, osv, registry, lock_url=f"{raw.url}/acme/web/main/package-lock.json")
        results = {r.check: r for r in scan(config.dependencies, config, runbook="maintenance_weekly", run_id="u1")}
        assert results["dependencies.vulnerabilities.app"].status == "fail" and seen == [f"Bearer {token}"]
        monkeypatch.setenv("AIRFLOW_CONN_REPO_TOKEN", json.dumps({"conn_type": "http", "password": "wrong"}))
        results = {r.check: r for r in scan(config.dependencies, config, runbook="maintenance_weekly", run_id="u2")}
    app = results["dependencies.vulnerabilities.app"]
    assert app.status == "fail" and app.reason == "http_4xx" and "cannot read the lock file" in app.summary
    assert "wrong" not in app.summary
    assert results["dependencies.vulnerabilities.api"].status == "fail"     # the other input is still scanned
    (tmp_path / "requirements.txt").write_text("ok==1\n")
    (tmp_path / "package-lock.json").write_text('{"packages": {"node_modules/x": {"version": ')
    config = write(tmp_path, osv, registry)
    (tmp_path / "package-lock.json").write_text('{"packages": {"node_modules/x": {"version": ')
    results = {r.check: r for r in scan(config.dependencies, config, runbook="maintenance_weekly", run_id="u3")}
    assert results["dependencies.vulnerabilities.app"].reason == "malformed_lock_file"


# -- issue 18 item 8: hostile lock files and registry answers, each a classified result naming the file --
def scan_results(config, run_id="h1"):
    return {r.check: r for r in scan(config.dependencies, config, runbook="maintenance_weekly", run_id=run_id)}


def test_a_package_lock_nested_100k_deep_is_a_classified_result(servers, tmp_path, store_env):
    osv, registry = servers
    config = write(tmp_path, osv, registry)
    lock = tmp_path / "package-lock.json"
    lock.write_text('{"dependencies":' * 100_000 + "{}" + "}" * 100_000)
    results = scan_results(config)
    app = results["dependencies.vulnerabilities.app"]
    assert (app.status, app.reason) == ("fail", "malformed_lock_file"), app.summary
    assert f"{lock}: package-lock.json nests too deep to parse" in app.summary
    assert results["dependencies.vulnerabilities.api"].reason != "malformed_lock_file"   # the other file is scanned


def test_a_deeply_nested_poetry_lock_is_a_classified_result(servers, tmp_path, store_env):
    osv, registry = servers
    lock = tmp_path / "poetry.lock"
    lock.write_text("[[package]]\nname = \"x\"\nversion = \"1.0\"\nextras = " + "[" * 100_000 + "]" * 100_000 + "\n")
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(f"""
        site: {{name: test.example, url: "https://test.example"}}
        results: {{conn_id: test_results}}
        dependencies:
          own_requirements: false
          check_outdated: false
          osv_url: {osv.url}
          lock_files: [{{name: poetry, path: {lock}}}]
    """))
    config = load_config(path)
    poetry = scan_results(config)["dependencies.vulnerabilities.poetry"]
    assert (poetry.status, poetry.reason) == ("fail", "malformed_lock_file"), poetry.summary
    assert f"{lock}: poetry.lock nests too deep to parse" in poetry.summary
    from maintenance.checks.dependencies import parse_poetry_lock
    assert parse_poetry_lock("package = 5\n").packages == []      # a key of another type is not iterated


def test_a_requirements_file_that_is_not_utf8_is_a_classified_result(servers, tmp_path, store_env):
    osv, registry = servers
    config = write(tmp_path, osv, registry)
    requirements = tmp_path / "requirements.txt"
    requirements.write_bytes("jinja2==3.1.4  # café\n".encode("latin-1"))
    api = scan_results(config)["dependencies.vulnerabilities.api"]
    assert (api.status, api.reason) == ("fail", "malformed_lock_file"), api.summary
    assert f"{requirements} is not UTF-8 text (byte 0xe9 at offset 20)" in api.summary


def test_deep_json_error_bodies_from_osv_pypi_and_npm_are_classified(servers, tmp_path, store_env):
    osv, registry = servers
    config = write(tmp_path, osv, registry)
    registry.deep_errors |= {"jinja2", "next"}
    osv.fault_body, osv.faults = DEEP_JSON, [(400, {})]
    results = scan_results(config)
    for name in ("app", "api"):
        failed = results[f"dependencies.vulnerabilities.{name}"]
        assert (failed.reason, failed.target) == ("http_4xx", str(tmp_path / ("package-lock.json" if name == "app"
                                                                               else "requirements.txt")))
        assert "OSV could not be asked" in failed.summary and "HTTP 400" in failed.summary
    results = scan_results(config, run_id="h2")                          # OSV answers again; the registries not
    assert results["dependencies.vulnerabilities.app"].status == "fail"   # the findings of LOCK
    pypi, errors = latest_versions(PyPIHook(registry.url, policy=FAST).latest, ["jinja2"])
    assert pypi == {"jinja2": None} and errors == {"jinja2": "http_4xx"}
    npm, errors = latest_versions(NpmHook(registry.url, policy=FAST).latest, ["next"])
    assert npm == {"next": None} and errors == {"next": "http_4xx"}
    assert results["dependencies.outdated.app"].status in ("ok", "warn")


HUGE_LOCK = 2 * 1024 ** 3


def test_a_2gb_lock_file_at_a_url_is_read_to_the_size_limit(servers, tmp_path, store_env):
    import tracemalloc

    from hostile_site import RawServer, huge_answer

    osv, registry = servers
    with RawServer(lambda method, path, headers, sock: huge_answer(sock, HUGE_LOCK)) as raw:
        url = f"{raw.url}/acme/web/main/package-lock.json"
        config = write(tmp_path, osv, registry, lock_url=url)
        tracemalloc.start()
        try:
            app = scan_results(config)["dependencies.vulnerabilities.app"]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert (app.status, app.reason) == ("fail", "too_large"), app.summary
    assert url in app.summary and "larger than 52,428,800 bytes" in app.summary
    report(f"dependency scan of a 2 GB lock file at a URL: read to 50 MB, peak {peak / 2**20:.0f} MB of Python memory")
    assert peak < 128 * 1024 * 1024, f"peak {peak / 2**20:.0f} MB of Python memory for a 2 GB lock file"
