"""dag.test() of post_deploy_verification (issue 19) against stand-ins in Vercel's and Sentry's
shape, the site's endpoints on a local server, and Slack's webhook."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from deploy_fixtures import SentryServer, deploy_asset, sentry_issue, write_config  # noqa: F401 - fixtures
from servers import LocalServer, SlackReceiver
from vitals_server import VercelServer, build_events, deployment

DAGS = Path(__file__).resolve().parents[2] / "dags"


class Site:
    """The production site: every path answers 200 unless listed in `broken`."""

    def __init__(self):
        self.broken: dict[str, int] = {}
        self.headers_seen: list[dict[str, str]] = []

    def __call__(self, request):
        self.headers_seen.append(request.headers)
        status = self.broken.get(request.path.split("?")[0], 200)
        return status, {"Content-Type": "text/html"}, "<h1>ok</h1>" if status == 200 else "Internal Server Error"


@pytest.fixture
def world(airflow_db, tmp_path, monkeypatch):
    site_app = Site()
    with LocalServer(site_app) as site, VercelServer(page_size=5) as vercel, SentryServer() as sentry, \
            SlackReceiver() as slack:
        world = type("World", (), {})()
        world.site, world.site_app, world.vercel, world.sentry, world.slack = site, site_app, vercel, sentry, slack
        world.store_url = f"sqlite:///{tmp_path / 'results.db'}"
        world.path = tmp_path / "maintenance.yaml"
        monkeypatch.setenv("MAINTENANCE_CONFIG", str(world.path))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", slack.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_VERCEL_API", vercel.connection_json(project_id="prj_1",
                                                                             protection_bypass="bypass-SECRET-123"))
        monkeypatch.setenv("AIRFLOW_CONN_SENTRY_API", sentry.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_TEST_RESULTS", json.dumps(
            {"conn_type": "sqlite", "extra": {"sqlalchemy_url": world.store_url}}))
        configure(world)
        yield world


def configure(world, observe_for="1s", auto_rollback=False, check_deployment_url=False):
    url = world.site.url
    write_config(world.path, f"""
        site: {{name: deploy.example, url: "{url}"}}
        endpoints:
          - {{name: home, url: "{url}/", group: homepage, critical: true, conditions: ["[STATUS] == 200"]}}
          - {{name: checkout, url: "{url}/checkout", group: payments, critical: true,
              conditions: ["[STATUS] == 200"]}}
          - {{name: blog, url: "{url}/blog", group: other, critical: false, conditions: ["[STATUS] == 200"]}}
        vercel: {{conn_id: vercel_api, watch_interval: 10s, check_deployment_url: {str(check_deployment_url).lower()}}}
        sentry: {{conn_id: sentry_api}}
        post_deploy: {{observe_for: {observe_for}, recheck_after: 0s, auto_rollback: {str(auto_rollback).lower()}}}
        tasks: {{retries: 2, retry_delay: 0s}}
        results: {{conn_id: test_results}}
    """)


def post_deploy_dag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS / "post_deploy_verification.py")).dags["post_deploy_verification"]


def now_ms(offset_s: float = 0) -> int:
    return int((time.time() + offset_s) * 1000)


def verify(world, uid):
    run = post_deploy_dag().test(run_conf={"deployment_id": uid})
    return run, {ti.task_id: ti.state for ti in run.get_task_instances()}


def stored_verdicts(world):
    from maintenance.checks.deploys import VERDICT_CHECK
    from maintenance.results import ResultsStore

    return {r["evidence"]["uid"]: r for r in ResultsStore(world.store_url).history(check=VERDICT_CHECK)}


def texts(world):
    return [m["text"] for m in world.slack.messages]


def test_healthy_deploy_verdict_healthy_nobody_paged(world):
    world.vercel.add(deployment("dpl_new", now_ms(-30)))
    start = datetime.now(timezone.utc)
    world.sentry.errors = [(start + timedelta(seconds=i / 2), 1) for i in range(-120, 240)]   # 2 a second
    configure(world, observe_for="3s")
    run, states = verify(world, "dpl_new")
    assert states == {"verify_endpoints": "success", "observe_sentry": "success"}
    verdict = stored_verdicts(world)["dpl_new"]
    assert (verdict["status"], verdict["reason"]) == ("ok", "healthy")
    assert len(world.slack.messages) == 1, texts(world)
    text = texts(world)[0]
    assert "dpl_new" in text and "healthy" in text and "REGRESSED" not in text and "FAILING" not in text
    assert ":red_circle:" not in json.dumps(world.slack.messages)
    assert any("firstRelease" in q.get("query", [""])[0] for q in world.sentry.queries), "Sentry was read"
    assert {r.split("?")[0] for r in (q.path for q in world.site.requests)} == {"/", "/checkout"}, \
        "only the critical endpoints"
    from maintenance.results import ResultsStore

    swept = ResultsStore(world.store_url).history(check="deploy.deploy:home")[-1]["checked_at"]
    assert (verdict["checked_at"] - swept).total_seconds() >= 3, "Sentry is read after the observe window"
    assert 4 <= verdict["evidence"]["errors_before"] <= 8 and 4 <= verdict["evidence"]["errors_after"] <= 8, \
        "the same 3 s window before and after the deploy"


def test_endpoint_500_after_deploy_regressed_at_once_with_the_verified_way_back(world):
    world.vercel.add(deployment("dpl_prev", now_ms(-3600)))
    verify(world, "dpl_prev")                                  # verified healthy
    configure(world, observe_for="1h")                         # the verdict must not wait for it
    world.vercel.add(deployment("dpl_unverified", now_ms(-1800)))   # READY, never verified
    world.vercel.add(deployment("dpl_new", now_ms(-30)))
    world.site_app.broken["/checkout"] = 500
    world.slack.messages.clear()
    started = time.monotonic()
    run, states = verify(world, "dpl_new")
    assert time.monotonic() - started < 120
    assert states == {"verify_endpoints": "success", "observe_sentry": "skipped"}, "named without the window"
    verdict = stored_verdicts(world)["dpl_new"]
    assert (verdict["status"], verdict["reason"]) == ("fail", "regressed")
    text = "\n".join(texts(world))
    assert "REGRESSED" in text and "endpoint failing: checkout" in text and "[STATUS] (500) == 200" in text
    assert "vercel rollback dpl_prev" in text
    assert "dpl_prev (verified healthy)" in text and "https://vercel.com/acme/web/dpl_prev" in text
    assert not world.vercel.rollbacks, "auto_rollback is off: nothing rolled back"


def test_new_sentry_issue_in_the_release_regressed_while_endpoints_green(world):
    new = world.vercel.add(deployment("dpl_new", now_ms(-30), sha="c0ffee" + "1" * 34))
    world.sentry.issues_by_release[new["meta"]["githubCommitSha"]] = [sentry_issue(42, "c0ffee")]
    run, states = verify(world, "dpl_new")
    assert states == {"verify_endpoints": "success", "observe_sentry": "success"}
    verdict = stored_verdicts(world)["dpl_new"]
    assert (verdict["status"], verdict["reason"]) == ("fail", "regressed")
    assert verdict["evidence"]["endpoints_failing"] == [] and verdict["evidence"]["new_issues"] == ["WEB-42"]
    text = "\n".join(texts(world))
    assert "WEB-42 TypeError: cart is undefined (42) (37 events)" in text and "release c0ffee1111" in text


def test_error_build_alerted_at_once_naming_the_serving_deployment(world):
    world.vercel.add(deployment("dpl_live", now_ms(-3600)))
    world.vercel.add(deployment("dpl_bad", now_ms(-60), state="ERROR"))
    world.vercel.events["dpl_bad"] = build_events("Type error: Property 'total' does not exist on type 'Cart'.")
    run, states = verify(world, "dpl_bad")
    assert states == {"verify_endpoints": "success", "observe_sentry": "skipped"}
    assert len(world.slack.messages) == 1
    text = texts(world)[0]
    assert "dpl_bad" in text and "build FAILED" in text
    assert "Type error: Property 'total' does not exist on type 'Cart'." in text
    assert "production still serves dpl_live" in text
    assert not world.site.requests, "a failed build is not swept"


def test_auto_rollback_once_to_the_verified_deployment_never_an_unverified_one(world):
    configure(world, auto_rollback=True)
    world.vercel.add(deployment("dpl_new", now_ms(-30)))
    world.vercel.add(deployment("dpl_older", now_ms(-3600)))   # READY but never verified by us
    world.site_app.broken["/"] = 503
    verify(world, "dpl_new")
    assert not world.vercel.rollbacks, "never to an unverified deployment"
    assert "auto-rollback NOT done: no earlier deployment was verified healthy" in "\n".join(texts(world))

    world.site_app.broken.clear()
    world.vercel.add(deployment("dpl_good", now_ms(-20)))
    verify(world, "dpl_good")                                  # verified healthy
    world.vercel.add(deployment("dpl_unverified", now_ms(-15)))
    world.vercel.add(deployment("dpl_bad", now_ms(-10)))
    world.site_app.broken["/checkout"] = 500
    world.slack.messages.clear()
    verify(world, "dpl_bad")
    assert [uid for uid, _ in world.vercel.rollbacks] == ["dpl_good"], world.vercel.rollbacks
    assert world.vercel.serving == "dpl_good"
    text = "\n".join(texts(world))
    assert "auto-rollback DONE: production now serves dpl_good" in text
    verify(world, "dpl_bad")                                   # the same deployment again (a re-announce)
    assert len(world.vercel.rollbacks) == 1, "never twice"


def test_a_failed_rollback_is_its_own_alert(world):
    configure(world, auto_rollback=True)
    world.vercel.add(deployment("dpl_good", now_ms(-60)))
    verify(world, "dpl_good")
    world.vercel.add(deployment("dpl_bad", now_ms(-10)))
    world.vercel.rollback_status = 409
    world.site_app.broken["/checkout"] = 500
    world.slack.messages.clear()
    verify(world, "dpl_bad")
    assert len(world.vercel.rollbacks) == 1
    blocks = json.dumps(world.slack.messages)
    text = "\n".join(texts(world))
    assert "auto-rollback of dpl_bad to dpl_good FAILED" in text and "vercel rollback dpl_good" in text
    assert "deploy.rollback" in blocks and "auto-rollback to dpl_good FAILED" in text


def test_deployment_url_swept_with_the_protection_bypass_header(world):
    configure(world, check_deployment_url=True)
    # The deployment's own URL (Vercel gives a host name; here the local server, scheme included).
    world.vercel.add({**deployment("dpl_new", now_ms(-30)), "url": world.site.url})
    run, states = verify(world, "dpl_new")
    assert stored_verdicts(world)["dpl_new"]["status"] == "ok"
    bypass = [h.get("x-vercel-protection-bypass") for h in world.site_app.headers_seen]
    assert bypass.count("bypass-SECRET-123") == 2 and bypass.count(None) == 2, "prod without, deployment with"
    assert "bypass-SECRET-123" not in json.dumps(world.slack.messages)


def test_the_watchers_event_starts_the_verification(world, deploy_asset, monkeypatch):
    """The trigger's event, recorded as the triggerer does (Trigger.submit_event ->
    register_asset_change), is what the next run verifies: no param needed."""
    import asyncio

    from airflow.assets.manager import AssetManager
    from airflow.models import dagrun
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from maintenance.triggers.vercel_deployments import VercelDeploymentsTrigger
    from watcher_fixtures import Events

    world.vercel.add(deployment("dpl_live", now_ms(-3600)))

    async def announced():
        events = Events(VercelDeploymentsTrigger(interval=0.2))   # no state store: memory in-process
        while not world.vercel.queries:                  # the first poll takes what exists as known
            assert await events.within(0.1) is None
        world.vercel.add(deployment("dpl_bad", now_ms(-5), state="ERROR"))
        payload = await events.next(timeout=5)
        await events.stop()
        return payload

    payload = asyncio.run(announced())
    with create_session() as session:
        asset = session.scalar(select(AssetModel).where(AssetModel.name == deploy_asset))
        event_id = AssetManager.register_asset_change(asset=asset.to_serialized(), session=session,
                                                      extra={"from_trigger": True, "payload": payload}).id
    original = dagrun.get_or_create_dagrun

    def with_consumed_event(*args, session, **kwargs):
        run = original(*args, session=session, **kwargs)
        run.consumed_asset_events.extend(session.scalars(select(AssetEvent).where(AssetEvent.id == event_id)))
        session.commit()
        return run

    monkeypatch.setattr(dagrun, "get_or_create_dagrun", with_consumed_event)
    run = post_deploy_dag().test()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"verify_endpoints": "success", "observe_sentry": "skipped"}
    assert stored_verdicts(world)["dpl_bad"]["reason"] == "build_error"
    text = "\n".join(texts(world))
    assert "dpl_bad" in text and "production still serves dpl_live" in text


def test_the_weekly_deployments_list_shows_the_verdicts(world):
    from maintenance.config import get_config
    from maintenance.operators.performance import vercel_checks

    world.vercel.add(deployment("dpl_ok", now_ms(-600)))
    verify(world, "dpl_ok")
    world.vercel.add(deployment("dpl_bad", now_ms(-300), state="ERROR"))
    verify(world, "dpl_bad")
    world.vercel.add(deployment("dpl_manual", now_ms(-60)))            # never verified
    now = datetime.now(timezone.utc)
    _, [result] = vercel_checks(get_config(), now - timedelta(days=7), now, "week", "maintenance_weekly")
    assert "3 production deployment(s) this week (verdicts: 1 healthy, 1 build error: " \
           "web-dpl_bad.vercel.app, 1 not verified)" in result.summary, result.summary
    by_uid = {d["uid"]: d["verdict"] for d in result.evidence["deployments"]}
    assert by_uid == {"dpl_ok": "healthy", "dpl_bad": "build_error", "dpl_manual": None}
    # the status page lists the recent deploys with their verdicts, newest first
    from maintenance.reports.data import monitored, status_page_data
    from maintenance.reports.render import render_status_page
    from maintenance.results import ResultsStore

    config = get_config()
    data = status_page_data(ResultsStore(world.store_url), monitored(config), [], now=datetime.now(timezone.utc))
    assert [(d["uid"], d["verdict"]) for d in data["deploys"]] == [("dpl_bad", "build error"), ("dpl_ok", "healthy")]
    html = render_status_page(data)
    assert 'id="deploys"' in html and "dpl_bad" in html and "build error" in html


def test_a_deployment_announced_again_during_its_observe_window_is_verified_once(world):
    world.vercel.add(deployment("dpl_new", now_ms(-30)))
    verify(world, "dpl_new")
    from maintenance.checks.deploys import STARTED_CHECK
    from maintenance.results import ResultsStore

    store = ResultsStore(world.store_url)
    # as if the first run were still observing: its verdict not stored yet
    with store.engine.begin() as conn:
        import sqlalchemy as sa

        from maintenance.results import check_results

        conn.execute(sa.delete(check_results).where(check_results.c.check_name == "deploy.verdict"))
    world.slack.messages.clear()
    requests_before = len(world.site.requests)
    run, states = verify(world, "dpl_new")
    assert states == {"verify_endpoints": "success", "observe_sentry": "skipped"}
    assert len(world.site.requests) == requests_before and not world.slack.messages
    assert len(store.history(check=STARTED_CHECK)) == 1


def test_an_unknown_deployment_id_by_hand_fails_saying_so(world):
    run, states = verify(world, "dpl_typo")
    assert states["verify_endpoints"] == "failed"
    assert not stored_verdicts(world)
    text = "\n".join(texts(world))
    assert "the deployment to verify could not be read from Vercel" in text and "HTTP 404" in text, text
    assert "vercel-token" not in text
