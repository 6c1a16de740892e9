"""Report data and rendering over a results store filled with 30 days of generated results.

Figures are cross-checked against the raw rows with independent code (the daily uptime
report's incidents() and plain counting), charts are decoded as PNG images, and a store
without Sentry/backups/Web Vitals/findings/analytics gets a note in each of those sections.
"""

from __future__ import annotations

import base64
import io
import os
import re
import time
from datetime import datetime, timedelta, timezone

import pytest

from maintenance.checks.uptime_report import incidents as raw_incidents
from maintenance.config import MaintenanceWindow
from maintenance.reports import publish
from maintenance.reports.data import Monitored, report_data, report_period
from maintenance.reports.render import render_report
from maintenance.results import CheckResult, ResultsStore
from report_fixtures import daily_family_results, load, stamp_for, uptime_rows

UTC = timezone.utc
NOW = datetime(2026, 5, 1, 5, 0, tzinfo=UTC)          # the monthly run: April; the weekly: 24-30 April
ENDPOINTS = ["homepage", "api-health", "admin-login", "payments-health"]
CHECKS = [Monitored(n, n != "admin-login") for n in ENDPOINTS]
WINDOW = (datetime(2026, 4, 27, 2, 0, tzinfo=UTC), datetime(2026, 4, 27, 4, 0, tzinfo=UTC))
MAINTENANCE = [MaintenanceWindow(start=WINDOW[0], duration=timedelta(hours=2), endpoints=["homepage"],
                                 reason="region migration")]


def fill(store: ResultsStore, *, families: bool = True) -> None:
    load(store, uptime_rows(ENDPOINTS, days=30, now=NOW - timedelta(hours=5), stamp=stamp_for(store), outages=3,
                            maintenance=WINDOW, maintenance_checks={"homepage"}))
    if families:
        store.record(daily_family_results(days=30, now=NOW))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = ResultsStore(f"sqlite:///{tmp_path_factory.mktemp('reports') / 'results.db'}")
    fill(store)
    return store


@pytest.fixture(scope="module")
def reports(store):
    return {kind: report_data(store, kind, checks=CHECKS, site="example.org", now=NOW, target_percent=99.5,
                              windows=MAINTENANCE) for kind in ("weekly", "monthly")}


def images(html: str) -> list[tuple[str, bytes, int, int]]:
    found = []
    for match in re.finditer(r'<img class="chart[^"]*"(?: id="[^"]*")? src="data:image/png;base64,([^"]+)" '
                             r'width="(\d+)" height="(\d+)" alt="([^"]*)"', html):
        found.append((match.group(4), base64.b64decode(match.group(1)), int(match.group(2)), int(match.group(3))))
    return found


def test_periods():
    assert report_period("weekly", NOW)[:2] == (datetime(2026, 4, 24, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))
    assert report_period("weekly", NOW)[2] == "2026-W17"
    assert report_period("monthly", NOW) == (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC), "2026-04")
    assert report_period("monthly", datetime(2026, 1, 1, 5, tzinfo=UTC))[2] == "2025-12"


def test_uptime_figures_match_the_raw_results(store, reports):
    """Rollups + SQL incidents against a plain count and the daily report's incidents() over raw rows."""
    report = reports["monthly"]
    start, end = report["start"], report["end"]
    for endpoint in report["uptime"]["endpoints"]:
        rows = [r for r in store.history(endpoint["name"], since=start) if r["checked_at"] < end]
        counted = [r for r in rows if r["status"] != "skipped" and not r["in_maintenance"]]
        up = sum(1 for r in counted if r["status"] != "fail")
        assert endpoint["counted"] == len(counted)
        assert endpoint["uptime_percent"] == pytest.approx(100 * up / len(counted))
        assert endpoint["maintenance"] == (24 if endpoint["name"] == "homepage" else 0)   # 2 h of 5-minute checks
        expected = raw_incidents(counted, now=NOW)
        got = endpoint["incidents"]
        assert [(i["start"], i["end"]) for i in got] == [(i["start"], i["end"]) for i in expected]
        assert [i["failures"] for i in got] == [i["checks"] for i in expected]
        closed = [i["duration_s"] for i in expected if i["end"]]
        assert endpoint["downtime_s"] == pytest.approx(sum(i["duration_s"] for i in expected))
        assert endpoint["longest_s"] == pytest.approx(max((i["duration_s"] for i in expected), default=0))
        if closed:
            assert endpoint["mttr_s"] == pytest.approx(sum(closed) / len(closed))
        for day in endpoint["days"]:   # p95 per day from the rollup == nearest rank over the raw day
            times = sorted(r["metrics"]["response_ms"] for r in counted if r["checked_at"].date() == day["day"]
                           and r["metrics"].get("response_ms") is not None)
            assert day["p95_ms"] == times[min(len(times) - 1, round(0.95 * len(times) + 0.5) - 1)]
    assert report["uptime"]["incidents"], "the generated outages show as incidents"


@pytest.mark.parametrize("kind", ["weekly", "monthly"])
def test_report_renders_every_chart_as_a_png_of_its_size(reports, kind):
    from PIL import Image

    html = render_report(reports[kind])
    found = images(html)
    titles = [t for t, *_ in found]
    assert titles[0] == "Daily uptime per endpoint"
    assert [t for t in titles if t.startswith("Response time per day")] == \
        [f"Response time per day: {n}" for n in ENDPOINTS]
    assert "Error events per day (Sentry)" in titles and "Newest backup snapshot age per day" in titles
    for title, png, width, height in found:
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG" and image.size == (width, height), title
        assert width == 900 and height >= 200
        assert len(set(image.convert("RGB").getdata())) > 8, f"{title}: a blank image"
    assert "http://" not in html.replace("http://www.w3.org", "") and "<script" not in html, "self-contained"
    report = reports[kind]
    assert f"{report['uptime']['overall_percent']:.2f}%" in html
    assert "How uptime is counted." in html and "maintenance window" in html
    assert "region migration" in html, "the period's maintenance window is listed"
    assert ("<h2>Summary</h2>" in html) == (kind == "monthly")
    for incident in report["uptime"]["incidents"][:3]:
        assert f"{incident['start']:%Y-%m-%d %H:%M} UTC" in html
    assert "Content-Security-Policy missing" in html, "an open security finding is listed"
    # Web Vitals rated (report_fixtures: LCP 2100 ms good, INP 260 ms needs improvement, CLS 0.05 good)
    cwv = html.split('<section id="cwv">', 1)[1].split("</section>", 1)[0]
    assert '2,100 ms <span class="badge b-good">good</span>' in cwv
    assert '260 ms <span class="badge b-needs-improvement">needs improvement</span>' in cwv


def test_monthly_director_summary(reports):
    summary = reports["monthly"]["summary"]
    up = reports["monthly"]["uptime"]
    assert summary.startswith(f"In April 2026 the site was available {up['overall_percent']:.2f}%")
    assert "target of 99.5%" in summary and f"There were {len(up['incidents'])} incident(s)" in summary
    assert "Backups were verified by a restore test" in summary
    assert "1 critical finding(s) remain open (security.headers)" in summary


def test_missing_sections_degrade_to_notes(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'bare.db'}")
    fill(store, families=False)
    data = report_data(store, "weekly", checks=CHECKS, site="example.org", now=NOW)
    assert data["errors"] is None and data["backups"] is None and data["cwv"] is None
    assert data["findings"]["scanned"] is False and data["findings"]["open"] == []
    html = render_report(data)
    for note in ("No Sentry results are stored", "No Core Web Vitals results", "No backup results are stored",
                 "No dependency or security scan ran in this period, so nothing was scanned",
                 "No traffic analytics for this period",
                 "No app analytics for this period"):
        assert note in html
    assert [t for t, *_ in images(html)][:1] == ["Daily uptime per endpoint"], "uptime still charted"


def test_no_results_at_all_says_so(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'empty.db'}")
    data = report_data(store, "monthly", checks=CHECKS, site="example.org", now=NOW)
    assert data["uptime"]["overall_percent"] is None
    assert "no uptime results were stored" in data["summary"]
    html = render_report(data)
    assert "no data" in html


def test_placeholder_results_do_not_count_as_a_scan(tmp_path):
    from maintenance.results import not_implemented

    store = ResultsStore(f"sqlite:///{tmp_path / 'p.db'}")
    store.record([not_implemented("security.scan", "security", "x"), not_implemented("dependencies.monthly",
                                                                                       "dependencies", "y")])
    data = report_data(store, "weekly", checks=CHECKS, site="s", now=datetime.now(UTC))
    assert data["findings"]["scanned"] is False


def vulnerability_scan(status, at, *, fixed_in="15.0.3", severity="critical"):
    finding = {"package": "next", "installed": "15.0.1", "fixed_in": fixed_in, "severity": severity,
               "advisory": "GHSA-next-1"}
    return CheckResult(check="dependencies.vulnerabilities.app", group="dependencies", status=status, time=at,
                       summary=f"app: 1 open vulnerability ({severity})", evidence={"findings": [finding]},
                       metrics={"vulnerabilities": 1, f"sev_{severity}": 1})


def test_an_open_critical_finding_stays_in_the_reports_whatever_the_latest_status(tmp_path):
    """Alerted once (fail), then stored as a warn by the next scan: still present, still open."""
    from maintenance.operators.reports import announcement

    store = ResultsStore(f"sqlite:///{tmp_path / 'f.db'}")
    fill(store, families=False)
    store.record([vulnerability_scan("fail", datetime(2026, 4, 20, 4, tzinfo=UTC)),
                  vulnerability_scan("warn", datetime(2026, 4, 27, 4, tzinfo=UTC)),
                  # a moderate one with a fix, and a critical without: open, not critical
                  CheckResult(check="dependencies.vulnerabilities.api", group="dependencies", status="warn",
                              summary="api: 1 open", time=datetime(2026, 4, 27, 4, tzinfo=UTC),
                              evidence={"findings": [{"severity": "moderate", "fixed_in": "1.1"},
                                                     {"severity": "critical", "fixed_in": None}]})])
    weekly, monthly = (report_data(store, kind, checks=CHECKS, site="s", now=NOW) for kind in ("weekly", "monthly"))
    assert [r["check_name"] for r in weekly["findings"]["critical_open"]] == ["dependencies.vulnerabilities.app"]
    assert len(weekly["findings"]["open"]) == 2
    assert "1 critical finding(s) open" in announcement(weekly, "https://r.example/w.html")
    assert "1 critical finding(s) remain open (dependencies.vulnerabilities.app)." in monthly["summary"]
    assert "No critical security or dependency finding is open" not in monthly["summary"]


def test_findings_dated_after_the_period_are_not_in_its_report(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'a.db'}")
    fill(store, families=False)
    store.record([vulnerability_scan("ok", datetime(2026, 4, 27, 4, tzinfo=UTC), severity="low"),
                  vulnerability_scan("fail", datetime(2026, 5, 1, 4, 30, tzinfo=UTC))])   # after 1 May 00:00
    data = report_data(store, "weekly", checks=CHECKS, site="s", now=NOW)
    assert data["findings"]["scanned"] and data["findings"]["critical_open"] == []
    assert "critical finding" not in data["summary"] and "No critical security or dependency finding" in data["summary"]


def test_no_scan_configured_says_nothing_was_scanned(tmp_path):
    from maintenance.results import not_configured

    store = ResultsStore(f"sqlite:///{tmp_path / 'n.db'}")
    fill(store, families=False)
    store.record([CheckResult(**{**not_configured("dependencies.scan", "dependencies", "add a dependencies: "
                                                  "section").__dict__, "time": datetime(2026, 4, 20, tzinfo=UTC)}),
                  CheckResult(check="audit.credentials.atlas", group="audit", status="ok", summary="atlas: ok",
                              time=datetime(2026, 4, 20, tzinfo=UTC))])
    data = report_data(store, "monthly", checks=CHECKS, site="s", now=NOW)
    assert "No dependency or security scan is configured, so nothing was scanned" in data["summary"]
    assert "No critical security or dependency finding is open" not in data["summary"]
    html = render_report(data)
    findings = html.split('<section id="findings">', 1)[1].split("</section>", 1)[0]
    assert "nothing was scanned" in findings and "No open findings" not in findings


def test_late_result_rolls_its_day_up_again(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'late.db'}")
    day = datetime(2026, 4, 10, 12, tzinfo=UTC)
    store.record([CheckResult(check="homepage", status="ok", summary="ok", time=day)])
    store.roll_up(day.date(), now=NOW)
    assert [r["down"] for r in store.daily(day.date(), ["homepage"])][:1] == [0]
    store.record([CheckResult(check="homepage", status="fail", summary="late", time=day + timedelta(minutes=5))])
    store.roll_up(day.date(), now=NOW)
    assert [r["down"] for r in store.daily(day.date(), ["homepage"])][:1] == [1]


def test_publish_to_a_folder_and_prune(tmp_path):
    name = publish.report_name("example.org", "weekly", "2026-W17")
    assert name == "weekly/example.org-weekly-2026-W17.html"
    done = publish.write_folder(tmp_path, name, "<html>r</html>", link_base="https://reports.example.org/ops/")
    assert done.link == "https://reports.example.org/ops/weekly/example.org-weekly-2026-W17.html"
    assert (tmp_path / name).read_text() == "<html>r</html>"
    old = tmp_path / "monthly" / "example.org-monthly-2025-01.html"
    old.parent.mkdir()
    old.write_text("old")
    stranger = tmp_path / "monthly" / "notes.txt"
    stranger.write_text("not a report")
    ancient = time.time() - 500 * 86400
    os.utime(old, (ancient, ancient))
    os.utime(stranger, (ancient, ancient))
    removed = publish.prune_folder(tmp_path, timedelta(days=400), datetime.now(UTC))
    assert removed == ["monthly/example.org-monthly-2025-01.html"]
    assert not old.exists() and stranger.exists() and (tmp_path / name).exists()


def rgb_pixels(png: bytes) -> list[tuple[int, int, int]]:
    from PIL import Image

    return list(Image.open(io.BytesIO(png)).convert("RGB").getdata())


RED_RGB = (0xd6, 0x45, 0x41)


@pytest.mark.parametrize("kind,spikes", [("weekly", 0), ("monthly", 1)])
def test_error_bars_are_red_only_on_spike_days(reports, kind, spikes):
    """report_fixtures: one error-rate spike, 9 days before the 1st (in April, not in the last week)."""
    report = reports[kind]
    assert len(report["errors"]["spikes"]) == spikes and len(report["errors"]["alert_days"]) == spikes
    (png,) = [png for title, png, *_ in images(render_report(report)) if title == "Error events per day (Sentry)"]
    red = sum(1 for p in rgb_pixels(png) if p == RED_RGB)
    assert (red > 200) == bool(spikes), f"{red} red pixels"


def test_chart_legends_sit_above_the_plot(reports):
    """No legend text inside the plot area: the dark pixels there are the axes' own frame only."""
    from PIL import Image

    (png,) = [png for title, png, *_ in images(render_report(reports["weekly"])) if title.endswith(": homepage")]
    image = Image.open(io.BytesIO(png)).convert("L")
    width, height = image.size
    # the axes: (0.07, 0.2, 0.9, 0.65) of the figure; look inside its frame, top third, left half
    left, right = int(width * 0.07) + 4, int(width * 0.52)
    top, bottom = int(height * (1 - 0.85)) + 4, int(height * (1 - 0.85) + height * 0.65 / 3)
    dark = sum(1 for x in range(left, right) for y in range(top, bottom) if image.getpixel((x, y)) < 80)
    assert dark == 0, f"{dark} dark pixels (legend text) inside the plot"


def test_a_period_without_data_draws_no_chart_and_no_data_is_not_red(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'none.db'}")
    data = report_data(store, "weekly", checks=CHECKS, site="example.org", now=NOW)
    html = render_report(data)
    assert images(html) == [], "no empty chart (no 0.00-0.04 axis)"
    assert "No uptime data yet for this period" in html and "No response times yet for homepage" in html
    assert '<b class="">no data</b>' in html and '<b class="down">no data</b>' not in html
    from maintenance.operators.reports import announcement
    line = announcement(data, "https://r.example/w.html")
    assert "no uptime check was counted" in line and "0 incident(s)" not in line


def test_a_period_that_includes_today_counts_today(tmp_path):
    """Today is not rolled up yet: counted live, so "no data, 0 checks" never sits beside today's incident."""
    store = ResultsStore(f"sqlite:///{tmp_path / 'today.db'}")
    now = datetime(2026, 5, 6, 12, 0, tzinfo=UTC)
    rows = [CheckResult(check="homepage", status="ok" if not 10 <= i < 13 else "fail", summary="homepage: HTTP 503",
                        reason=None if not 10 <= i < 13 else "http_5xx", time=now - timedelta(minutes=5 * (40 - i)))
            for i in range(40)]
    store.record(rows)
    data = report_data(store, "weekly", checks=[Monitored("homepage")], site="s", now=now, at=now + timedelta(days=1))
    (endpoint,) = data["uptime"]["endpoints"]
    assert endpoint["counted"] == 40 and endpoint["down"] == 3 and len(endpoint["incidents"]) == 1
    assert endpoint["days"][-1]["day"] == now.date() and endpoint["days"][-1]["percent"] == pytest.approx(92.5)
    html = render_report(data)
    assert "92.50%" in html and "no data" not in html.split('<section id="uptime">')[1].split("</table>")[0]


def test_incident_reasons_are_not_doubled(reports):
    html = render_report(reports["weekly"])
    incidents = html.split("<h3>Incidents</h3>", 1)[1].split("</table>", 1)[0]
    assert re.search(r"<td>(timeout|http_5xx|refused|condition)</td>", incidents)
    assert not re.search(r"(http_5xx|refused|timeout|condition): [a-z-]+: \1", incidents), "reason: name: reason"

def test_the_weekly_charts_mark_the_verified_deploys(tmp_path):
    """Issue 19: each deploy.verdict of the period is a dotted line on the response-time and error charts."""
    from maintenance.checks.deploys import GROUP, VERDICT_CHECK
    from maintenance.reports.render import build_charts

    store = ResultsStore(f"sqlite:///{tmp_path / 'deploys.db'}")
    fill(store)
    plain = report_data(store, "weekly", checks=CHECKS, site="example.org", now=NOW)
    store.record([CheckResult(check=VERDICT_CHECK, group=GROUP, status=status, reason=reason, summary=f"deploy {uid}",
                              evidence={"uid": uid, "sha": "abc1234def"}, time=at)
                  for uid, status, reason, at in (
                      ("dpl_ok", "ok", "healthy", datetime(2026, 4, 26, 12, 0, tzinfo=UTC)),
                      ("dpl_bad", "fail", "regressed", datetime(2026, 4, 28, 9, 0, tzinfo=UTC)),
                      ("dpl_old", "ok", "healthy", datetime(2026, 4, 10, 9, 0, tzinfo=UTC)))])   # before the week
    marked = report_data(store, "weekly", checks=CHECKS, site="example.org", now=NOW)
    assert [(d["uid"], d["verdict"]) for d in marked["deploys"]] == [("dpl_bad", "regressed"), ("dpl_ok", "healthy")]
    before, after = build_charts(plain), build_charts(marked)
    assert after["response"][0].png != before["response"][0].png and after["errors"].png != before["errors"].png
    assert after["uptime"].png == before["uptime"].png, "only the response-time and error charts are marked"
