"""Uptime % and incidents from stored results; thresholds and recovery over several sweeps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from maintenance.alerting import assess, deliver
from maintenance.checks.uptime import judge
from maintenance.checks.uptime_report import uptime_report
from maintenance.conditions import Observation
from maintenance.config import MaintenanceConfig
from maintenance.results import ResultsStore

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=timezone.utc)


def test_uptime_percent_and_incidents_from_the_store(tmp_path):
    config = MaintenanceConfig.model_validate({
        "site": {"name": "t", "url": "https://t"},
        "endpoints": [{"name": "home", "url": "https://t/", "critical": True,
                       "conditions": ["[STATUS] == 200", "[RESPONSE_TIME] < 1000"]},
                      {"name": "quiet", "url": "https://t/q", "conditions": ["[STATUS] == 200"]}],
        "alerting": {"failure_threshold": 3, "success_threshold": 2},
    })
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    home = config.endpoints[0]
    # 24 h of 5-minute sweeps: a 20-minute outage at 10:00 (500s), one slow blip at 15:00.
    kinds = []
    for i in range(288):
        at = T0 + timedelta(minutes=5 * i)
        status, ms = 200, 120.0
        if 120 <= i < 124:
            status = 500
        if i == 180:
            ms = 2500.0
        result = judge(home, Observation(status=status, response_ms=ms, connected=True), None)
        result.time = at
        kinds += [d.kind for d in assess(store, config, [result], now=at).due]
        deliver(store, config, sender=lambda text, blocks: None, now=at)   # the task's own delivery
    # the outage of 4 failures pages once (threshold 3) and recovers after 2 successes; the blip never pages
    assert kinds == ["alert", "recovered"]

    rows = store.history(since=T0)
    [report, quiet] = uptime_report(rows, ["home", "quiet"], now=T0 + timedelta(hours=24), target_percent=99.0)
    assert report.check == "uptime_24h.home" and report.metrics["checks"] == 288
    assert abs(report.metrics["uptime_percent"] - 100 * 283 / 288) < 0.01
    assert report.status == "warn" and report.reason == "below_target"
    incidents = report.evidence["incidents"]
    assert [(i["start"][11:16], i["end"][11:16], i["reason"]) for i in incidents] == [
        ("10:00", "10:20", "http_5xx"), ("15:00", "15:05", "slow")]
    assert "10:00-10:20 (20m, http_5xx)" in report.summary
    assert report.metrics["p95_response_ms"] == 120.0
    assert quiet.status == "warn" and quiet.reason == "no_data"


def test_maintenance_results_do_not_count(tmp_path):
    rows = [{"check_name": "home", "status": "fail", "in_maintenance": True, "metrics": {}, "reason": "http_5xx",
             "summary": "", "checked_at": T0},
            {"check_name": "home", "status": "ok", "in_maintenance": False, "metrics": {"response_ms": 50},
             "reason": None, "summary": "", "checked_at": T0 + timedelta(minutes=5)}]
    [report] = uptime_report(rows, ["home"], now=T0 + timedelta(hours=1))
    assert report.metrics["uptime_percent"] == 100.0 and report.status == "ok"
