"""The weekly report as a reader sees it, in headless Chromium: with report_fixtures' month of
data (every chart drawn at its size, nothing red on a normal day), and on day one (a few minutes
of results: today counted, no empty chart, "no data" not red). Screenshots in test-artifacts/."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from browser import ARTIFACTS, Browser, chromium
from maintenance.reports.data import Monitored, report_data
from maintenance.reports.render import render_report
from maintenance.results import CheckResult, ResultsStore
from report_fixtures import daily_family_results, load, stamp_for, uptime_rows

UTC = timezone.utc
NOW = datetime(2026, 5, 1, 5, 0, tzinfo=UTC)
ENDPOINTS = ["homepage", "api-health", "admin-login", "payments-health"]
needs_chromium = pytest.mark.skipif(chromium() is None, reason="chromium is not installed (.ci/run installs it)")

IMAGES = ("Array.from(document.querySelectorAll('img.chart')).map(i => [i.alt, i.complete, i.naturalWidth, "
          "i.naturalHeight, i.width, i.height])")
KPI = ("(() => { const b = document.querySelector('.kpi b'); "
       "return [b.innerText, getComputedStyle(b).color]; })()")
RED = "rgb(214, 69, 65)"   # _base.html.j2 --fail


@needs_chromium
def test_weekly_report_with_data_and_on_day_one_in_chromium(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'month.db'}")
    load(store, uptime_rows(ENDPOINTS, days=30, now=NOW - timedelta(hours=5), stamp=stamp_for(store), outages=3))
    store.record(daily_family_results(days=30, now=NOW))
    checks = [Monitored(n, n != "admin-login") for n in ENDPOINTS]
    (tmp_path / "weekly.html").write_text(render_report(
        report_data(store, "weekly", checks=checks, site="example.org", now=NOW)))

    first = ResultsStore(f"sqlite:///{tmp_path / 'first.db'}")
    now = datetime.now(UTC)
    first.record([CheckResult(check=n, status="ok", summary=f"{n}: HTTP 200", time=now - timedelta(minutes=m))
                  for n in ENDPOINTS[:2] for m in range(3)])
    day_one = report_data(first, "weekly", checks=checks[:2], site="example.org", now=now, at=now + timedelta(days=1))
    (tmp_path / "day-one.html").write_text(render_report(day_one))
    empty = ResultsStore(f"sqlite:///{tmp_path / 'empty.db'}")
    (tmp_path / "empty.html").write_text(render_report(
        report_data(empty, "weekly", checks=checks[:2], site="example.org", now=now)))

    with Browser(1280, 900) as browser:
        browser.open(f"file://{tmp_path / 'weekly.html'}")
        shown = browser.evaluate(IMAGES)
        assert [s[0] for s in shown][:2] == ["Daily uptime per endpoint", "Response time per day: homepage"]
        assert all(complete and nw == w and nh == h for _, complete, nw, nh, w, h in shown), shown
        text, color = browser.evaluate(KPI)
        assert text.endswith("%") and color != RED
        browser.screenshot(ARTIFACTS / "report-weekly-with-data.png", full_page=True)

        browser.open(f"file://{tmp_path / 'day-one.html'}")
        assert [s[0] for s in browser.evaluate(IMAGES)] == ["Daily uptime per endpoint"], "no empty response chart"
        body = browser.evaluate("document.body.innerText")
        assert "No response times yet for homepage, api-health" in body and "100.00%" in body
        browser.screenshot(ARTIFACTS / "report-weekly-day-one.png", full_page=True)

        browser.open(f"file://{tmp_path / 'empty.html'}")
        assert browser.evaluate(IMAGES) == []
        text, color = browser.evaluate(KPI)
        assert text == "no data" and color != RED, color
