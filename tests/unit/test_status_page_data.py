"""The status page as an Uptime Kuma user reads it (issue 17, items 10 and 12): windows older than
the data say since when they count, today's p95, the current response time and the TLS
certificate's days left per endpoint, a drill-down chart with axes and readable points; and the
report links Slack gets (never file:///), the reports the status-page app lists and serves."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from maintenance.reports import publish
from maintenance.reports.data import Monitored, check_facts, status_page_data
from maintenance.reports.render import render_check_page, render_status_page
from maintenance.results import CheckResult, ResultsStore
from report_fixtures import load, stamp_for, uptime_rows

UTC = timezone.utc
NOW = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)


def sweep(store: ResultsStore, at: datetime, *, ms: float, tls: float | None = 41.6, status: str = "ok",
          name: str = "homepage") -> None:
    store.record([CheckResult(check=name, status=status, summary=f"HTTP 200 in {ms:.0f} ms", target="https://example.org/",
                              metrics={"response_ms": ms if status != "fail" else None, "status_code": 200,
                                       "tls_days_left": tls}, time=at)])


@pytest.fixture
def day_one(tmp_path):
    """Installed today at 13:30: seven sweeps, 5 minutes apart."""
    store = ResultsStore(f"sqlite:///{tmp_path / 'day-one.db'}")
    for i, ms in enumerate([120, 130, 110, 400, 125, 118, 122]):
        sweep(store, NOW - timedelta(minutes=30 - 5 * i), ms=ms)
    return store


def test_windows_older_than_the_data_say_since_when_they_count(day_one):
    data = status_page_data(day_one, [Monitored("homepage")], [], now=NOW)
    check = data["checks"][0]
    for window in ("24h", "7d", "30d", "90d"):
        assert check["uptime"][window] == 100.0
        assert check["partial"][window] == {"since": NOW - timedelta(minutes=30), "counted": 7}, window
    html = render_status_page(data, reports=[])
    cells = re.findall(r'data-window="(\w+)">([^<]*)<div class="muted since">([^<]*)</div>', html)
    assert "from tomorrow</span>" in html, "p95 per day: no finished day yet"
    assert [(w, text) for w, _, text in cells] == [("24h", "since 6 Dec 13:30, 7 checks"), ("7d", "since 6 Dec, 7 checks"),
                                                    ("30d", "since 6 Dec, 7 checks"), ("90d", "since 6 Dec, 7 checks")]


def test_a_status_page_shorter_than_30_days(day_one):
    """reports.status_page_days may be 7 to 400."""
    data = status_page_data(day_one, [Monitored("homepage")], [], now=NOW, days=7)
    assert set(data["checks"][0]["partial"]) == {"24h", "7d", "30d"}
    assert data["checks"][0]["partial"]["30d"]["counted"] == 7
    assert "since 6 Dec, 7 checks" in render_status_page(data, reports=[])


def test_full_windows_say_nothing_more(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'old.db'}")
    load(store, uptime_rows(["homepage"], days=95, now=NOW - timedelta(minutes=5), stamp=stamp_for(store)))
    data = status_page_data(store, [Monitored("homepage")], [], now=NOW)
    assert data["checks"][0]["partial"] == {"24h": None, "7d": None, "30d": None, "90d": None}
    assert 'class="muted since"' not in render_status_page(data, reports=[])


def test_forty_days_of_data_are_a_partial_90_day_window(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'forty.db'}")
    load(store, uptime_rows(["homepage"], days=40, now=NOW - timedelta(minutes=5), stamp=stamp_for(store)))
    data = status_page_data(store, [Monitored("homepage")], [], now=NOW)
    partial = data["checks"][0]["partial"]
    assert partial["24h"] is None and partial["7d"] is None and partial["30d"] is None
    assert partial["90d"]["since"] == NOW - timedelta(days=40, minutes=5)
    rows = [r for r in store.history("homepage") if r["status"] != "skipped" and not r["in_maintenance"]]
    assert partial["90d"]["counted"] == len(rows)


def test_current_response_time_todays_p95_and_tls_days(day_one):
    sweep(day_one, NOW - timedelta(days=1), ms=9000)     # yesterday: not in today's p95
    data = status_page_data(day_one, [Monitored("homepage")], [], now=NOW)
    check = data["checks"][0]
    assert check["response_ms"] == 122
    assert check["today_p95"] == 400                      # nearest rank of 7 values
    assert check["tls_days_left"] == 41.6
    row = render_status_page(data, reports=[]).split('data-check="homepage"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num nowrap response-now">122 ms</td>' in row
    assert '<td class="num nowrap p95-today">400 ms</td>' in row
    assert "42 days</span>" in row


def test_unknown_tls_and_response_show_a_dash(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'down.db'}")
    sweep(store, NOW - timedelta(minutes=1), ms=0, tls=None, status="fail")
    data = status_page_data(store, [Monitored("homepage")], [], now=NOW)
    check = data["checks"][0]
    assert check["response_ms"] is None and check["today_p95"] is None and check["tls_days_left"] is None
    row = render_status_page(data, reports=[]).split('data-check="homepage"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num nowrap response-now">-</td>' in row and '<td class="num nowrap tls-days">-</td>' in row


def test_check_page_chart_has_axes_and_a_dot_per_result(day_one):
    series = day_one.response_times("homepage", NOW - timedelta(hours=24))
    html = render_check_page("homepage", series, NOW, facts=check_facts(day_one, "homepage", NOW))
    chart = html.split('id="response-chart"', 1)[1].split("</svg>", 1)[0]
    y_labels = re.findall(r'text-anchor="end">([\d,]+)</text>', chart.split('class="x-axis"')[0])
    assert y_labels[0] == "0" and int(y_labels[-1].replace(",", "")) >= 400, y_labels
    steps = {int(b.replace(",", "")) - int(a.replace(",", "")) for a, b in zip(y_labels, y_labels[1:])}
    assert len(steps) == 1, "round, even steps"
    x_labels = re.findall(r'text-anchor="middle">([^<]+)</text>', chart.split('class="x-axis"')[1])
    assert x_labels == ["13:10", "13:20", "13:30", "13:40", "13:50", "14:00"], "day one: from an hour before now"
    assert "7 results, the first at 06 Dec 13:30 UTC;" in html
    dots = re.findall(r"<circle [^>]*><title>([^<]+)</title>", chart)
    assert len(dots) == 7 and dots[3] == "13:45 UTC: 400 ms"
    facts = html.split('id="facts"', 1)[1].split("</div>\n</div>", 1)[0]
    assert "122 ms" in facts and "400 ms" in facts and "42 days" in facts


def test_a_full_day_chart_has_three_hourly_ticks_and_the_date_at_midnight(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'day.db'}")
    load(store, uptime_rows(["homepage"], days=2, now=NOW, stamp=stamp_for(store)))
    html = render_check_page("homepage", store.response_times("homepage", NOW - timedelta(hours=24)), NOW)
    chart = html.split('id="response-chart"', 1)[1].split("</svg>", 1)[0]
    x_labels = re.findall(r'text-anchor="middle">([^<]+)</text>', chart.split('class="x-axis"')[1])
    assert x_labels == ["15:00", "18:00", "21:00", "06 Dec", "03:00", "06:00", "09:00", "12:00"]
    assert len(re.findall(r"<circle ", chart)) == 288 and "the first at" not in html


def test_report_links_are_the_status_app_never_a_file(tmp_path):
    name = publish.report_name("example.org", "weekly", "2026-W49")
    done = publish.write_folder(tmp_path, name, "<html>r</html>", ui_base="https://airflow.example.org/")
    assert done.link == "https://airflow.example.org/maintenance-status/reports/weekly/example.org-weekly-2026-W49.html"
    assert not done.link.startswith("file:")
    assert done.location == str(tmp_path / name)
    served = publish.write_folder(tmp_path, name, "<html>r</html>", link_base="https://r2.example.org/ops/")
    assert served.link == f"https://r2.example.org/ops/{name}"


def test_folder_reports_are_listed_newest_first_and_read_by_name_only(tmp_path):
    for label in ("2026-W48", "2026-W49"):
        publish.write_folder(tmp_path, publish.report_name("example.org", "weekly", label), f"<p>{label}</p>")
        publish.write_file(tmp_path / "weekly" / "notes.txt", "not a report")
    listed = publish.list_folder(tmp_path)
    assert [r["name"] for r in listed] == ["weekly/example.org-weekly-2026-W49.html",
                                           "weekly/example.org-weekly-2026-W48.html"]
    assert publish.read_folder(tmp_path, "weekly", "example.org-weekly-2026-W48.html") == "<p>2026-W48</p>"
    (tmp_path / "secret.html").write_text("outside")
    for kind, file in (("weekly", "../secret.html"), ("..", "secret.html"), ("weekly", "notes.txt"),
                       ("daily", "x.html"), ("weekly", "missing.html")):
        assert publish.read_folder(tmp_path, kind, file) is None, (kind, file)


def test_bucket_reports_are_listed_and_read(moto_url):
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    s3.create_bucket(Bucket="ops-list")
    publish.upload_s3(s3, "ops-list", "reports/", "monthly/example.org-monthly-2026-11.html", "<p>nov</p>")
    s3.put_object(Bucket="ops-list", Key="reports/monthly/readme.txt", Body=b"x")
    assert [r["name"] for r in publish.list_s3(s3, "ops-list", "reports/")] == ["monthly/example.org-monthly-2026-11.html"]
    assert publish.read_s3(s3, "ops-list", "reports/", "monthly", "example.org-monthly-2026-11.html") == "<p>nov</p>"
    assert publish.read_s3(s3, "ops-list", "reports/", "monthly", "example.org-monthly-2026-10.html") is None


def test_todays_figures_follow_new_and_late_results(day_one):
    from maintenance.reports.data import today_details

    first = today_details(day_one, ["homepage"], NOW)["homepage"]
    assert (first["p95_ms"], first["samples"], first["tls_days_left"]) == (400, 7, 41.6)
    sweep(day_one, NOW + timedelta(minutes=5), ms=900, tls=40.0)            # the next sweep
    sweep(day_one, NOW - timedelta(minutes=2), ms=950, tls=None)            # made earlier, stored late
    later = today_details(day_one, ["homepage"], NOW + timedelta(minutes=6))["homepage"]
    assert (later["p95_ms"], later["samples"], later["tls_days_left"]) == (950, 9, 40.0)
    again = today_details(day_one, ["homepage"], NOW + timedelta(minutes=30))["homepage"]
    assert (again["p95_ms"], again["samples"]) == (950, 9), "settled results are kept, not read twice"
    tomorrow = today_details(day_one, ["homepage"], NOW + timedelta(days=1))
    assert tomorrow == {}, "a new day starts empty"
