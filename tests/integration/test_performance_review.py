"""The performance review against local CrUX / PSI / Vercel servers and stored probe results."""

from __future__ import annotations

import json
import textwrap
from datetime import timedelta

import pytest

from maintenance.checks.performance import rate
from maintenance.config import load_config
from maintenance.operators.performance import probes, vercel_checks, web_vitals
from maintenance.results import CheckResult, ResultsStore, utcnow
from vitals_server import KEY, VERCEL_TOKEN, VercelServer, VitalsServer, crux_history, crux_record, deployment, psi_answer


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_TEST_RESULTS", json.dumps(
        {"conn_type": "sqlite", "extra": {"sqlalchemy_url": f"sqlite:///{tmp_path / 'r.db'}"}}))
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent("""
        site: {name: shop.example, url: "https://shop.example"}
        results: {conn_id: test_results}
        endpoints:
          - {name: home, url: "https://shop.example/", conditions: ["[STATUS] == 200"]}
          - {name: api, url: "https://shop.example/api/health", conditions: ["[STATUS] == 200"]}
        performance:
          origins: ["https://shop.example"]
          pages: ["https://shop.example/checkout"]
          min_probe_samples: 5
        vercel: {conn_id: vercel_api}
    """))
    return load_config(path)


def test_thresholds_at_p75():
    assert [rate("lcp", v) for v in (2500, 2501, 4000, 4001)] == ["good", "needs-improvement", "needs-improvement", "poor"]
    assert [rate("cls", v) for v in (0.1, 0.11, 0.26)] == ["good", "needs-improvement", "poor"]
    assert rate("inp", 200) == "good" and rate("inp", 501) == "poor"


def test_crux_with_its_trend_and_psi_when_crux_has_no_record(config, monkeypatch):
    with VitalsServer() as vitals:
        vitals.records["https://shop.example"] = crux_record("https://shop.example", 2100, 180, "0.05")
        vitals.histories["https://shop.example"] = crux_history(
            "https://shop.example", [1800, 1900, None, 2000, 2100], [150, 160, 170, None, 180], ["0.04", "0.05"] * 2 + [None])
        vitals.psi["https://shop.example/checkout"] = psi_answer("https://shop.example/checkout", 4600, 150, 15)
        monkeypatch.setenv("AIRFLOW_CONN_CRUX_API", vitals.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_PAGESPEED_API", json.dumps({"conn_type": "http", "host": vitals.server.url}))
        origin, page = web_vitals(config, 1, "maintenance_weekly")
        bodies = [r.json() for r in vitals.server.requests if r.method == "POST"]
    # runPagespeed's enums as the discovery document spells them (a lower-case value is refused)
    assert [(q["category"], q["strategy"]) for q in vitals.psi_queries] == [(["PERFORMANCE"], ["MOBILE"])]
    assert origin.status == "ok" and origin.metrics == {"lcp_p75": 2100, "inp_p75": 180, "cls_p75": 0.05}
    assert "LCP 2100 ms good (+5% vs the period before)" in origin.summary and origin.evidence["source"] == "CrUX"
    assert "CLS 0.05 good (+25% vs the period before)" in origin.summary      # "0.04" -> "0.05" strings
    assert bodies[0] == {"origin": "https://shop.example", "formFactor": "PHONE",
                         "metrics": ["largest_contentful_paint", "interaction_to_next_paint", "cumulative_layout_shift"]}
    assert page.status == "fail" and page.reason == "poor_web_vitals" and page.evidence["source"] == "PSI"
    assert page.metrics["cls_p75"] == 0.15 and page.evidence["ratings"] == {
        "lcp": "poor", "inp": "good", "cls": "needs-improvement"}
    assert KEY not in json.dumps([origin.to_dict(), page.to_dict()])


def test_bad_key_is_a_classified_failure_without_the_key(config, monkeypatch):
    with VitalsServer() as vitals:
        monkeypatch.setenv("AIRFLOW_CONN_CRUX_API", json.dumps({"conn_type": "http", "host": vitals.server.url,
                                                                "password": "AIzaWRONGkey999"}))
        results = web_vitals(config, 1, "maintenance_weekly")
    assert {r.check: (r.status, r.reason) for r in results} == {          # one result per origin and page
        "performance.cwv.shop.example": ("fail", "http_4xx"), "performance.cwv.shop.example/checkout": ("fail", "http_4xx")}
    assert "AIzaWRONGkey999" not in json.dumps([r.to_dict() for r in results])


def test_vercel_failed_production_deployment_is_named_with_its_inspector(config, monkeypatch):
    now_ms = int(utcnow().timestamp() * 1000)
    hour = 3_600_000
    with VercelServer() as vercel:
        vercel.deployments = [deployment("d1", now_ms - 50 * hour), deployment("d2", now_ms - 30 * hour, "ERROR"),
                              deployment("d3", now_ms - 20 * hour), deployment("p1", now_ms - 10 * hour, target="preview"),
                              deployment("old", now_ms - 30 * 24 * hour)]
        monkeypatch.setenv("AIRFLOW_CONN_VERCEL_API", vercel.connection_json())
        found, [result] = vercel_checks(config, utcnow() - timedelta(days=7), utcnow(), "week", "maintenance_weekly")
        assert len([q for q in vercel.queries if "since" in q]) == 2        # paged by `until`
        monkeypatch.setenv("AIRFLOW_CONN_VERCEL_API", vercel.connection_json(token="nope"))
        _, [denied] = vercel_checks(config, utcnow() - timedelta(days=7), utcnow(), "week", "maintenance_weekly")
    assert [d["uid"] for d in found] == ["d3", "d2", "d1"]
    assert result.status == "fail" and result.reason == "deployment_failed"
    assert "web-d2.vercel.app ERROR (Command \"npm run build\" exited with 1; https://vercel.com/acme/web/d2)" in result.summary
    assert "current production" not in result.summary and result.evidence["current"]["uid"] == "d3"
    assert denied.reason == "unauthorized" and "vercel_api" in denied.summary and VERCEL_TOKEN not in denied.summary


def test_probe_p95_regression_is_matched_with_the_deployment_at_its_start(config):
    store = ResultsStore(json.loads(__import__("os").environ["AIRFLOW_CONN_TEST_RESULTS"])["extra"]["sqlalchemy_url"])
    now = utcnow()
    rows = []
    for hours in range(1, 14 * 24, 6):
        at = now - timedelta(hours=hours)
        slow = hours < 48                                  # the api got slow two days ago
        rows.append(CheckResult(check="api", status="ok", summary="", time=at,
                                metrics={"response_ms": (900 if slow else 200) + hours % 7}))
        rows.append(CheckResult(check="home", status="ok", summary="", time=at, metrics={"response_ms": 120 + hours % 5}))
    store.record(rows)
    release = {"uid": "d9", "url": "web-d9.vercel.app", "readyState": "READY",
               "createdAt": int((now - timedelta(hours=45)).timestamp() * 1000)}
    results = {r.check: r for r in probes(config, now, timedelta(days=7), "week", [release], "maintenance_weekly")}
    api = results["performance.probe.api"]
    assert api.status == "warn" and api.reason == "regression" and api.metrics["p95_ms"] > 900
    assert "deployments around its start: web-d9.vercel.app" in api.summary
    assert results["performance.probe.home"].status == "ok"
    assert results["performance.probe.slowest"].summary.startswith("slowest endpoints this week (p95): api 9")


def test_too_few_probes_is_skipped_on_a_first_week_and_a_warning_once_probes_stopped():
    from maintenance.checks.performance import probe_review

    now = utcnow()

    def probe(name, at):
        return {"check_name": name, "checked_at": at, "status": "ok", "in_maintenance": False,
                "metrics": {"response_ms": 100.0}}

    this = [probe("new", now - timedelta(minutes=m)) for m in range(3)] + [probe("old", now - timedelta(hours=1))]
    last = [probe("old", now - timedelta(days=8, minutes=m)) for m in range(20)]
    results = {r.check: r for r in probe_review(this, last, ["new", "old"], factor=1.5, min_samples=10, slowest=3,
                                                period="week", deployments=[], runbook="maintenance_weekly")}
    new, old = results["performance.probe.new"], results["performance.probe.old"]
    assert (new.status, new.summary) == ("skipped", "skipped: new: 3 probe(s) this week, too few to judge yet")
    assert old.status == "warn" and "only 1 probe(s) this week against 20 the week before" in old.summary
    assert "performance.probe.slowest" not in results
