"""The weekly security-log judgements: Atlas events by category with who and when, what is
unexpected (access list opened, new API key, roles raised), the admin audit log's role changes and
failed-login rate, and hostile event shapes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from maintenance.checks.security_logs import (
    category, describe_event, judge_admin_actions, judge_atlas_events, judge_failed_logins, judge_role_changes,
    logs_summary,
)

WHEN = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)


def event(kind, **fields):
    return {"id": f"e-{kind}", "created": "2026-11-23T10:00:00Z", "eventTypeName": kind, "groupId": "p1", **fields}


def test_event_types_fall_into_categories():
    assert category("NETWORK_PERMISSION_ENTRY_ADDED") == "access_list"
    assert category("API_KEY_ACCESS_LIST_ENTRY_ADDED") == "access_list"
    assert category("API_KEY_CREATED") == "api_key"
    assert category("MONGODB_USER_UPDATED") == "database_user"
    assert category("USER_ROLES_CHANGED_AUDIT") == "role"
    assert category("ATLAS_USER_LOGIN_FAILED") == "failed_login"
    assert category("CPS_SNAPSHOT_SUCCESSFUL") == "other"


def test_who_and_when_come_from_the_fields_each_type_has():
    d = describe_event(event("NETWORK_PERMISSION_ENTRY_ADDED", username="alice@shop.example", whitelistEntry="0.0.0.0/0",
                             remoteAddress="198.51.100.7"))
    assert (d["who"], d["when"], d["detail"], d["whole_internet"]) == \
        ("alice@shop.example", "2026-11-23T10:00:00Z", "0.0.0.0/0", True)
    key = describe_event(event("API_KEY_CREATED", publicKey="abcdefgh", targetPublicKey="zyxwvuts"))
    assert key["who"] == "API key abcdefgh" and key["detail"] == "zyxwvuts"
    bare = describe_event({"eventTypeName": None})
    assert (bare["type"], bare["who"], bare["when"]) == ("UNKNOWN", "Atlas", "?")
    assert describe_event(event("NETWORK_PERMISSION_ENTRY_ADDED", whitelistEntry="::/0"))["whole_internet"]
    assert not describe_event(event("NETWORK_PERMISSION_ENTRY_ADDED", whitelistEntry="not an ip"))["whole_internet"]


def test_unexpected_changes_fail_and_name_who_and_when():
    events = [event("NETWORK_PERMISSION_ENTRY_ADDED", username="alice", whitelistEntry="203.0.113.9/32"),
              event("API_KEY_CREATED", username="bob", targetPublicKey="newkey12"),
              event("MONGODB_USER_ADDED", username="carol", targetUsername="reporting"),
              event("CPS_SNAPSHOT_SUCCESSFUL"), "not an event", event("ATLAS_USER_LOGIN_FAILED", username="eve")]
    result = judge_atlas_events(events, [], project="p1")
    assert (result.status, result.reason, result.metrics["unexpected"]) == ("fail", "unexpected_change", 2)
    assert "access list opened: NETWORK_PERMISSION_ENTRY_ADDED 203.0.113.9/32 by alice at 2026-11-23T10:00:00Z" \
        in result.summary
    assert "new API key: API_KEY_CREATED newkey12 by bob" in result.summary
    assert result.metrics["events"] == 5 and result.metrics["failed_login_events"] == 1
    assert result.evidence["other_types"] == ["CPS_SNAPSHOT_SUCCESSFUL"]
    planned = judge_atlas_events(events, ["NETWORK_PERMISSION_ENTRY_ADDED", "API_KEY_CREATED"], project="p1")
    assert planned.status == "ok" and "by carol" in planned.summary


def test_the_whole_internet_is_never_expected():
    opened = [event("NETWORK_PERMISSION_ENTRY_ADDED", username="alice", whitelistEntry="0.0.0.0/0")]
    result = judge_atlas_events(opened, ["NETWORK_PERMISSION_ENTRY_ADDED"], project="p1")
    assert result.status == "fail" and "opened to the whole internet" in result.summary
    quiet = judge_atlas_events([event("CPS_SNAPSHOT_SUCCESSFUL")], [], project="p1")
    assert quiet.status == "ok" and "no security-relevant change" in quiet.summary


def test_roles_raised_to_admin_fail_unless_planned():
    changes = [{"user": "root", "target": "mallory", "role": "Admin", "time": WHEN},
               {"user": "root", "target": "carol", "role": "admin", "time": WHEN},
               {"user": "root", "target": "dave", "role": "editor", "time": WHEN}]
    result = judge_role_changes(changes, ["admin", "owner"], ["carol"], collection="app.admin_audit")
    assert (result.status, result.metrics) == ("fail", {"role_changes": 3, "raised_to_admin": 1})
    assert "mallory made Admin by root at 2026-11-23 10:00 UTC" in result.summary and "carol" not in result.summary
    assert judge_role_changes(changes[1:], ["admin"], ["carol"], collection="c").status == "ok"


def minutes(first, count, users=("admin",)):
    return [{"minute": first + timedelta(minutes=i), "count": 1, "users": list(users)} for i in range(count)]


def test_failed_logins_above_the_rate_fail_even_across_a_clock_hour():
    burst = minutes(WHEN - timedelta(minutes=7), 14, ("admin", "root"))      # 09:53 to 10:06
    later = minutes(WHEN + timedelta(hours=5), 3, ("ann",))
    result = judge_failed_logins(burst + later, 40, 10, collection="c")
    assert (result.status, result.reason) == ("fail", "failed_logins_rate")
    assert "14 between 2026-11-23 09:53 and 10:06 UTC (admin, root)" in result.summary
    assert result.metrics == {"failed_logins": 17, "logins": 40, "peak_per_hour": 14, "windows_over_limit": 1}
    calm = judge_failed_logins(later, 40, 10, collection="c")
    assert calm.status == "ok" and "3 failed of 40" in calm.summary and "peak 3 in an hour" in calm.summary


def test_a_slow_trickle_is_not_a_burst_and_two_bursts_are_two():
    trickle = [{"minute": WHEN + timedelta(minutes=7 * i), "count": 1, "users": ["x"]} for i in range(60)]
    assert judge_failed_logins(trickle, 60, 10, collection="c").status == "ok"    # 9 an hour at most
    two = minutes(WHEN, 12) + minutes(WHEN + timedelta(hours=3), 11, ("eve",))
    result = judge_failed_logins(two, 23, 10, collection="c")
    assert result.metrics["windows_over_limit"] == 2 and "(eve)" in result.summary
    assert judge_failed_logins([{"minute": "garbage", "count": 99}], 0, 10, collection="c").status == "ok"


def test_admin_actions_by_user_and_the_summary():
    by_user = [{"user": "ann", "action": "delete_user", "count": 4, "last": WHEN},
               {"user": "ann", "action": "login", "count": 2, "last": WHEN},
               {"user": "bob", "action": "refund", "count": 1, "last": WHEN}]
    actions = judge_admin_actions(by_user, collection="app.admin_audit")
    assert actions.metrics == {"actions": 7, "admins_active": 2}
    assert "ann: delete_user x4, login x2; bob: refund x1" in actions.summary
    summary = logs_summary([actions, judge_failed_logins(minutes(WHEN, 20), 20, 10, collection="c")],
                           WHEN - timedelta(days=7), WHEN)
    lines = summary.summary.splitlines()
    assert lines[0] == "Security logs 2026-11-16 to 2026-11-23: 1 unexpected finding(s)"
    assert lines[1].startswith("• [fail] admin log: more than 10 failed admin logins within an hour")
