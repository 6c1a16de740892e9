"""checks/deploys.py (issue 19): which deployments the watcher announces, the build's error line,
the verdict's evidence and way back, the post_deploy config keys."""

from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest

from maintenance.checks.deploys import (SentryFacts, announcements, build_error_line, facts, rollback_advice,
                                        sentry_findings, verdict)
from maintenance.config import ConfigError, load_config
from maintenance.results import CheckResult


def dep(uid, created, state="READY"):
    return {"uid": uid, "created": created, "readyState": state, "url": f"web-{uid}.vercel.app",
            "meta": {"githubCommitSha": "a" * 40}, "inspectorUrl": f"https://vercel.com/acme/web/{uid}"}


def test_first_poll_announces_nothing_but_remembers_what_is_still_building():
    due, memory = announcements([dep("b", 20, "BUILDING"), dep("a", 10)], None)
    assert due == [] and memory == {"since": 20, "announced": {}}
    due, memory = announcements([dep("b", 20, "READY"), dep("a", 10)], memory)
    assert [d["uid"] for d in due] == ["b"]
    assert announcements([dep("b", 20, "READY")], memory)[0] == [], "announced once"


def test_an_older_deployment_turning_ready_after_a_newer_one_is_announced_too():
    memory = {"since": 0, "announced": {}}
    due, memory = announcements([dep("new", 30, "READY"), dep("old", 20, "BUILDING")], memory)
    assert [d["uid"] for d in due] == ["new"] and memory["since"] == 20
    due, memory = announcements([dep("new", 30, "READY"), dep("old", 20, "ERROR")], memory)
    assert [d["uid"] for d in due] == ["old"]
    assert memory == {"since": 30, "announced": {"new": 30}}
    assert announcements([dep("new", 30), dep("old", 20, "ERROR")], memory)[0] == []


def test_a_canceled_deployment_does_not_hold_the_watermark_back():
    due, memory = announcements([dep("c", 40, "CANCELED"), dep("r", 30)], {"since": 0, "announced": {}})
    assert [d["uid"] for d in due] == ["r"] and memory["since"] == 40


def test_build_error_line_is_the_line_that_names_the_error():
    events = [{"type": "stdout", "payload": {"text": "> next build"}},
              {"type": "stderr", "payload": {"text": "warn - no cache"}},
              {"type": "stderr", "payload": {"text": "Type error: Property 'x' does not exist"}},
              {"type": "stdout", "text": "done"}]
    assert build_error_line(events) == "Type error: Property 'x' does not exist"
    assert build_error_line([], {"errorMessage": "Build failed"}) == "Build failed"
    assert build_error_line([]) == "(no error line in the build log)"


def test_a_regressed_verdict_names_the_evidence_and_the_way_back():
    d = {**facts(dep("dpl_new", 50)), "verified_at": "2026-12-06T00:00:00+00:00"}
    broken = CheckResult(check="deploy:checkout", status="fail", summary="HTTP 500", target="https://x/checkout")
    sentry = SentryFacts(release="a" * 40, new_issues=[{"shortId": "WEB-9", "title": "TypeError", "count": "12"}],
                         errors_before=3, errors_after=40, window_s=900)
    problems = sentry_findings(sentry, max_new_issues=0, rate_factor=2, min_errors=10)
    assert len(problems) == 2 and "WEB-9 TypeError (12 events)" in problems[0] and "3 before -> 40" in problems[1]
    advice = rollback_advice(facts(dep("dpl_old", 40)), verified=True)
    result = verdict(d, endpoint_failures=[broken], sentry=sentry, sentry_problems=problems, way_back=advice)
    assert (result.status, result.reason) == ("fail", "regressed")
    assert "checkout (https://x/checkout): HTTP 500" in result.summary
    assert "`vercel rollback dpl_old`" in result.summary and "https://vercel.com/acme/web/dpl_old" in result.summary
    assert "verified healthy" in result.summary
    assert "NOT verified" in rollback_advice(facts(dep("dpl_old", 40)), verified=False)


def test_quiet_release_is_healthy():
    sentry = SentryFacts(release="r", errors_before=5, errors_after=9, window_s=900)
    assert sentry_findings(sentry, max_new_issues=0, rate_factor=2, min_errors=10) == []
    result = verdict(facts(dep("d", 1)), endpoint_failures=[], sentry=sentry, sentry_problems=[], way_back="")
    assert (result.status, result.reason) == ("ok", "healthy") and "errors 5 -> 9" in result.summary


def load(tmp_path, body):
    path = tmp_path / "m.yaml"
    path.write_text("site: {name: s, url: 'https://s.example'}\n" + textwrap.dedent(body))
    return load_config(path)


def test_post_deploy_keys_defaults_and_bounds(tmp_path):
    config = load(tmp_path, "vercel: {conn_id: vercel_api}\n")
    assert config.vercel.watch_interval == timedelta(seconds=60) and not config.vercel.check_deployment_url
    assert config.post_deploy.observe_for == timedelta(minutes=15) and not config.post_deploy.auto_rollback
    assert config.post_deploy.release == "{sha}"
    with pytest.raises(ConfigError, match="watch_interval"):
        load(tmp_path, "vercel: {watch_interval: 2s}\n")
    with pytest.raises(ConfigError, match="post_deploy.release"):
        load(tmp_path, "post_deploy: {release: 'web@{version}'}\n")
    with pytest.raises(ConfigError, match="unknown endpoint"):
        load(tmp_path, "post_deploy: {endpoints: [nope]}\n")
    assert load(tmp_path, "post_deploy: {release: 'web@{short_sha}'}\n").post_deploy.release == "web@{short_sha}"
