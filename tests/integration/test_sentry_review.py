"""The daily Sentry review against a local server speaking Sentry's Web API shapes
(provider-apis.md section 2): issues with Link-header cursors, stats_v2 series."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from maintenance.checks.errors import critical_errors, error_rate, new_issues
from maintenance.hooks.http_policy import ProviderError
from maintenance.hooks.sentry import SentryHook, org_not_found
from servers import LocalServer, json_reply

TOKEN = "sntrys_test_token_abcdef"


def issue(n, level="error"):
    return {"id": str(n), "shortId": f"WEB-{n}", "title": f"TypeError {n}", "level": level, "status": "unresolved",
            "count": str(10 * n), "userCount": n, "firstSeen": "2026-11-27T10:00:00Z",
            "permalink": f"https://sentry.io/organizations/acme/issues/{n}/", "project": {"id": "2", "slug": "web"}}


class FakeSentry:
    def __init__(self, hourly):
        self.hourly = hourly
        self.queries = []
        self.broken_issues = None     # a Reply that replaces every issues answer (hostile input)
        self.broken_page = None       # ... or only the second page's (reached through the Link cursor)
        self.broken_stats = None      # a Reply that replaces the stats_v2 answer

    def __call__(self, request):
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return json_reply({"detail": "Invalid token"}, 401)
        assert "organization" not in request.headers           # extras are not sent as headers
        url = urlsplit(request.path)
        query = parse_qs(url.query)
        if url.path == "/api/0/organizations/acme/issues/":
            self.queries.append(query.get("query", [""])[0])
            if self.broken_issues is not None:
                return self.broken_issues
            if "level:fatal" in query["query"][0]:
                return json_reply([issue(1, "fatal")])
            if query.get("cursor") == ["0:100:0"]:
                if self.broken_page is not None:
                    return self.broken_page
                return json_reply([issue(3), issue(4)], headers={"Link": '<x>; rel="previous"; results="true"'})
            return json_reply([issue(2)], headers={"Link": (
                f'<{self.base}/api/0/organizations/acme/issues/?cursor=0:0:1>; rel="previous"; results="false"; '
                f'cursor="0:0:1", <{self.base}/api/0/organizations/acme/issues/?query=x&cursor=0:100:0>; '
                'rel="next"; results="true"; cursor="0:100:0"')})
        if url.path == "/api/0/organizations/acme/stats_v2/":
            if self.broken_stats is not None:
                return self.broken_stats
            assert query["category"] == ["error"] and query["field"] == ["sum(quantity)"]
            return json_reply({"start": "2026-11-27T00:00:00Z", "end": "2026-11-28T00:00:00Z", "intervals": [],
                               "groups": [{"by": {"outcome": "accepted"}, "totals": {"sum(quantity)": sum(self.hourly)},
                                           "series": {"sum(quantity)": self.hourly}}]})
        return json_reply({"detail": "The requested resource does not exist"}, 404)


@pytest.fixture
def sentry(monkeypatch):
    def start(hourly):
        app = FakeSentry(hourly)
        server = LocalServer(app).__enter__()
        app.base = server.url
        monkeypatch.setenv("AIRFLOW_CONN_SENTRY_API", json.dumps(
            {"conn_type": "http", "host": server.url, "password": TOKEN, "extra": {"organization": "acme"}}))
        started.append(server)
        return app
    started: list = []
    yield start
    for server in started:
        server.__exit__(None, None, None)


def test_issues_follow_link_cursors_and_checks_judge_them(sentry):
    app = sentry([5] * 23 + [2])
    hook = SentryHook()
    fatal = hook.issues("is:unresolved level:fatal")
    fresh = hook.issues("is:unresolved firstSeen:-24h")
    assert [i["shortId"] for i in fresh] == ["WEB-2", "WEB-3", "WEB-4"]
    crit = critical_errors(fatal)
    assert (crit.status, crit.reason) == ("fail", "fatal_errors") and "WEB-1 TypeError 1 (10 events)" in crit.summary
    many = new_issues(fresh, max_per_day=2)
    assert (many.status, many.reason) == ("warn", "many_new_issues") and "3 new issue(s)" in many.summary
    assert new_issues(fresh, max_per_day=10).status == "ok"
    rate = error_rate(hook.hourly_errors(), spike_factor=3, min_per_hour=20)
    assert rate.status == "ok" and rate.metrics["errors_last_hour"] == 5


def test_error_spike_in_the_last_full_hour(sentry):
    sentry([4, 6, 5, 5, 7, 3, 5, 5, 4, 6, 5, 5, 5, 5, 4, 6, 5, 5, 5, 5, 5, 5, 90, 1])
    rate = error_rate(SentryHook().hourly_errors(), spike_factor=3, min_per_hour=20)
    assert (rate.status, rate.reason) == ("fail", "error_spike")
    assert "90 errors in the last hour, 18.0x the median of 5/h" in rate.summary


def test_quiet_site_noise_stays_under_the_floor():
    assert error_rate([0] * 22 + [6, 0], spike_factor=3, min_per_hour=20).status == "ok"


def test_bad_token_is_unauthorized_naming_the_connection(sentry, monkeypatch):
    app = sentry([1] * 24)
    conn = json.loads(__import__("os").environ["AIRFLOW_CONN_SENTRY_API"])
    conn["password"] = "sntrys_wrong_token_xyz"
    monkeypatch.setenv("AIRFLOW_CONN_SENTRY_API", json.dumps(conn))
    with pytest.raises(ProviderError) as caught:
        SentryHook().issues("is:unresolved")
    assert caught.value.reason == "unauthorized" and "sentry_api" in str(caught.value)
    assert "sntrys_wrong_token_xyz" not in str(caught.value)


def test_an_organization_this_host_does_not_have_is_named_with_the_host_and_the_eu_region(sentry, monkeypatch):
    sentry([1] * 24)
    conn = json.loads(__import__("os").environ["AIRFLOW_CONN_SENTRY_API"])
    conn["extra"]["organization"] = "acme-eu"          # an EU organization asked on the US host
    monkeypatch.setenv("AIRFLOW_CONN_SENTRY_API", json.dumps(conn))
    host = conn["host"].split("//")[1]
    for call in (lambda hook: hook.issues("is:unresolved"), lambda hook: hook.hourly_errors()):
        with pytest.raises(ProviderError) as caught:
            call(SentryHook())
        assert caught.value.status == 404
        assert f"Sentry on {host} has no organization 'acme-eu'" in str(caught.value)
        assert "https://de.sentry.io" in str(caught.value) and "connection 'sentry_api'" in str(caught.value)
    # asked on the EU host, the hint is the US one
    assert "in the US region is on https://sentry.io" in org_not_found("de.sentry.io", "acme", "sentry_api")


HTML = (200, {"Content-Type": "text/html"}, "<html><body>Sentry is down for maintenance</body></html>")


@pytest.fixture
def review_config(tmp_path, monkeypatch):
    from maintenance.config import load_config

    path = tmp_path / "m.yaml"
    path.write_text('site: {name: t.example, url: "https://t.example"}\nresults: {conn_id: t_results}\n'
                    "sentry: {max_new_issues_per_day: 10}\n")
    monkeypatch.setenv("AIRFLOW_CONN_T_RESULTS", json.dumps(
        {"conn_type": "sqlite", "extra": {"sqlalchemy_url": f"sqlite:///{tmp_path / 'r.db'}"}}))
    return load_config(path)


@pytest.mark.parametrize("where,reply", [
    ("broken_issues", HTML),                                                  # a 200 that is an HTML page
    ("broken_page", HTML),                                                    # ... on the page the Link cursor names
    ("broken_issues", json_reply({"detail": "an object, not a list"})),       # JSON of the wrong shape
    ("broken_stats", json_reply([1, 2, 3])),
    ("broken_stats", (200, {"Content-Type": "application/json"}, '{"groups": [{"by": ')),   # cut short
    ("broken_stats", (200, {"Content-Type": "application/json"}, "[" * 100_000 + "]" * 100_000)),   # too deep
])
def test_a_200_that_is_not_the_expected_json_is_a_classified_result(sentry, review_config, where, reply):
    """The daily review turns a non-JSON (or wrongly shaped) 200 into fail/malformed_response
    results; the other checks of the review still run."""
    from maintenance.operators.errors import SentryReviewOperator

    app = sentry([5] * 24)
    setattr(app, where, reply)
    results = {r.check: r for r in SentryReviewOperator(task_id="t").run_checks(review_config, {})}
    assert set(results) == {"sentry.critical_errors", "sentry.new_issues", "sentry.error_rate"}
    broken = ["sentry.error_rate"] if where == "broken_stats" else \
        ["sentry.new_issues"] if where == "broken_page" else ["sentry.critical_errors", "sentry.new_issues"]
    for name, result in results.items():
        if name in broken:
            assert (result.status, result.reason) == ("fail", "malformed_response"), result
            assert TOKEN not in result.summary
        else:
            assert result.reason != "malformed_response", result
    if where == "broken_page":
        assert app.queries[-1] == "x", "the Link cursor was followed to the broken page"
