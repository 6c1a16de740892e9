"""The weekly security log review against the local Atlas API (Digest auth, paged events with
minDate/maxDate) and the local MongoDB wire-protocol server (the admin audit log seeded through
pymongo, aggregated by the server; SCRAM auth; faults)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from atlas_server import AtlasServer, iso
from mongo_fixtures import mongo_auth_server, mongo_server_factory  # noqa: F401

from maintenance.config import MaintenanceConfig
from maintenance.operators.security_logs import admin_log, atlas_events, atlas_org_events
from maintenance.results import utcnow

NOW = utcnow()
START = NOW - timedelta(days=7)


def config(**logs):
    return MaintenanceConfig.model_validate({"site": {"name": "s", "url": "https://shop.example"},
                                             "atlas": {"restore_test": False}, "security_logs": logs})


def audit_documents(now=NOW):
    docs = []
    for i in range(14):        # a burst of failed admin logins within one hour
        docs.append({"user": "admin" if i % 2 else "root", "action": "login", "success": False,
                     "timestamp": now - timedelta(hours=30, minutes=i, seconds=7)})
    docs += [{"user": "ann", "action": "login", "success": True, "timestamp": now - timedelta(days=1)},
             {"user": "ann", "action": "delete_user", "timestamp": now - timedelta(days=2)},
             {"user": "ann", "action": "delete_user", "timestamp": now - timedelta(days=2, hours=1)},
             {"user": "ann", "action": "role_change", "target_user": "mallory", "new_role": "admin",
              "timestamp": now - timedelta(days=3)},
             {"user": "ann", "action": "role_change", "target_user": "dave", "new_role": "editor",
              "timestamp": now - timedelta(days=3, hours=2)},
             # last month: outside the window
             {"user": "old", "action": "role_change", "target_user": "x", "new_role": "admin",
              "timestamp": now - timedelta(days=20)},
             {"user": "old", "action": "login", "success": False, "timestamp": now - timedelta(days=20)}]
    return docs


@pytest.fixture
def audit_log(mongo_auth_server, monkeypatch):  # noqa: F811
    mongo_auth_server.seed("app", "admin_audit", audit_documents())
    for key, value in mongo_auth_server.airflow_env("mongo_default").items():
        monkeypatch.setenv(key, value)
    return mongo_auth_server


def test_the_admin_log_is_aggregated_in_mongodb(audit_log):
    actions, roles, logins = admin_log(config().security_logs, START, NOW, "maintenance_weekly")
    assert actions.status == "ok" and actions.metrics == {"actions": 19, "admins_active": 3}
    assert "ann: delete_user x2" in actions.summary and "admin: login x7" in actions.summary
    assert (roles.status, roles.metrics) == ("fail", {"role_changes": 2, "raised_to_admin": 1})
    assert "mallory made admin by ann" in roles.summary and "x made admin" not in roles.summary
    assert (logins.status, logins.metrics["failed_logins"], logins.metrics["logins"]) == ("fail", 14, 15)
    assert logins.metrics["peak_per_hour"] == 14 and "(admin, root)" in logins.summary
    assert actions.target == "app.admin_audit"
    # the work happened in MongoDB: four aggregate commands, no documents pulled with find
    names = audit_log.command_names()
    assert names.count("aggregate") == 4 and "find" not in names


def test_documents_of_another_shape_are_read_and_the_raise_still_flagged(mongo_auth_server, monkeypatch):  # noqa: F811
    # Issue 18 item 5: the app stores the target user (and sometimes the user, the role) as an object.
    at = NOW - timedelta(days=1)
    mongo_auth_server.seed("app", "admin_audit", [
        {"user": {"id": 1, "email": "ann@shop.example"}, "action": "role_change",
         "target_user": {"id": 7, "email": "mallory@shop.example"}, "new_role": "admin", "timestamp": at},
        {"user": "ann", "action": "role_change", "target_user": ["eve@shop.example"],
         "new_role": {"name": "Admin"}, "timestamp": at + timedelta(minutes=1)},
        {"user": "ann", "action": "role_change", "target_user": {"id": 9, "email": "ops@shop.example"},
         "new_role": "admin", "timestamp": at + timedelta(minutes=2)},            # a planned admin
        {"user": {"id": 1}, "action": ["login"], "success": False, "timestamp": at + timedelta(minutes=3)},
        {"user": 42, "action": "login", "success": False, "timestamp": at + timedelta(minutes=4)}])
    for key, value in mongo_auth_server.airflow_env("mongo_default").items():
        monkeypatch.setenv(key, value)
    logs = config(expected_admins=["ops@shop.example"], max_failed_logins_per_hour=5).security_logs
    actions, roles, logins = admin_log(logs, START, NOW, "maintenance_weekly")
    assert (roles.status, roles.metrics) == ("fail", {"role_changes": 3, "raised_to_admin": 2}), roles.summary
    assert "mallory@shop.example (7) made admin by ann@shop.example (1)" in roles.summary
    assert "eve@shop.example made Admin by ann" in roles.summary and "ops@shop.example" not in roles.summary
    assert actions.status == "ok" and "ann@shop.example (1): role_change x1" in actions.summary
    assert logins.status == "ok" and logins.metrics["failed_logins"] == 2     # an array matches its item
    from maintenance.checks.security_logs import logs_summary
    assert "1 unexpected finding" in logs_summary([actions, roles, logins], START, NOW).summary


def test_field_names_come_from_the_config(mongo_auth_server, monkeypatch):  # noqa: F811
    docs = [{"who": "zed", "what": "signin", "at": NOW - timedelta(hours=2), "ok": False} for _ in range(3)]
    docs.append({"who": "zed", "what": "grant", "whom": "yan", "role": "owner", "at": NOW - timedelta(hours=1)})
    mongo_auth_server.seed("ops", "audit", docs)
    for key, value in mongo_auth_server.airflow_env("mongo_default").items():
        monkeypatch.setenv(key, value)
    logs = config(database="ops", collection="audit", login_action="signin", role_change_action="grant",
                  max_failed_logins_per_hour=2, expected_admins=[],
                  fields={"user": "who", "action": "what", "time": "at", "success": "ok", "role": "role",
                          "target": "whom"}).security_logs
    actions, roles, logins = admin_log(logs, START, NOW, "maintenance_weekly")
    assert actions.metrics["actions"] == 4 and roles.status == "fail" and "yan made owner by zed" in roles.summary
    assert logins.status == "fail" and logins.metrics["failed_logins"] == 3


def test_mongodb_faults_become_classified_results(audit_log, monkeypatch):
    logs = config().security_logs
    audit_log.fail_command("aggregate", "not authorized on app to execute command", code=13, code_name="Unauthorized")
    (denied,) = admin_log(logs, START, NOW, "maintenance_weekly")
    assert (denied.status, denied.reason) == ("fail", "unauthorized") and "mongo_default" in denied.summary
    audit_log.clear_faults()
    monkeypatch.setenv("AIRFLOW_CONN_MONGO_DEFAULT", audit_log.airflow_conn(password="wrong-PASSWORD"))
    (refused,) = admin_log(logs, START, NOW, "maintenance_weekly")
    assert refused.reason == "unauthorized" and "AuthenticationFailed" in refused.summary
    assert "wrong-PASSWORD" not in refused.summary and "s3cret" not in refused.summary
    monkeypatch.setenv("AIRFLOW_CONN_MONGO_DEFAULT", audit_log.airflow_conn())
    audit_log.close_port()
    (down,) = admin_log(logs, START, NOW, "maintenance_weekly")
    assert down.reason == "timeout" and "no server answered" in down.summary


def test_without_a_connection_or_collection_the_admin_log_is_skipped_saying_how(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_MONGO_DEFAULT", raising=False)
    (missing,) = admin_log(config().security_logs, START, NOW, "maintenance_weekly")
    assert missing.status == "skipped" and "set Airflow connection 'mongo_default'" in missing.summary
    (none,) = admin_log(config(collection=None).security_logs, START, NOW, "maintenance_weekly")
    assert none.status == "skipped" and "security_logs.collection" in none.summary


@pytest.fixture
def atlas(monkeypatch):
    with AtlasServer() as server:
        monkeypatch.setenv("AIRFLOW_CONN_ATLAS_API", server.connection_json())
        yield server


def test_atlas_events_of_the_week_with_who_and_when(atlas):
    atlas.events = [{"id": f"n{i}", "created": iso(NOW - timedelta(hours=i + 1)), "eventTypeName": "CLUSTER_UPDATE_SUBMITTED"}
                    for i in range(130)]             # more than a page of 100
    atlas.events += [
        {"id": "a1", "created": iso(NOW - timedelta(days=1)), "eventTypeName": "NETWORK_PERMISSION_ENTRY_ADDED",
         "username": "alice@shop.example", "whitelistEntry": "0.0.0.0/0", "remoteAddress": "198.51.100.7"},
        {"id": "k1", "created": iso(NOW - timedelta(days=2)), "eventTypeName": "API_KEY_CREATED",
         "username": "bob@shop.example", "targetPublicKey": "newkey12"},
        {"id": "u1", "created": iso(NOW - timedelta(days=3)), "eventTypeName": "MONGODB_USER_ADDED",
         "username": "carol@shop.example", "dbUserUsername": "reporting"},
        {"id": "old", "created": iso(NOW - timedelta(days=12)), "eventTypeName": "API_KEY_CREATED", "username": "old"},
    ]
    result = atlas_events(config(), START, NOW, "maintenance_weekly")
    assert (result.status, result.reason) == ("fail", "unexpected_change")
    assert result.metrics["events"] == 133 and result.metrics["unexpected"] == 2
    assert "access list opened to the whole internet: NETWORK_PERMISSION_ENTRY_ADDED 0.0.0.0/0 by alice@shop.example" \
        in result.summary and "from 198.51.100.7" in result.summary
    assert "new API key: API_KEY_CREATED newkey12 by bob@shop.example" in result.summary
    assert "old" not in json.dumps(result.evidence["events"])
    planned = atlas_events(config(expected_event_types=["API_KEY_CREATED"]), START, NOW, "maintenance_weekly")
    assert planned.metrics["unexpected"] == 1


def test_atlas_failures_are_classified(atlas, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ATLAS_API", atlas.connection_json(private_key="wrong-SECRET"))
    result = atlas_events(config(), START, NOW, "maintenance_weekly")
    assert (result.status, result.reason) == ("fail", "unauthorized") and "atlas_api" in result.summary
    assert "wrong-SECRET" not in result.summary
    monkeypatch.delenv("AIRFLOW_CONN_ATLAS_API")
    skipped = atlas_events(config(), START, NOW, "maintenance_weekly")
    assert skipped.status == "skipped" and "connection 'atlas_api'" in skipped.summary


def test_an_opened_access_list_is_seen_in_the_project_and_the_organisation_events(atlas):
    # as the spec has them: the project's entry is the event's whitelistEntry; the organisation's
    # access-list settings are organisation events, absent from the project's events
    atlas.events = [{"id": "a2", "created": iso(NOW - timedelta(hours=5)), "eventTypeName": "NETWORK_PERMISSION_ENTRY_ADDED",
                     "username": "dev@shop.example", "whitelistEntry": "198.51.100.0/24", "groupId": atlas.project_id}]
    atlas.org_events = [{"id": "o1", "created": iso(NOW - timedelta(days=2)), "orgId": atlas.org_id,
                         "eventTypeName": "ORG_PUBLIC_API_ACCESS_LIST_NOT_REQUIRED", "username": "owner@shop.example"},
                        {"id": "o2", "created": iso(NOW - timedelta(days=1)), "orgId": atlas.org_id,
                         "eventTypeName": "ORG_INVOICE_OVER_THRESHOLD"}]
    project = atlas_events(config(), START, NOW, "maintenance_weekly")
    assert (project.status, project.reason) == ("fail", "unexpected_change")
    assert "access list opened: NETWORK_PERMISSION_ENTRY_ADDED 198.51.100.0/24 by dev@shop.example" in project.summary
    org = atlas_org_events(config(), START, NOW, "maintenance_weekly")
    assert (org.check, org.target, org.status) == ("security.logs.atlas_org", f"atlas-org:{atlas.org_id}", "fail")
    assert "access list opened: ORG_PUBLIC_API_ACCESS_LIST_NOT_REQUIRED by owner@shop.example" in org.summary
    # only the access-list types are asked of the organisation (the invoice is not read), and no raw documents
    org_query = atlas.event_queries[-1]
    assert "ORG_PUBLIC_API_ACCESS_LIST_NOT_REQUIRED" in org_query["eventType"] and org.metrics["events"] == 1
    assert all("includeRaw" not in q for q in atlas.event_queries)


def test_a_key_that_may_not_read_the_organisation_is_a_warning_saying_what_goes_unseen(atlas):
    atlas.org_readable = False
    org = atlas_org_events(config(), START, NOW, "maintenance_weekly")
    assert (org.status, org.reason, org.critical) == ("warn", "unauthorized", False)
    assert "API access list no longer required" in org.summary and "Organization Read Only" in org.summary
    assert "atlas-private-SECRET" not in org.summary
    # a key refused by the project itself is not an organisation permission: it fails as it is
    atlas.private_key = "rotated-SECRET"
    refused = atlas_org_events(config(), START, NOW, "maintenance_weekly")
    assert (refused.status, refused.reason) == ("fail", "unauthorized") and "Organization Read Only" not in refused.summary


def test_the_stand_in_refuses_event_fields_and_types_the_spec_does_not_have(atlas):
    with pytest.raises(AssertionError, match="accessListEntry"):
        atlas.events = [{"id": "x", "created": iso(NOW), "eventTypeName": "NETWORK_PERMISSION_ENTRY_ADDED",
                         "accessListEntry": "0.0.0.0/0"}]
    with pytest.raises(AssertionError, match="ORG_UI_IP_ACCESS_LIST_DISABLED"):
        atlas.events = [{"id": "x", "created": iso(NOW), "eventTypeName": "ORG_UI_IP_ACCESS_LIST_DISABLED"}]
