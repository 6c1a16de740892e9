"""The app's own figures from MongoDB: documents written through pymongo to the local
wire-protocol server, aggregated by the pipelines the code sends (only groups come back),
compared with the week before; anomalies, per-pipeline failures, and the report's section."""

from __future__ import annotations

import base64
import io
import re
from datetime import datetime, timedelta, timezone

import pytest
from mongo_fixtures import APP_PASSWORD, APP_USER, mongo_auth_server, mongo_default_conn, mongo_server_factory  # noqa: F401

from maintenance.config import MaintenanceConfig
from maintenance.operators.analytics import app_analytics

UTC = timezone.utc
START, END = datetime(2026, 4, 27, tzinfo=UTC), datetime(2026, 5, 4, tzinfo=UTC)
BEFORE = START - timedelta(days=7)

APP = {"database": "app",
       "signups": {"collection": "members", "time_field": "joined_at"},
       "donations": {"collection": "donations", "amount_field": "amount_cents", "amount_divisor": 100,
                     "refund_statuses": ["refunded", "chargeback"]},
       "registrations": {"collection": "registrations", "event_field": "event_slug"},
       "admin_actions": {"collection": "audit", "time_field": "at", "action_field": "action", "user_field": "admin"},
       "anomaly_factor": 5, "anomaly_min_count": 10}


def config(app=APP) -> MaintenanceConfig:
    return MaintenanceConfig.model_validate({"site": {"name": "example.org", "url": "https://example.org"},
                                             "analytics": {"app": app}})


def spread(start: datetime, count: int, days: int = 7) -> list[datetime]:
    """`count` times spread over the days from start (whole minutes, UTC)."""
    return [start + timedelta(minutes=int(i * days * 1440 / max(count, 1)) + 7) for i in range(count)]


DONATIONS = (
    [{"created_at": t, "amount_cents": 1500 + 100 * (i % 4), "currency": "KES", "status": "paid"}
     for i, t in enumerate(spread(START, 20))]
    + [{"created_at": t, "amount_cents": 2500, "currency": "USD", "status": "paid"} for t in spread(START, 4)]
    + [{"created_at": START + timedelta(days=2), "amount_cents": 9900, "currency": "USD", "status": "refunded"},
       {"created_at": START + timedelta(days=3), "amount_cents": 1000, "currency": "KES", "status": "chargeback"}]
    + [{"created_at": t, "amount_cents": 1500, "currency": "KES", "status": "paid"} for t in spread(BEFORE, 18)]
    + [{"created_at": END + timedelta(hours=1), "amount_cents": 10**6, "currency": "KES", "status": "paid"},   # after
       {"amount_cents": 500, "currency": "KES", "status": "paid"}]                                           # no time
)


@pytest.fixture
def app_db(mongo_default_conn):   # noqa: F811 - the fixture of mongo_fixtures
    server = mongo_default_conn
    server.seed("app", "members", [{"joined_at": t, "email": f"m{i}@example.org"} for i, t in enumerate(
        spread(START, 12) + spread(BEFORE, 80))])
    server.seed("app", "donations", DONATIONS)
    server.seed("app", "registrations", [{"created_at": t, "event_slug": "gala"} for t in spread(START, 30)]
                + [{"created_at": t, "event_slug": "fun-run"} for t in spread(START, 10)]
                + [{"created_at": t, "event_slug": "gala"} for t in spread(BEFORE, 25)])
    server.seed("app", "audit", [{"at": t, "action": "delete_member", "admin": "alice"} for t in spread(START, 3)]
                + [{"at": t, "action": "update_event", "admin": "bob"} for t in spread(START, 5)]
                + [{"at": t, "action": "update_event", "admin": "alice"} for t in spread(BEFORE, 6)])
    server.received.clear()
    return server


def by_metric(results):
    return {r.check.rsplit(".", 1)[1]: r for r in results}


def test_figures_are_aggregated_in_mongodb(app_db):
    results = by_metric(app_analytics(config(), "weekly", START, END))
    assert set(results) == {"signups", "donations", "registrations", "admin_actions"}
    commands = [r.name for r in app_db.received if r.name not in ("hello", "isMaster", "ismaster", "saslStart",
                                                                   "saslContinue", "ping", "endSessions")]
    assert commands == ["aggregate"] * 4, "groups come back, documents are never pulled"
    for received in app_db.received:
        if received.name == "aggregate":
            stages = [next(iter(stage)) for stage in received.body["pipeline"]]
            assert stages == ["$match", "$group"]

    signups = results["signups"]
    assert signups.metrics["count"] == 12 and signups.metrics["previous"] == 80
    assert signups.status == "warn" and signups.reason == "anomaly" and not signups.critical
    assert "membership signups down 85% (12 against 80 the week before)" in signups.summary
    assert sum(d["count"] for d in signups.evidence["daily"]) == 12 and len(signups.evidence["daily"]) == 7

    donations = results["donations"]
    currencies = {c["currency"]: c for c in donations.evidence["currencies"]}
    kes = [d for d in DONATIONS if d.get("currency") == "KES" and d.get("status") == "paid"
           and "created_at" in d and START <= d["created_at"] < END]
    assert currencies["KES"]["count"] == len(kes) == 20
    assert currencies["KES"]["sum"] == pytest.approx(sum(d["amount_cents"] for d in kes) / 100)
    assert currencies["KES"]["average"] == pytest.approx(currencies["KES"]["sum"] / 20, abs=0.01)
    assert currencies["KES"]["previous_sum"] == pytest.approx(18 * 15.0)
    assert currencies["KES"]["refunds"] == 1 and currencies["KES"]["refunded_sum"] == 10.0
    assert currencies["USD"] == {**currencies["USD"], "count": 4, "sum": 100.0, "average": 25.0, "refunds": 1,
                                 "refunded_sum": 99.0, "previous_sum": 0.0, "change_pct": None}
    assert donations.status == "ok", donations.summary   # 20 against 18 KES; USD 4 (below the floor of 10)

    registrations = results["registrations"]
    assert registrations.evidence["events"] == [{"event": "gala", "count": 30, "previous": 25},
                                                {"event": "fun-run", "count": 10, "previous": 0}]
    assert registrations.metrics == {"count": 40, "previous": 25, "change_pct": 60.0}

    admin = results["admin_actions"]
    assert admin.evidence["by_action"] == [{"action": "update_event", "count": 5}, {"action": "delete_member", "count": 3}]
    assert admin.evidence["by_user"] == [{"user": "bob", "count": 5}, {"user": "alice", "count": 3}]
    assert admin.status == "ok"


def test_one_failing_pipeline_does_not_take_the_others_down(app_db):
    app_db.fail_command("aggregate", "exceeded memory limit", code=16945, times=1)
    results = by_metric(app_analytics(config(), "weekly", START, END))
    failed = [m for m, r in results.items() if r.status == "fail"]
    assert failed == ["signups"], {m: r.summary for m, r in results.items()}
    assert "code 16945" in results["signups"].summary and results["signups"].reason == "mongo_error"
    assert results["donations"].metrics["count"] == 24


def test_unreachable_database_fails_every_metric_once(app_db):
    app_db.close_port()
    started = datetime.now(UTC)
    results = app_analytics(config(), "weekly", START, END)
    assert [r.status for r in results] == ["fail"] * 4
    assert {r.reason for r in results} == {"timeout"}
    assert (datetime.now(UTC) - started).total_seconds() < 8, "one server-selection wait, not four"
    assert APP_PASSWORD not in " ".join(r.summary for r in results)


def test_wrong_password_is_a_credential_fault(app_db, monkeypatch):
    import json

    monkeypatch.setenv("AIRFLOW_CONN_MONGO_DEFAULT", json.dumps(
        json.loads(app_db.airflow_conn()) | {"password": "wrong-pass"}))
    results = app_analytics(config(), "weekly", START, END)
    assert {r.reason for r in results} == {"unauthorized"}
    assert "wrong-pass" not in " ".join(r.summary for r in results)


def test_not_configured_is_skipped(monkeypatch):
    [result] = app_analytics(config({"database": "app"}), "weekly", START, END)
    assert result.status == "skipped" and "analytics.app" in result.summary
    monkeypatch.delenv("AIRFLOW_CONN_MONGO_DEFAULT", raising=False)
    [result] = app_analytics(config(), "weekly", START, END)
    assert result.status == "skipped" and "mongo_default" in result.summary


def test_the_report_shows_the_app_figures(app_db, tmp_path):
    from PIL import Image

    from maintenance.reports.data import Monitored, report_data
    from maintenance.reports.render import render_report
    from maintenance.results import ResultsStore

    results = app_analytics(config(), "weekly", START, END)
    for result in results:
        result.time = END + timedelta(hours=4)
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    store.record(results)
    html = render_report(report_data(store, "weekly", checks=[Monitored("homepage")], site="example.org",
                                     now=END + timedelta(hours=4, minutes=5)))
    assert "<b>Anomaly:</b> membership signups down 85%" in html
    assert "KES" in html and "99.00" in html and "bob" in html
    for title in ("Membership signups per day", "Donations per day (sum per currency, refunds apart)",
                  "Event registrations per event", "Admin actions by type"):
        match = re.search(r'src="data:image/png;base64,([^"]+)" width="(\d+)" height="(\d+)" alt="' + re.escape(title), html)
        assert match, title
        assert Image.open(io.BytesIO(base64.b64decode(match.group(1)))).size == (int(match.group(2)), int(match.group(3)))
