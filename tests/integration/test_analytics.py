"""Traffic analytics against local Plausible (Stats API v2) and GA4 (token + runReport) servers:
the week against the week before, positional metrics, string values, missing rows and days,
retried and non-retried faults; and the report's traffic section from the stored result."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from analytics_servers import EMPTY_DAY, GA4Server, PlausibleServer, pageviews_on, visitors_on
from maintenance.config import MaintenanceConfig
from maintenance.operators.analytics import traffic_analytics

UTC = timezone.utc
START, END = datetime(2026, 4, 27, tzinfo=UTC), datetime(2026, 5, 4, tzinfo=UTC)   # holds EMPTY_DAY
WEEK = [(START + timedelta(days=i)).date() for i in range(7)]
BEFORE = [d - timedelta(days=7) for d in WEEK]


def config(analytics: dict) -> MaintenanceConfig:
    return MaintenanceConfig.model_validate({"site": {"name": "example.org", "url": "https://example.org"},
                                             "analytics": analytics})


def totals(result) -> dict:
    return {t["key"]: t for t in result.evidence["totals"]}


@pytest.fixture
def plausible(monkeypatch):
    with PlausibleServer() as server:
        monkeypatch.setenv("AIRFLOW_CONN_PLAUSIBLE_API", server.connection_json())
        yield server


@pytest.fixture
def ga4(monkeypatch):
    with GA4Server() as server:
        monkeypatch.setenv("AIRFLOW_CONN_GA4_API", server.connection_json())
        yield server


PLAUSIBLE = {"plausible": {"site_id": "example.org", "top": 3}}


def test_plausible_week_against_the_week_before(plausible):
    [result] = traffic_analytics(config(PLAUSIBLE), "weekly", START, END)
    assert result.status == "ok" and result.check == "analytics.weekly.traffic", result.summary
    found = totals(result)
    visitors, before = sum(visitors_on(d) for d in WEEK), sum(visitors_on(d) for d in BEFORE)
    assert found["visitors"]["value"] == visitors and found["visitors"]["previous"] == before
    assert found["visitors"]["change_pct"] == round(100 * (visitors - before) / before, 1)
    assert found["pageviews"]["value"] == sum(pageviews_on(d) for d in WEEK)
    assert found["bounce_rate"]["value"] == 41.5 and found["visit_duration_s"]["value"] == 95
    assert found["conversions"]["value"] == round(visitors * 0.04) + round(visitors * 0.02)
    daily = result.evidence["daily"]
    assert [d["date"] for d in daily] == [d.isoformat() for d in WEEK]
    assert next(d for d in daily if d["date"] == EMPTY_DAY.isoformat())["visitors"] == 0, "a day Plausible left out"
    assert [p["page"] for p in result.evidence["top_pages"]] == ["/", "/donate", "/events"], "top 3, ordered"
    assert {g["goal"] for g in result.evidence["goals"]} == {"Donation", "Signup"}
    assert f"{visitors:,.0f}" in result.summary and "against the week before" in result.summary
    sent = plausible.queries
    assert len(sent) == 7 and all(q["site_id"] == "example.org" for q in sent)
    assert sent[0]["date_range"] == ["2026-04-27", "2026-05-03"] and sent[1]["date_range"] == ["2026-04-20", "2026-04-26"]
    assert all(r.headers["Authorization"] == f"Bearer {PlausibleServer.key}" for r in plausible.server.requests)


def test_plausible_429_and_503_are_retried(plausible):
    plausible.faults = [(429, json.dumps({"error": "Too many requests"})), (503, "{}")]
    [result] = traffic_analytics(config(PLAUSIBLE), "weekly", START, END)
    assert result.status == "ok"
    assert len(plausible.server.requests) == 9


def test_plausible_bad_key_fails_once_and_names_the_connection(plausible, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PLAUSIBLE_API", json.dumps(
        {"conn_type": "http", "host": plausible.server.url, "password": "wrong-KEY-value"}))
    [result] = traffic_analytics(config(PLAUSIBLE), "weekly", START, END)
    assert result.status == "fail" and result.reason == "unauthorized" and not result.critical
    assert "plausible_api" in result.summary and "Invalid API key" in result.summary
    assert "wrong-KEY-value" not in result.summary
    assert len(plausible.server.requests) == 1, "a credential fault is not retried"


@pytest.mark.parametrize("body", ["<html>Bad gateway</html>", json.dumps({"error": "no results key"}),
                                  json.dumps({"results": "not a list"})])
def test_plausible_malformed_answers_become_a_classified_result(plausible, body):
    plausible.faults = [(200, body)]
    [result] = traffic_analytics(config(PLAUSIBLE), "weekly", START, END)
    assert result.status == "fail" and result.reason == "malformed_response", result.summary


def test_plausible_rows_with_short_metric_lists_count_as_zero(plausible):
    from maintenance.checks.analytics import from_plausible, plausible_queries

    queries = plausible_queries("example.org", START, END, 3)
    answers = {name: {"results": []} for name in queries}
    answers["totals"] = {"results": [{"metrics": [120], "dimensions": []}]}   # only visitors came back
    answers["daily"] = {"results": [{"metrics": ["7", None], "dimensions": ["2026-04-27"]}, "junk"]}
    result = from_plausible("weekly", START, END, answers, queries)
    found = totals(result)
    assert found["visitors"]["value"] == 120 and found["pageviews"]["value"] == 0
    assert found["visitors"]["previous"] is None and found["visitors"]["change_pct"] is None
    assert result.evidence["daily"][0] == {"date": "2026-04-27", "visitors": 7.0, "pageviews": 0.0}


@pytest.mark.parametrize("row", [{"metrics": {"visitors": 5}, "dimensions": []}, {"metrics": 5, "dimensions": 7}])
def test_plausible_rows_of_another_shape_are_read_not_trusted(plausible, row):
    # Issue 18 item 5: a field that should be a list may be an object, a number or a string.
    plausible.faults = [(200, json.dumps({"results": [row]}))]
    [result] = traffic_analytics(config(PLAUSIBLE), "weekly", START, END)
    assert result.status == "ok" and totals(result)["visitors"]["value"] == 0, result.summary


def test_ga4_answers_of_another_shape_are_read_not_trusted(ga4):
    ga4.faults = [(200, json.dumps({"metricHeaders": 3, "rows": [{"metricValues": {"value": "1"}}]})),
                  (200, json.dumps({"metricHeaders": [{"name": "activeUsers"}], "rows": [{"metricValues": 7,
                                                                                         "dimensionValues": 1}]}))]
    [result] = traffic_analytics(config(GA4), "weekly", START, END)
    assert result.status == "ok" and totals(result)["visitors"]["value"] == 0, result.summary


GA4 = {"ga4": {"property_id": "123456789", "top": 5}}


def test_ga4_values_are_strings_and_rows_may_be_missing(ga4):
    ga4.no_data_before = START.date()            # the week before has no data at all: no `rows`
    [result] = traffic_analytics(config(GA4), "weekly", START, END)
    assert result.status == "ok" and result.provider == "ga4", result.summary
    found = totals(result)
    users = sum(visitors_on(d) for d in WEEK)
    assert found["visitors"]["value"] == users and isinstance(found["visitors"]["value"], float)
    assert found["pageviews"]["value"] == sum(pageviews_on(d) for d in WEEK)
    assert found["visitors"]["previous"] == 0 and found["visitors"]["change_pct"] is None
    daily = {d["date"]: d for d in result.evidence["daily"]}
    assert len(daily) == 7 and daily[EMPTY_DAY.isoformat()]["visitors"] == 0, "GA4 sent no row for that day"
    assert daily["2026-04-27"]["visitors"] == visitors_on(date(2026, 4, 27))
    assert {e["event"] for e in result.evidence["events"]} == {"page_view", "donate"}
    assert ga4.reports[0]["dateRanges"] == [{"startDate": "2026-04-27", "endDate": "2026-05-03"}]
    assert ga4.reports[0]["metrics"] == [{"name": n} for n in ("activeUsers", "screenPageViews", "keyEvents", "eventCount")]
    assert len(ga4.assertions) == 1, "one service-account token for all six reports"
    assert ga4.assertions[0]["iss"] == "reports@test.iam.gserviceaccount.com"


@pytest.mark.parametrize("expires_in", [{"seconds": 3599}, "soon", "NaN", -5])
def test_ga4_token_lifetime_of_another_shape_is_read_not_trusted(ga4, expires_in):
    ga4.token_fields = {"expires_in": expires_in}
    [result] = traffic_analytics(config(GA4), "weekly", START, END)
    assert result.status == "ok", result.summary
    assert len(ga4.assertions) == 1, "the token is reused for the period's reports"


def test_ga4_without_permission_on_the_property(ga4):
    [result] = traffic_analytics(config({"ga4": {"property_id": "999"}}), "weekly", START, END)
    assert result.status == "fail" and result.reason == "unauthorized"
    assert "ga4_api" in result.summary and "PRIVATE KEY" not in result.summary


def test_ga4_5xx_is_retried(ga4):
    ga4.faults = [(500, json.dumps({"error": {"message": "internal"}}))]
    [result] = traffic_analytics(config(GA4), "weekly", START, END)
    assert result.status == "ok"


def test_ga4_broken_key_is_a_credential_fault(monkeypatch, ga4):
    monkeypatch.setenv("AIRFLOW_CONN_GA4_API", json.dumps({"conn_type": "http", "host": ga4.server.url,
                                                           "password": "{not json"}))
    [result] = traffic_analytics(config(GA4), "weekly", START, END)
    assert result.status == "fail" and result.reason == "unauthorized" and "not valid JSON" in result.summary


def test_not_configured_is_skipped_with_how_to(monkeypatch):
    [result] = traffic_analytics(config({}), "weekly", START, END)
    assert result.status == "skipped" and "analytics.plausible" in result.summary
    monkeypatch.delenv("AIRFLOW_CONN_PLAUSIBLE_API", raising=False)
    [result] = traffic_analytics(config(PLAUSIBLE), "weekly", START, END)
    assert result.status == "skipped" and "plausible_api" in result.summary


def test_the_weekly_report_shows_the_stored_traffic(plausible, tmp_path):
    import base64
    import io
    import re

    from PIL import Image

    from maintenance.reports.data import Monitored, report_data
    from maintenance.reports.render import render_report
    from maintenance.results import ResultsStore

    [result] = traffic_analytics(config(PLAUSIBLE), "weekly", START, END)
    result.time = END + timedelta(hours=4)
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    store.record([result])
    data = report_data(store, "weekly", checks=[Monitored("homepage")], site="example.org",
                       now=END + timedelta(hours=4, minutes=5))
    assert data["analytics"]["traffic"]["check_name"] == "analytics.weekly.traffic"
    html = render_report(data)
    visitors = totals(result)["visitors"]
    assert f"{visitors['value']:,.0f}" in html and f"{visitors['change_pct']:+.1f}%" in html
    for title in ("Visitors and page views per day", "Top pages (page views)"):
        match = re.search(r'src="data:image/png;base64,([^"]+)" width="(\d+)" height="(\d+)" alt="' + re.escape(title), html)
        assert match, title
        image = Image.open(io.BytesIO(base64.b64decode(match.group(1))))
        assert image.size == (int(match.group(2)), int(match.group(3)))
    assert "Google" in html and "Donation" in html
