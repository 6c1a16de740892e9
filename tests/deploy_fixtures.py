"""Fixtures of the post-deployment verification tests (issue 19): a Sentry stand-in that knows
releases (issues filtered by `firstRelease:`, stats_v2 totals over start/end), the
vercel_deployments asset registered as the DAG processor does, and its real asset state store."""

from __future__ import annotations

import json
import os
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from servers import LocalServer, ServedApp, json_reply
from watcher_fixtures import SupervisorStandIn

DAGS = Path(__file__).resolve().parents[1] / "dags"
SENTRY_TOKEN = "sntrys_deploy_token_abcdef"


class SentryServer(ServedApp):
    """Sentry's organization issues (the `firstRelease:"x"` qualifier honoured) and stats_v2 (accepted
    error events between `start` and `end`, from `errors`: a list of (datetime, count))."""

    def __init__(self, org: str = "acme") -> None:
        self.org = org
        self.issues_by_release: dict[str, list[dict[str, Any]]] = {}
        self.errors: list[tuple[datetime, int]] = []
        self.queries: list[dict[str, list[str]]] = []
        self.server = LocalServer(self)

    def connection_json(self) -> str:
        return json.dumps({"conn_type": "http", "host": self.server.url, "password": SENTRY_TOKEN,
                           "extra": {"organization": self.org}})

    def __call__(self, request):
        if request.headers.get("Authorization") != f"Bearer {SENTRY_TOKEN}":
            return json_reply({"detail": "Invalid token"}, 401)
        url = urlsplit(request.path)
        query = parse_qs(url.query)
        self.queries.append(query)
        if url.path == f"/api/0/organizations/{self.org}/issues/":
            text = query.get("query", [""])[0]
            release = text.split('firstRelease:"', 1)[1].split('"', 1)[0] if 'firstRelease:"' in text else None
            return json_reply(self.issues_by_release.get(release, []) if release else [])
        if url.path == f"/api/0/organizations/{self.org}/stats_v2/":
            if "start" not in query:   # statsPeriod (the daily review): hourly zeros
                return json_reply({"intervals": [], "groups": [{"by": {"outcome": "accepted"},
                                                                "totals": {"sum(quantity)": 0},
                                                                "series": {"sum(quantity)": [0] * 24}}]})
            start = datetime.fromisoformat(query["start"][0].replace("Z", "+00:00"))
            end = datetime.fromisoformat(query["end"][0].replace("Z", "+00:00"))
            total = sum(n for at, n in self.errors if start <= at < end)
            return json_reply({"start": query["start"][0], "end": query["end"][0], "intervals": [],
                               "groups": [{"by": {"outcome": "accepted"}, "totals": {"sum(quantity)": total},
                                           "series": {"sum(quantity)": [total]}}]})
        return json_reply({"detail": "not found"}, 404)


def sentry_issue(n: int, release: str) -> dict[str, Any]:
    return {"id": str(n), "shortId": f"WEB-{n}", "title": f"TypeError: cart is undefined ({n})", "level": "error",
            "status": "unresolved", "count": "37", "userCount": 9, "firstSeen": "2026-12-06T03:00:00Z",
            "firstRelease": {"version": release}, "permalink": f"https://sentry.io/organizations/acme/issues/{n}/"}


def write_config(path: Path, body: str) -> None:
    path.write_text(textwrap.dedent(body))


@pytest.fixture(scope="module")
def deploy_asset(airflow_db, tmp_path_factory):
    """post_deploy_verification parsed and synced with a vercel section: the vercel_deployments asset exists."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    path = tmp_path_factory.mktemp("deploy_asset") / "maintenance.yaml"
    write_config(path, """
        site: {name: deploy.example, url: "https://deploy.example"}
        vercel: {conn_id: vercel_api, watch_interval: 10s}
    """)
    saved = os.environ.get("MAINTENANCE_CONFIG")
    os.environ["MAINTENANCE_CONFIG"] = str(path)
    try:
        with create_session() as session:
            DagBundlesManager().sync_bundles_to_db(session=session)
        bag = BundleDagBag(dag_folder=str(DAGS / "post_deploy_verification.py"), bundle_path=DAGS,
                           bundle_name="dags-folder")
        assert "post_deploy_verification" in bag.dags, bag.import_errors
        assert type(bag.dags["post_deploy_verification"].timetable).__name__ == "AssetTriggeredTimetable"
        sync_bag_to_db(bag, "dags-folder", None)
    finally:
        if saved is None:
            os.environ.pop("MAINTENANCE_CONFIG", None)
        else:
            os.environ["MAINTENANCE_CONFIG"] = saved
    return "vercel_deployments"


@pytest.fixture
def deploy_state_store(deploy_asset, monkeypatch):
    from airflow.sdk import Asset
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.context import AssetStateStoreAccessors

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", SupervisorStandIn(), raising=False)
    store = AssetStateStoreAccessors(inlets=[Asset(name=deploy_asset)])
    store.delete("deployments")   # each test starts with a watcher that never ran
    return store
