"""runbook_database's steps against a local Atlas API, a Statuspage, a DNS server (SRV/TXT/A)
and a TCP listener for the hosts; each root cause alone is named first by the diagnosis."""

from __future__ import annotations

import socket
import threading

import pytest

from atlas_server import AtlasServer
from dns_server import DnsServer
from maintenance.operators import runbook_database as steps_module
from runbook_fixtures import by_check, conn, diagnosis_of, make_config, run_steps, statuspage_body
from servers import LocalServer, json_reply

HOST = "c0.ab1cd.mongodb.net"
STEPS = ["check_atlas_status", "verify_connection_string", "check_network_access", "review_connection_logs"]


@pytest.fixture(scope="module")
def listener():
    """A TCP port that accepts (stands in for the cluster's hosts in these step tests)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)

    def serve():
        while True:
            try:
                sock.accept()[0].close()
            except OSError:
                return
    threading.Thread(target=serve, daemon=True).start()
    yield sock.getsockname()[1]
    sock.close()


def _records(port):
    return {(f"_mongodb._tcp.{HOST}", "SRV"): [f"0 0 {port} shard-00-00.{HOST}", f"0 0 {port} shard-00-01.{HOST}"],
            (HOST, "TXT"): ["authSource=admin&replicaSet=atlas-rs0"],
            (f"shard-00-00.{HOST}", "A"): ["127.0.0.1"], (f"shard-00-01.{HOST}", "A"): ["127.0.0.1"]}


@pytest.fixture(scope="module")
def servers(listener):
    status = {"body": None}
    page = LocalServer(lambda r: json_reply(status["body"]))
    echo = LocalServer(lambda r: (200, {"Content-Type": "text/plain"}, "203.0.113.7\n"))
    with AtlasServer() as atlas, page, echo, DnsServer() as dns:
        yield {"atlas": atlas, "status": status, "dns": dns, "page": page, "echo": echo}


@pytest.fixture
def world(monkeypatch, servers, listener):
    atlas, dns = servers["atlas"], servers["dns"]
    atlas.cluster.update(stateName="IDLE", paused=False)
    atlas.access_list = [{"cidrBlock": "203.0.113.0/24", "comment": "workers", "groupId": atlas.project_id}]
    atlas.events = []
    servers["status"]["body"] = statuspage_body()
    dns.records = {(n.lower(), t): v for (n, t), v in _records(listener).items()}
    monkeypatch.setenv("AIRFLOW_CONN_ATLAS_API", atlas.connection_json())
    conn(monkeypatch, "mongo_default", conn_type="mongo", host=HOST, login="app", password="pw-SECRET",
         schema="app", extra={"srv": True})
    config = make_config(atlas={"conn_id": "atlas_api"}, runbooks={
        "resolver": dns.address,
        "database": {"status_url": f"{servers['page'].url}/api/v2/summary.json",
                     "egress_echo_url": f"{servers['echo'].url}/"}})
    return {**servers, "config": config}


def diagnose_world(world):
    steps = run_steps(steps_module, world["config"], STEPS)
    return steps, diagnosis_of("database", steps)


def test_healthy_every_step_green(world):
    steps, diagnosis = diagnose_world(world)
    results = by_check(steps)
    assert {c: r.status for c, r in results.items()} == {
        "database.atlas_status": "ok", "database.cluster_state": "ok", "database.connection_string": "ok",
        "database.srv_records": "ok", "database.hosts": "ok", "database.access_list": "ok", "database.events": "ok"}
    assert results["database.access_list"].evidence["egress_ip"] == "203.0.113.7"
    assert "203.0.113.0/24" in results["database.access_list"].summary
    assert results["database.srv_records"].evidence["txt"] == ["authSource=admin&replicaSet=atlas-rs0"]
    assert diagnosis.findings == [] and diagnosis.status == "ok"
    assert diagnosis.contacts[0].name == "MongoDB Atlas Support"
    assert "pw-SECRET" not in repr(steps)


def test_cluster_not_idle_is_named_first(world):
    world["atlas"].cluster["stateName"] = "REPAIRING"
    world["atlas"].events = [{"id": "e1", "created": "2099-01-01T00:00:00Z", "eventTypeName": "PRIMARY_ELECTED",
                              "clusterName": "prod", "hostname": f"shard-00-01.{HOST}"}]
    _, diagnosis = diagnose_world(world)
    root = diagnosis.root
    assert root.cause.reason == "cluster_not_idle" and "REPAIRING" in root.result.summary
    assert root.result.evidence["stateName"] == "REPAIRING"
    assert [f.cause.reason for f in diagnosis.findings] == ["cluster_not_idle", "cluster_events"]


def test_paused_cluster_fails(world):
    world["atlas"].cluster["paused"] = True
    _, diagnosis = diagnose_world(world)
    assert diagnosis.root.cause.reason == "cluster_unavailable" and diagnosis.status == "fail"


def test_our_address_missing_from_the_access_list_names_the_removed_entry(world):
    world["atlas"].access_list = [{"cidrBlock": "198.51.100.0/24", "groupId": "x"}]
    world["atlas"].events = [{"id": "e2", "created": "2099-01-01T00:00:00Z", "clusterName": None,
                              "eventTypeName": "NETWORK_PERMISSION_ENTRY_REMOVED", "username": "ops@example.org",
                              "whitelistEntry": "203.0.113.0/24"}]
    steps, diagnosis = diagnose_world(world)
    root = diagnosis.root
    assert root.cause.reason == "ip_not_allowed" and root.result.status == "fail"
    assert "203.0.113.7 is not in the project's IP access list" in root.result.summary
    assert "203.0.113.0/24" in root.evidence and "ops@example.org" in root.evidence
    assert by_check(steps)["database.hosts"].status == "ok"


def test_srv_record_missing(world):
    world["dns"].set(f"_mongodb._tcp.{HOST}", "SRV", None)
    steps, diagnosis = diagnose_world(world)
    assert diagnosis.root.cause.reason == "srv_missing"
    assert f"_mongodb._tcp.{HOST}" in diagnosis.root.result.summary
    assert by_check(steps)["database.hosts"].status == "skipped"


def test_atlas_incident_ranks_before_everything(world):
    world["status"]["body"] = statuspage_body("major", ["Clusters in AWS eu-west-1 unreachable"])
    world["atlas"].cluster["stateName"] = "UPDATING"
    _, diagnosis = diagnose_world(world)
    assert [f.cause.reason for f in diagnosis.findings][:2] == ["provider_incident", "cluster_not_idle"]
    assert "eu-west-1" in diagnosis.root.result.summary


def test_wrong_atlas_key_and_unreadable_status_page_are_classified(world, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ATLAS_API", world["atlas"].connection_json(private_key="wrong-key"))
    world["status"]["body"] = "<html>maintenance</html>"
    steps, _ = diagnose_world(world)
    results = by_check(steps)
    assert results["database.cluster_state"].reason == "unauthorized" and "atlas_api" in results["database.cluster_state"].summary
    assert results["database.atlas_status"].status == "warn" and results["database.atlas_status"].reason == "status_unknown"
    assert "wrong-key" not in repr(steps)


def test_malformed_connection_string(world, monkeypatch):
    conn(monkeypatch, "mongo_default", conn_type="mongo", host=f"{HOST}", port=27017, login="app",
         password="pw", extra={"srv": True})
    steps = run_steps(steps_module, world["config"], ["verify_connection_string"])   # MongoHook refuses it
    [result] = steps[0][1]
    assert (result.status, result.reason) == ("fail", "uri_invalid") and "srv URI should not specify a port" in result.summary
    assert "pw" not in result.summary.replace("port", "")


@pytest.mark.parametrize("uri, problem", [
    ("mysql://x", "scheme must be"),
    ("mongodb+srv://u:p@c0.example.net:27017/db", "exactly one host"),
    ("mongodb+srv://u:p@localhost/db", "three labels"),
    ("mongodb://u:p@ss@h1:27017/db", "unescaped special characters"),
    ("mongodb://h1:abc/db", "not a number"),
])
def test_connection_string_problems_are_named(uri, problem):
    from maintenance.checks.runbooks.database import connection_string

    result, parsed = connection_string(uri, "mongo_default")
    assert parsed is None and result.reason == "uri_invalid" and problem in result.summary


def test_hosts_that_do_not_answer(world):
    from servers import free_port

    port = free_port()
    world["dns"].set(f"_mongodb._tcp.{HOST}", "SRV", [f"0 0 {port} shard-00-00.{HOST}"])
    _, diagnosis = diagnose_world(world)
    assert diagnosis.root.cause.reason == "hosts_unreachable" and "refused" in diagnosis.root.result.summary


# -- the ping, through MongoHook over a socket to the local MongoDB wire-protocol server ----------
from mongo_fixtures import mongo_server_factory  # noqa: E402,F401


@pytest.fixture
def mongo(mongo_server_factory, monkeypatch):  # noqa: F811
    server = mongo_server_factory(users={"app": "s3cret-PW"}, replica_set="atlas-rs0")
    monkeypatch.setenv("AIRFLOW_CONN_MONGO_DEFAULT", server.airflow_conn())
    return server


def ping(world):
    return by_check(run_steps(steps_module, world["config"], ["ping_database"]))["database.ping"]


def test_ping_answers_through_mongohook(world, mongo):
    result = ping(world)
    assert result.status == "ok" and result.metrics["ping_ms"] > 0
    assert result.evidence["setName"] == "atlas-rs0"
    assert any(r.name == "ping" for r in mongo.received)


def test_wrong_database_password_is_named_first(world, mongo, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MONGO_DEFAULT", mongo.airflow_conn(password="wrong-PW"))
    steps = run_steps(steps_module, world["config"], STEPS + ["ping_database"])
    diagnosis = diagnosis_of("database", steps)
    assert diagnosis.root.cause.reason == "auth_failed" and "code 18" in diagnosis.root.result.summary
    assert "Database Access" in diagnosis.root.cause.action
    assert "wrong-PW" not in repr(steps) and "s3cret-PW" not in repr(steps)


def test_database_down_is_a_classified_symptom(world, mongo):
    mongo.close_port()
    result = ping(world)
    assert (result.status, result.reason) == ("fail", "hosts_unreachable") and "refused" in result.summary
    mongo.reopen_port()
    mongo.hang()
    result = ping(world)
    assert result.reason in ("connect_timeout", "server_selection")
