"""The status page, a check's page and the public page as Chromium draws them, on day one (seven
sweeps) and with 40 days of history (tests/report_fixtures.py). Screenshots in test-artifacts/
(the README's come from here: docs/screenshots/)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from browser import ARTIFACTS, Browser, chromium
from maintenance.config import MaintenanceConfig
from maintenance.reports.data import Monitored, check_facts, status_page_data
from maintenance.reports.public import public_page
from maintenance.reports.render import render_check_page, render_status_page
from maintenance.results import CheckResult, ResultsStore
from report_fixtures import load, stamp_for, uptime_rows

pytestmark = pytest.mark.skipif(chromium() is None, reason="chromium is not installed (.ci/run installs it)")
ENDPOINTS = ["homepage", "api-health", "admin-login", "payments-health"]
UTC = timezone.utc


def sweeps(store: ResultsStore, now: datetime, count: int, *, failing: str | None = None) -> None:
    for i in range(count):
        at = now - timedelta(minutes=5 * (count - 1 - i))
        store.record([CheckResult(
            check=name, status="fail" if name == failing and i >= count - 2 else "ok", target=f"https://example.org/{name}",
            summary="HTTP 503 from https://example.org/api/health" if name == failing and i >= count - 2 else "HTTP 200",
            reason="http_5xx" if name == failing and i >= count - 2 else None, critical=name != "admin-login",
            metrics={"response_ms": None if name == failing and i >= count - 2 else 90.0 + 17 * n + (i * 37) % 60,
                     "tls_days_left": 64.4 - n * 20}, time=at) for n, name in enumerate(ENDPOINTS)])


def config() -> MaintenanceConfig:
    return MaintenanceConfig.model_validate({
        "site": {"name": "example.org", "url": "https://example.org"},
        "endpoints": [{"name": n, "url": f"https://example.org/{n}", "critical": n != "admin-login",
                       "conditions": ["[STATUS] == 200"]} for n in ENDPOINTS],
        "status_page": {"public": {"publish_to": "/tmp/unused", "checks": ["homepage", "api-health", "payments-health"],
                                   "title": "Example Org"}}})


def shoot(tmp_path, name: str, html: str, width: int = 1400) -> dict:
    path = tmp_path / f"{name}.html"
    path.write_text(html, encoding="utf-8")
    with Browser(width, 900) as browser:
        browser.open(path.as_uri())
        facts = browser.evaluate("""({text: document.body.innerText,
            overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
            chart: (() => { const c = document.querySelector('#response-chart');
                            return c ? [c.getBoundingClientRect().width, c.querySelectorAll('circle').length] : null })()})""")
        browser.screenshot(ARTIFACTS / f"{name}.png", full_page=True)
    return facts


@pytest.mark.parametrize("history_days", [0, 40])
def test_status_pages_render(tmp_path, history_days):
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    store = ResultsStore(f"sqlite:///{tmp_path / 'results.db'}")
    if history_days:
        load(store, uptime_rows(ENDPOINTS, days=history_days, now=now - timedelta(minutes=35), stamp=stamp_for(store),
                                outages=2))
    sweeps(store, now, 7, failing="api-health")
    label = "day-one" if not history_days else f"{history_days}-days"
    checks = [Monitored(n, n != "admin-login") for n in ENDPOINTS]

    page = shoot(tmp_path, f"status-page-{label}", render_status_page(
        status_page_data(store, checks, [], now=now), reports=[]))
    assert page["overflow"] <= 0, "no horizontal scrolling at 1400 px"
    since_first = f"since {(now - timedelta(minutes=30)):%-d %b}, 7 checks"
    if history_days:
        assert since_first not in page["text"] and f"since {(now - timedelta(days=40, minutes=35)):%-d %b}" in page["text"]
    else:
        assert page["text"].count(since_first) == 3 * len(ENDPOINTS), "7 d, 30 d and 90 d of every check"
    assert "64 days" in page["text"] and "4 days" in page["text"], "TLS certificate days left per endpoint"

    series = store.response_times("homepage", now - timedelta(hours=24))
    detail = shoot(tmp_path, f"status-check-{label}", render_check_page(
        "homepage", series, now, facts=check_facts(store, "homepage", now)), width=1000)
    width, dots = detail["chart"]
    assert width == 900 and dots == (len(series) if len(series) <= 600 else 0)
    assert "64 days" in detail["text"] and "UTC" in detail["text"]

    public = shoot(tmp_path, f"public-status-page-{label}", public_page(store, config(), now), width=1000)
    assert "admin-login" not in public["text"] and "api-health is down." in public["text"]
    assert "example.org/api" not in public["text"] and "HTTP 503" not in public["text"]


def test_report_list_renders(tmp_path):
    from maintenance.reports import publish
    from maintenance.reports.render import render_report_list

    folder = tmp_path / "reports"
    for kind, label in (("weekly", "2026-W48"), ("monthly", "2026-11"), ("weekly", "2026-W49")):
        publish.write_folder(folder, publish.report_name("example.org", kind, label), "<p>report</p>" * 400)
    page = shoot(tmp_path, "report-list", render_report_list(publish.list_folder(folder)), width=1000)
    lines = [line for line in page["text"].splitlines() if line.startswith("example.org-")]
    assert [line.split("\t")[0] for line in lines] == ["example.org-weekly-2026-W49.html", "example.org-monthly-2026-11.html",
                                                       "example.org-weekly-2026-W48.html"]
    assert all(line.endswith("5 KB") for line in lines), lines
