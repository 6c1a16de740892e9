"""Numbers that are not numbers (issue 18 item 4): NaN and Infinity, also as the strings "NaN" and
"Infinity", from Plausible and GA4 (local servers) and from the app's MongoDB donations (the
wire-protocol server) are set aside where they are read, counted and named in the result; what
the tasks return to Airflow is strict JSON; and the results store never writes JSON it cannot
read back, on SQLite and on Postgres."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest
import sqlalchemy as sa
from mongo_fixtures import mongo_auth_server, mongo_default_conn, mongo_server_factory  # noqa: F401

from analytics_servers import GA4Server, PlausibleServer
from maintenance.operators.analytics import app_analytics, traffic_analytics
from maintenance.results import CheckResult, ResultsStore

from integration.test_analytics import END, PLAUSIBLE, START, config as traffic_config, totals
from integration.test_app_analytics import APP, DONATIONS, config as app_config


def strict_json(results: list[CheckResult]) -> str:
    """What the task returns as its XCom, as strict JSON (what Postgres's JSON columns take)."""
    return json.dumps([r.to_dict() for r in results], allow_nan=False)


@pytest.fixture
def plausible(monkeypatch):
    with PlausibleServer() as server:
        monkeypatch.setenv("AIRFLOW_CONN_PLAUSIBLE_API", server.connection_json())
        yield server


def test_plausible_infinity_and_nan_strings_are_set_aside_and_named(plausible):
    # The first query (this week's totals) answers visitors as Infinity and visits as "NaN".
    plausible.faults = [(200, '{"results": [{"metrics": [Infinity, "NaN", 1200, 41.5, 95], "dimensions": []}]}')]
    results = traffic_analytics(traffic_config(PLAUSIBLE), "weekly", START, END)
    [result] = results
    assert result.status == "warn" and result.reason == "not_finite", result.summary
    assert result.metrics["not_finite"] == 2
    assert result.evidence["not_finite"] == ["totals: visitors = inf", "totals: visits = NaN"]
    assert "2 value(s) not a finite number, counted as 0: totals: visitors = inf" in result.summary
    found = totals(result)
    assert found["visitors"]["value"] == 0 and found["pageviews"]["value"] == 1200
    strict_json(results)


def test_ga4_nan_strings_are_set_aside_and_named(monkeypatch):
    with GA4Server() as ga4:
        monkeypatch.setenv("AIRFLOW_CONN_GA4_API", ga4.connection_json())
        ga4.faults = [(200, json.dumps({"metricHeaders": [{"name": "activeUsers"}, {"name": "screenPageViews"},
                                                          {"name": "keyEvents"}, {"name": "eventCount"}],
                                        "rows": [{"metricValues": [{"value": "NaN"}, {"value": "-Infinity"},
                                                                   {"value": "3"}, {"value": "1e999"}]}]}))]
        results = traffic_analytics(traffic_config({"ga4": {"property_id": "123456789"}}), "weekly", START, END)
    [result] = results
    assert result.status == "warn" and result.metrics["not_finite"] == 3, result.summary
    assert result.evidence["not_finite"] == ["totals: activeUsers = NaN", "totals: screenPageViews = -Infinity",
                                             "totals: eventCount = 1e999"]
    assert totals(result)["conversions"]["value"] == 3
    strict_json(results)


@pytest.fixture
def donations_with_nan(mongo_default_conn):  # noqa: F811 - the fixture of mongo_fixtures
    server = mongo_default_conn
    server.seed("app", "donations", DONATIONS + [
        {"created_at": START + timedelta(days=1, hours=3), "amount_cents": float("nan"), "currency": "KES",
         "status": "paid"},
        {"created_at": START + timedelta(days=4, hours=3), "amount_cents": float("inf"), "currency": "EUR",
         "status": "paid"}])
    return server


def test_a_nan_donation_is_set_aside_counted_and_named(donations_with_nan):
    app = {k: v for k, v in APP.items() if k not in ("signups", "registrations", "admin_actions")}
    results = app_analytics(app_config(app), "weekly", START, END)
    [donations] = results
    assert donations.status == "warn" and donations.reason == "not_finite", donations.summary
    assert donations.metrics["not_finite"] == 2
    assert donations.evidence["not_finite"] == ["2026-04-28 KES: sum = nan", "2026-05-01 EUR: sum = inf"]
    assert "2 group(s) left out: a count or sum not a finite number" in donations.summary
    # The other days' donations still count; every figure is finite.
    kes = next(r for r in donations.evidence["currencies"] if r["currency"] == "KES")
    assert 0 < kes["count"] < 20 and math.isfinite(kes["sum"])
    strict_json(results)


def test_the_store_never_writes_json_it_cannot_read_back(results_url):
    store = ResultsStore(results_url)
    result = CheckResult(check="analytics.weekly.traffic", status="ok", summary="odd figures",
                         metrics={"visitors": float("nan"), "pageviews": float("inf"), "visits": 3},
                         evidence={"daily": [{"visitors": float("-inf")}, {"visitors": 2.5}], "big": 10 ** 400,
                                   "page": "/x\ud800y"})   # a lone surrogate, as JSON's "\ud800" gives
    store.record([result])
    with store.transaction() as conn:
        store.enqueue(conn, kind="alert", check="analytics.weekly.traffic", payload={"figure": float("nan")})
    [row] = store.history()
    assert row["metrics"] == {"visitors": None, "pageviews": None, "visits": 3}
    assert row["evidence"]["daily"] == [{"visitors": None}, {"visitors": 2.5}]
    assert row["evidence"]["page"] == "/x?y"
    with store.engine.connect() as conn:
        if store.sqlite:   # SQLite's JSON functions (the roll-ups, the status page) read it too
            valid = conn.exec_driver_sql("SELECT json_valid(metrics), json_valid(evidence) FROM check_results").one()
            assert tuple(valid) == (1, 1)
            assert conn.exec_driver_sql("SELECT json_valid(payload) FROM alert_outbox").scalar() == 1
        else:
            conn.exec_driver_sql("SELECT metrics::jsonb, evidence::jsonb FROM check_results").one()


def test_values_written_before_the_fix_are_mended_on_sqlite(tmp_path):
    # A store at 0005 holding what json.dumps wrote for NaN and Infinity (bare tokens).
    from alembic import command

    from maintenance.migrations import _config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0005")
        conn.exec_driver_sql(
            "INSERT INTO check_results (checked_at, check_name, target, check_group, status, summary, metrics, evidence,"
            " critical, in_maintenance) VALUES ('2026-11-01 00:00:00', 'analytics.weekly.traffic', '', 'analytics', 'ok',"
            " 'x', '{\"visitors\": NaN, \"visits\": 3}', '{\"daily\": [Infinity, -Infinity, 1.5]}', 0, 0)")
        conn.exec_driver_sql("INSERT INTO alert_outbox (created_at, kind, channel, payload, attempts, uncertain)"
                             " VALUES ('2026-11-01 00:10:00', 'report', 'digest', '{\"figure\": NaN}', 0, 0)")
    engine.dispose()
    store = ResultsStore(url)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT json_extract(metrics, '$.visits'), json_extract(evidence, '$.daily[2]'),"
                                    " json_valid(metrics) FROM check_results").one() == (3, 1.5, 1)
        assert conn.exec_driver_sql("SELECT payload FROM alert_outbox").scalar() == '{"figure": null}'
    assert store.history()[0]["metrics"] == {"visitors": None, "visits": 3}
