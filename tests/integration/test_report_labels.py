"""Outside text in the report's charts (issue 18 item 7): page paths any visitor can create and
the app's event and action names are drawn as plain text, never parsed as mathtext; a label the
renderer cannot draw at all costs its chart (a placeholder says so), never the report."""

from __future__ import annotations

import base64
import io
import re
from datetime import timedelta

import pytest
from mongo_fixtures import mongo_auth_server, mongo_default_conn, mongo_server_factory  # noqa: F401
from PIL import Image

import analytics_servers
from analytics_servers import PlausibleServer
from maintenance.config import MaintenanceConfig
from maintenance.operators.analytics import app_analytics, traffic_analytics
from maintenance.reports import charts
from maintenance.results import ResultsStore

from integration.test_app_analytics import APP, spread
from integration.test_analytics import END, START

MATH_PAGES = ["/search/$\\x$", "/q/$^$", "/a$b"]
MATH_EVENTS = ["$^$", "gala $\\frac{1}$"]


def charts_in(html: str) -> dict[str, Image.Image]:
    found = {}
    for src, width, height, title in re.findall(
            r'src="data:image/png;base64,([^"]+)" width="(\d+)" height="(\d+)" alt="([^"]*)"', html):
        image = Image.open(io.BytesIO(base64.b64decode(src)))
        assert image.size == (int(width), int(height)), title
        found[title] = image
    return found


def test_a_report_with_mathtext_labels_is_written_with_its_charts(mongo_default_conn, monkeypatch, tmp_path):  # noqa: F811
    from maintenance.reports.data import Monitored, report_data
    from maintenance.reports.render import render_report

    for page in MATH_PAGES:
        monkeypatch.setitem(analytics_servers.PAGES, page, 4)
    mongo_default_conn.seed("app", "registrations", [{"created_at": t, "event_slug": MATH_EVENTS[i % 2]}
                                                     for i, t in enumerate(spread(START, 20))])
    mongo_default_conn.seed("app", "audit", [{"at": t, "action": "$x^{$", "admin": "$_$"} for t in spread(START, 3)])
    config = MaintenanceConfig.model_validate({
        "site": {"name": "example.org", "url": "https://example.org"},
        "analytics": {"plausible": {"site_id": "example.org", "top": 10},
                      "app": {k: v for k, v in APP.items() if k not in ("signups", "donations")}}})
    with PlausibleServer() as plausible:
        monkeypatch.setenv("AIRFLOW_CONN_PLAUSIBLE_API", plausible.connection_json())
        results = traffic_analytics(config, "weekly", START, END) + app_analytics(config, "weekly", START, END)
    assert {r.status for r in results} <= {"ok", "warn"}, [r.summary for r in results]
    for result in results:
        result.time = END + timedelta(hours=4)
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    store.record(results)
    html = render_report(report_data(store, "weekly", checks=[Monitored("homepage")], site="example.org",
                                     now=END + timedelta(hours=4, minutes=5)))
    drawn = charts_in(html)
    assert {"Top pages (page views)", "Event registrations per event", "Admin actions by type"} <= set(drawn)


@pytest.mark.parametrize("label", MATH_PAGES + MATH_EVENTS)
def test_a_mathtext_label_is_drawn_as_plain_text(label):
    chart = charts.ranking("Top pages (page views)", [label, "/"], [5, 3])
    plain = charts.ranking("Top pages (page views)", ["/", "/"], [5, 3])
    assert chart.png != plain.png and Image.open(io.BytesIO(chart.png)).size == (chart.width, chart.height)


def test_a_label_the_renderer_cannot_draw_costs_only_its_chart():
    # A lone surrogate (JSON's "\ud800") is refused by the font renderer itself.
    chart = charts.ranking("Top pages (page views)", ["/x\ud800", "/"], [5, 3])
    assert chart.title == "Top pages (page views)"
    assert Image.open(io.BytesIO(chart.png)).size == (chart.width, chart.height)
