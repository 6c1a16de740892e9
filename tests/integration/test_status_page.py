"""The status page plugin through a running Airflow API server (started once for the module):
routes answer behind Airflow's auth (401 anonymous), the plugin's nav view opens inside the
Airflow UI in headless Chromium, and a weekly report renders from disk. Screenshots are kept
under test-artifacts/."""

from __future__ import annotations

import textwrap
import time
from urllib.parse import urlencode
from datetime import datetime, timedelta, timezone

import pytest
import requests

from airflow_api_server import api_server
from browser import ARTIFACTS, Browser, chromium
from mongo_fixtures import mongo_auth_server, mongo_default_conn, mongo_server_factory  # noqa: F401
from maintenance.results import CheckResult, ResultsStore
from report_fixtures import daily_family_results, load, stamp_for, uptime_rows

ENDPOINTS = ["homepage", "api-health", "admin-login", "payments-health"]
PREFIX = "/maintenance-status"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """30 days of 5-minute results, then a last sweep through ResultsStore.record (api-health down)."""
    folder = tmp_path_factory.mktemp("status")
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    url = f"sqlite:///{folder / 'results.db'}"
    store = ResultsStore(url)
    load(store, uptime_rows(ENDPOINTS, days=30, now=now - timedelta(minutes=15), stamp=stamp_for(store),
                            outages=2))
    store.record(daily_family_results(days=30, now=now))
    for minutes, failing in ((10, False), (5, True), (0, True)):
        store.record([CheckResult(check=name, status="fail" if failing and name == "api-health" else "ok",
                                  summary="HTTP 503 from https://example.org/api/health" if failing and name == "api-health"
                                  else "ok", reason="http_5xx" if failing and name == "api-health" else None,
                                  critical=name != "admin-login", metrics={"response_ms": 120.0},
                                  time=now - timedelta(minutes=minutes)) for name in ENDPOINTS])
    reports = folder / "reports"
    from maintenance.reports import publish

    publish.write_folder(reports, publish.report_name("example.org", "weekly", "2026-W49"),
                         "<!DOCTYPE html><title>Weekly report</title><h1>Weekly report 2026-W49</h1>")
    config = folder / "maintenance.yaml"
    endpoints = "\n".join(f"  - {{name: {n}, url: 'https://example.org/{n}', critical: {str(n != 'admin-login').lower()}, "
                          f"conditions: ['[STATUS] == 200']}}" for n in ENDPOINTS)
    config.write_text(textwrap.dedent(f"""
        site: {{name: example.org, url: "https://example.org"}}
        results: {{conn_id: status_results}}
        reports: {{folder: "{reports}"}}
        heartbeat: {{late_after: {{}}}}
        maintenance_windows:
          - {{start: "{(now - timedelta(minutes=30)).isoformat()}", duration: 2h, endpoints: [admin-login], reason: certificate rotation}}
          - {{start: "{(now + timedelta(days=3)).isoformat()}", duration: 1h, reason: database upgrade}}
        endpoints:
    """) + endpoints + "\n")
    return {"folder": folder, "store": store, "url": url, "config": config, "now": now}


@pytest.fixture(scope="module")
def server(airflow_db, site):
    with api_server(site["folder"], site["config"], site["url"]) as running:
        yield running


def get(server, path, token=None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{server['base']}{path}", headers=headers, timeout=30, **kwargs)


REPORT = "weekly/example.org-weekly-2026-W49.html"


@pytest.mark.parametrize("path", [f"{PREFIX}/", f"{PREFIX}/api/status", f"{PREFIX}/checks/homepage",
                                  f"{PREFIX}/reports/", f"{PREFIX}/reports/{REPORT}"])
def test_anonymous_requests_get_401(server, path):
    response = get(server, path)
    assert response.status_code == 401, response.text[:200]
    assert "api-health" not in response.text
    forged = get(server, path, token="not-a-jwt")
    assert forged.status_code in (401, 403) and "api-health" not in forged.text


def test_status_data_when_authenticated(server, site):
    response = get(server, f"{PREFIX}/api/status", token=server["token"])
    assert response.status_code == 200, response.text[:300]
    data = response.json()
    checks = {c["name"]: c for c in data["checks"]}
    assert list(checks) == ENDPOINTS
    assert checks["api-health"]["state"] == "down"
    assert checks["api-health"]["since"] == (site["now"] - timedelta(minutes=5)).isoformat()
    assert checks["homepage"]["state"] == "up"
    assert checks["homepage"]["response_ms"] == 120.0 and checks["homepage"]["today_p95_ms"] > 0
    assert checks["homepage"]["counting_since"]["7d"] is None and checks["homepage"]["counting_since"]["90d"]
    assert [b["name"] for b in data["banner"]] == ["api-health"]
    assert data["maintenance"]["current"][0]["reason"] == "certificate rotation"
    assert data["maintenance"]["next"]["reason"] == "database upgrade"
    today = datetime.now(timezone.utc).date()
    for name, check in checks.items():   # 7 and 30 days: counted independently over the raw rows
        assert len(check["bars"]) == 90
        for days in (7, 30):
            since = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), tzinfo=timezone.utc)
            rows = [r for r in site["store"].history(name, since=since)
                    if r["status"] != "skipped" and not r["in_maintenance"]]
            expected = 100 * sum(r["status"] != "fail" for r in rows) / len(rows)
            assert check["uptime"][f"{days}d"] == pytest.approx(expected), (name, days)
    assert data["incidents"] and data["incidents"][0]["check"] == "api-health" and data["incidents"][0]["end"] is None


def test_status_page_html_when_authenticated(server):
    response = get(server, f"{PREFIX}/", token=server["token"])
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "1 critical check(s) failing:" in html and "HTTP 503 from https://example.org/api/health" in html
    for name in ENDPOINTS:
        row = html.split(f'data-check="{name}"', 1)[1].split("</tr>", 1)[0]
        assert row.count("<rect") == 90, name
        assert "<polyline" in row, f"{name}: p95 chart"
    assert "certificate rotation" in html and "database upgrade" in html
    detail = get(server, f"{PREFIX}/checks/homepage", token=server["token"])
    assert detail.status_code == 200 and 'id="response-chart"' in detail.text
    assert get(server, f"{PREFIX}/checks/unknown", token=server["token"]).status_code == 404


def test_a_browser_without_a_session_is_sent_to_the_login_and_back(server):
    link = f"{server['base']}{PREFIX}/reports/{REPORT}"
    response = requests.get(link, headers={"Accept": "text/html,application/xhtml+xml"}, allow_redirects=False,
                            timeout=30)
    assert response.status_code == 307
    assert response.headers["location"] == "/api/v2/auth/login?" + urlencode({"next": link})
    login = requests.get(server["base"] + response.headers["location"], allow_redirects=False, timeout=30)
    assert login.status_code == 307 and "/auth/login" in login.headers["location"], "Airflow accepts the next URL"


def test_reports_are_served_behind_the_login_and_listed(server):
    """The link Slack announces a report with (publish.link_for without link_base) opens it."""
    from maintenance.reports import publish

    link = publish.link_for(REPORT, None, server["base"])
    assert link == f"{server['base']}{PREFIX}/reports/{REPORT}"
    response = requests.get(link, headers={"Authorization": f"Bearer {server['token']}"}, timeout=30)
    assert response.status_code == 200 and "<h1>Weekly report 2026-W49</h1>" in response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]
    listing = get(server, f"{PREFIX}/reports/", token=server["token"])
    assert listing.status_code == 200 and f'href="{REPORT}"' in listing.text
    page = get(server, f"{PREFIX}/", token=server["token"]).text
    assert f'href="reports/{REPORT}"' in page.split('id="report-links"', 1)[1]
    for missing in ("weekly/example.org-weekly-2020-W01.html", "weekly/..%2Fresults.db", "daily/x.html"):
        assert get(server, f"{PREFIX}/reports/{missing}", token=server["token"]).status_code == 404, missing


def test_plugin_is_registered_with_its_nav_view(server):
    response = get(server, "/api/v2/plugins", token=server["token"])
    assert response.status_code == 200
    plugin = next(p for p in response.json()["plugins"] if p["name"] == "maintenance_status_page")
    assert plugin["external_views"][0]["url_route"] == "maintenance-status"
    assert plugin["fastapi_apps"][0]["url_prefix"] == PREFIX


needs_chromium = pytest.mark.skipif(chromium() is None, reason="chromium is not installed (.ci/run installs it)")


@needs_chromium
def test_chromium_shows_the_status_page_inside_the_airflow_ui(server):
    with Browser(1400, 1000) as browser:
        browser.open(f"{server['base']}{PREFIX}/")
        browser.wait_for("location.pathname.startsWith('/auth/login')")   # anonymous: Airflow's login
        assert browser.evaluate("document.querySelector('#banner')") is None
        browser.set_cookie("_token", server["token"], server["base"])
        browser.open(f"{server['base']}/plugin/maintenance-status")
        frame = "document.querySelector('iframe')"
        banner = browser.wait_for(f"{frame} && {frame}.contentDocument && "
                                  f"{frame}.contentDocument.querySelector('#banner') && "
                                  f"{frame}.contentDocument.querySelector('#banner').innerText", timeout=90)
        assert "critical check(s) failing" in banner and "api-health" in banner
        rows = browser.evaluate(f"Array.from({frame}.contentDocument.querySelectorAll('tr.check'))"
                                ".map(r => [r.dataset.check, r.dataset.state, r.querySelectorAll('rect').length])")
        assert rows == [["homepage", "up", 90], ["api-health", "down", 90], ["admin-login", "up", 90],
                        ["payments-health", "up", 90]]
        assert browser.evaluate(f"{frame}.getBoundingClientRect().height") > 400, "the iframe is shown"
        assert "Status page" in browser.evaluate("document.body.innerText"), "the nav entry"
        time.sleep(0.5)
        browser.screenshot(ARTIFACTS / "status-page-in-airflow-ui.png")
        browser.open(f"{server['base']}{PREFIX}/")
        browser.screenshot(ARTIFACTS / "status-page.png", full_page=True)


@pytest.fixture
def analytics(site, monkeypatch, mongo_default_conn):  # noqa: F811
    """This week's and this month's traffic (local Plausible) and app figures (MongoDB) stored."""
    from analytics_servers import PlausibleServer
    from maintenance.config import MaintenanceConfig
    from maintenance.operators.analytics import app_analytics, traffic_analytics
    from maintenance.reports.data import report_period

    now = datetime.now(timezone.utc)
    mongo_default_conn.seed("app", "members", [{"created_at": now - timedelta(hours=7 * i)} for i in range(300)])
    mongo_default_conn.seed("app", "donations", [{"created_at": now - timedelta(hours=11 * i), "amount": 500 + 37 * (i % 9),
                                                  "currency": ("KES", "USD")[i % 2],
                                                  "status": "refunded" if i % 13 == 0 else "paid"} for i in range(150)])
    mongo_default_conn.seed("app", "registrations", [{"created_at": now - timedelta(hours=9 * i),
                                                      "event": ("gala", "fun-run", "workshop")[i % 3]} for i in range(200)])
    mongo_default_conn.seed("app", "audit", [{"created_at": now - timedelta(hours=13 * i), "action": ("edit", "delete", "invite")[i % 3],
                                              "user": ("alice", "bob")[i % 2]} for i in range(100)])
    config = MaintenanceConfig.model_validate({
        "site": {"name": "example.org", "url": "https://example.org"},
        "analytics": {"plausible": {"site_id": "example.org"},
                      "app": {"database": "app", "signups": {"collection": "members"},
                              "donations": {"collection": "donations"}, "registrations": {"collection": "registrations"},
                              "admin_actions": {"collection": "audit"}}}})
    with PlausibleServer() as plausible:
        monkeypatch.setenv("AIRFLOW_CONN_PLAUSIBLE_API", plausible.connection_json())
        for kind in ("weekly", "monthly"):
            start, end, _ = report_period(kind, now)
            results = traffic_analytics(config, kind, start, end) + app_analytics(config, kind, start, end)
            assert all(r.status in ("ok", "warn") for r in results), [r.summary for r in results]
            for result in results:
                result.time = end + timedelta(hours=5)   # when the period's DAG run stores them
            site["store"].record(results)
    return now


@needs_chromium
@pytest.mark.parametrize("kind", ["weekly", "monthly"])
def test_chromium_renders_a_report_from_disk(site, analytics, kind):
    from maintenance.reports.data import Monitored, report_data
    from maintenance.reports.render import render_report

    data = report_data(site["store"], kind, checks=[Monitored(n) for n in ENDPOINTS], site="example.org",
                       now=datetime.now(timezone.utc))
    assert data["analytics"]["traffic"] is not None, data["analytics"]
    path = site["folder"] / f"{kind}.html"
    path.write_text(render_report(data), encoding="utf-8")
    with Browser(1000, 1200) as browser:
        browser.open(path.as_uri())
        images = browser.wait_for("Array.from(document.images).every(i => i.complete) && "
                                  "Array.from(document.images).map(i => [i.alt, i.naturalWidth, i.naturalHeight])")
        titles = [alt for alt, width, height in images if width == 900 and height >= 100]
        assert len(titles) == len(images), images
        assert titles[0] == "Daily uptime per endpoint"
        assert {f"Response time per day: {n}" for n in ENDPOINTS} <= set(titles)
        assert {"Error events per day (Sentry)", "Newest backup snapshot age per day", "Visitors and page views per day",
                "Top pages (page views)", "Membership signups per day", "Event registrations per event",
                "Donations per day (sum per currency, refunds apart)", "Admin actions by type"} <= set(titles), titles
        text = browser.evaluate("document.body.innerText")
        assert f"{data['uptime']['overall_percent']:.2f}%" in text and "How uptime is counted." in text
        assert ("Summary" in text) == (kind == "monthly")
        assert "No traffic analytics" not in text and "No app analytics" not in text
        browser.screenshot(ARTIFACTS / f"{kind}-report.png", full_page=True)
