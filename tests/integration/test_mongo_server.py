"""The local MongoDB server: real pymongo and MongoHook over a socket (tests/mongo_server.py)."""

from __future__ import annotations

import json
import socket
import struct
import time
from datetime import datetime

import bson
import pymongo
import pytest
from mongo_fixtures import (  # noqa: F401
    APP_PASSWORD,
    APP_USER,
    mongo_auth_server,
    mongo_default_conn,
    mongo_server,
    mongo_server_factory,
)
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
)

FAST = {"serverSelectionTimeoutMS": 600, "connectTimeoutMS": 400, "socketTimeoutMS": 400}


def _orders() -> list[dict]:
    return [
        {"_id": i, "sku": sku, "qty": qty, "price": price, "tags": tags, "at": datetime(2026, 1, day, hour)}
        for i, (sku, qty, price, tags, day, hour) in enumerate([
            ("apple", 3, 1.5, ["fruit", "red"], 1, 9),
            ("pear", 1, 2.0, ["fruit"], 1, 17),
            ("apple", 7, 1.5, ["fruit", "red"], 2, 8),
            ("kale", 2, 4.0, ["veg"], 2, 23),
            ("pear", 5, 2.0, ["fruit"], 3, 12),
        ])
    ]


def test_crud_round_trip(mongo_server):
    coll = mongo_server.client().shop.orders
    assert coll.insert_many(_orders()).inserted_ids == [0, 1, 2, 3, 4]
    assert coll.count_documents({"sku": "apple"}) == 2
    assert coll.estimated_document_count() == 5
    assert coll.find_one({"_id": 3}, {"sku": 1, "_id": 0}) == {"sku": "kale"}
    page = list(coll.find({"tags": "fruit"}, {"_id": 1}).sort([("qty", -1)]).skip(1).limit(2))
    assert page == [{"_id": 4}, {"_id": 0}]
    assert sorted(coll.distinct("sku")) == ["apple", "kale", "pear"]

    result = coll.update_many({"sku": "pear"}, {"$inc": {"qty": 10}})
    assert (result.matched_count, result.modified_count) == (2, 2)
    upsert = coll.update_one({"_id": 9}, {"$set": {"sku": "fig", "qty": 1}}, upsert=True)
    assert upsert.upserted_id == 9
    assert coll.replace_one({"_id": 9}, {"sku": "date", "qty": 4}).modified_count == 1
    after = coll.find_one_and_update({"_id": 1}, {"$set": {"qty": 0}}, return_document=pymongo.ReturnDocument.AFTER)
    assert after["qty"] == 0 and list(after)[0] == "_id"
    assert coll.delete_one({"_id": 9}).deleted_count == 1
    assert coll.delete_many({"sku": "apple"}).deleted_count == 2
    assert sorted(d["_id"] for d in coll.find()) == [1, 3, 4]

    with pytest.raises(DuplicateKeyError):
        coll.insert_one({"_id": 1})
    with pytest.raises(BulkWriteError) as bulk:
        coll.insert_many([{"_id": 50}, {"_id": 1}, {"_id": 51}], ordered=False)
    assert bulk.value.details["nInserted"] == 2 and bulk.value.details["writeErrors"][0]["code"] == 11000


def test_cursor_batches_get_more_and_kill(mongo_server):
    mongo_server.seed("logs", "events", ({"n": i, "pad": "x" * 100} for i in range(350)))
    coll = mongo_server.client().logs.events
    assert [d["n"] for d in coll.find().sort("n", 1).batch_size(40)] == list(range(350))
    names = mongo_server.command_names()
    assert names.count("getMore") == 350 // 40  # 40 first, then 8 getMores of 40 and the last 30

    cursor = coll.find().batch_size(10)
    next(cursor)
    cursor.close()  # a live server cursor: pymongo kills it
    assert mongo_server.command_names()[-1] == "killCursors"
    assert len(list(coll.find(limit=-5))) == 5  # single batch


def test_aggregation_pipelines(mongo_server):
    mongo_server.seed("shop", "orders", _orders())
    coll = mongo_server.client().shop.orders
    by_sku = list(coll.aggregate([
        {"$match": {"qty": {"$gte": 1}}},
        {"$group": {"_id": "$sku", "units": {"$sum": "$qty"}, "avg": {"$avg": "$qty"}, "lo": {"$min": "$qty"},
                    "hi": {"$max": "$qty"}, "first": {"$first": "$_id"}, "ids": {"$push": "$_id"}}},
        {"$sort": {"units": -1}},
        {"$limit": 2},
    ]))
    assert by_sku == [
        {"_id": "apple", "units": 10, "avg": 5.0, "lo": 3, "hi": 7, "first": 0, "ids": [0, 2]},
        {"_id": "pear", "units": 6, "avg": 3.0, "lo": 1, "hi": 5, "first": 1, "ids": [1, 4]},
    ]
    revenue = list(coll.aggregate([
        {"$addFields": {"revenue": {"$multiply": ["$qty", "$price"]}}},
        {"$project": {"_id": 0, "sku": 1, "revenue": 1}},
        {"$sort": {"revenue": -1}}, {"$limit": 1},
    ]))
    assert revenue == [{"sku": "apple", "revenue": 10.5}]
    tags = list(coll.aggregate([{"$unwind": "$tags"}, {"$group": {"_id": "$tags", "n": {"$sum": 1}}},
                                {"$sort": {"_id": 1}}]))
    assert tags == [{"_id": "fruit", "n": 4}, {"_id": "red", "n": 2}, {"_id": "veg", "n": 1}]
    assert list(coll.aggregate([{"$match": {"sku": "pear"}}, {"$count": "pears"}])) == [{"pears": 2}]
    facets = list(coll.aggregate([{"$facet": {
        "total": [{"$count": "n"}],
        "cheap": [{"$match": {"price": {"$lt": 2}}}, {"$project": {"_id": 1}}],
    }}]))
    assert facets == [{"total": [{"n": 5}], "cheap": [{"_id": 0}, {"_id": 2}]}]
    per_day = list(coll.aggregate([
        {"$group": {"_id": {"$dateToString": {"format": "%Y-%m-%d", "date": "$at"}}, "n": {"$sum": 1}}},
        {"$sort": {"_id": 1}},
    ]))
    assert per_day == [{"_id": "2026-01-01", "n": 2}, {"_id": "2026-01-02", "n": 2}, {"_id": "2026-01-03", "n": 1}]
    truncated = list(coll.aggregate([
        {"$group": {"_id": {"$dateTrunc": {"date": "$at", "unit": "day"}}, "n": {"$sum": 1}}},
        {"$sort": {"_id": 1}}, {"$limit": 1},
    ]))
    assert truncated == [{"_id": datetime(2026, 1, 1), "n": 2}]
    big = list(coll.aggregate([{"$unwind": "$tags"}], batchSize=2))  # cursor with getMore
    assert len(big) == 7


def test_unsupported_things_answer_errors_not_hangs(mongo_server):
    client = mongo_server.client()
    with pytest.raises(OperationFailure) as unknown:
        client.admin.command("noSuchThing")
    assert unknown.value.code == 59 and unknown.value.details["codeName"] == "CommandNotFound"
    with pytest.raises(OperationFailure) as trunc:
        list(client.db.c.aggregate([{"$project": {"d": {"$dateTrunc": {"date": "$at", "unit": "week",
                                                                         "binSize": 2}}}}]))
    assert trunc.value.code == 168
    with pytest.raises(OperationFailure) as stage:
        list(client.db.c.aggregate([{"$noSuchStage": {}}]))
    assert "noSuchStage" in str(stage.value)
    assert client.admin.command("ping") == {"ok": 1.0}  # the server is still fine


def test_admin_and_diagnostic_commands(mongo_server_factory):
    server = mongo_server_factory(replica_set="rs0")
    server.seed("app", "users", [{"name": "a"}])
    client = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=2000)  # discovery through the set
    try:
        assert client.admin.command("ping")["ok"] == 1.0
        hello = client.admin.command("hello")
        assert hello["setName"] == "rs0" and hello["isWritablePrimary"] and hello["hosts"] == [server.address]
        assert client.admin.command("buildInfo")["version"].startswith("7.")
        assert client.list_database_names() == ["app"]
        assert client.app.list_collection_names() == ["users"]
        client.app.create_collection("audit")
        with pytest.raises(OperationFailure) as exists:
            client.app.command("create", "audit")  # pymongo's create_collection checks client-side first
        assert exists.value.code == 48
        assert client.app.audit.create_index([("at", pymongo.DESCENDING)], name="at_desc") == "at_desc"
        assert [i["name"] for i in client.app.audit.list_indexes()] == ["_id_", "at_desc"]
        assert client.app.command("dbStats")["objects"] == 1
        status = client.admin.command("serverStatus")
        assert status["connections"]["current"] >= 1 and status["opcounters"]["insert"] >= 1
        assert client.admin.command("replSetGetStatus")["members"][0]["stateStr"] == "PRIMARY"
        client.app.drop_collection("audit")
        assert client.app.list_collection_names() == ["users"]
    finally:
        client.close()


def test_mongo_hook_pings_through_airflow_connection(mongo_default_conn):
    from airflow.providers.mongo.hooks.mongo import MongoHook

    mongo_default_conn.seed("app", "sessions", [{"user": "u1"}, {"user": "u2"}])
    with MongoHook(mongo_conn_id="mongo_default") as hook:
        assert hook.get_conn().admin.command("ping")["ok"] == 1.0
        assert hook.get_collection("sessions").count_documents({}) == 2  # schema "app" is the default DB
        status = hook.get_conn().app.command("connectionStatus")
        assert status["authInfo"]["authenticatedUsers"] == [{"user": APP_USER, "db": "admin"}]


def test_mongo_hook_wrong_password_is_code_18(mongo_auth_server, monkeypatch):
    from airflow.providers.mongo.hooks.mongo import MongoHook

    monkeypatch.setenv("AIRFLOW_CONN_MONGO_BAD", mongo_auth_server.airflow_conn(password="not-it"))
    with MongoHook(mongo_conn_id="mongo_bad") as hook, pytest.raises(OperationFailure) as exc:
        hook.get_conn().admin.command("ping")
    assert exc.value.code == 18 and exc.value.details["codeName"] == "AuthenticationFailed"
    assert "not-it" not in str(exc.value)


@pytest.mark.parametrize("mechanism", [None, "SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_scram_success_and_failure(mongo_auth_server, mechanism):
    opts = {"authMechanism": mechanism} if mechanism else {}
    good = mongo_auth_server.client(APP_USER, APP_PASSWORD, **opts)
    assert good.app.things.insert_one({"ok": True}).acknowledged
    for user, password in ((APP_USER, "wrong"), ("nobody", APP_PASSWORD)):
        bad = mongo_auth_server.client(user, password, **opts)
        with pytest.raises(OperationFailure) as exc:
            bad.admin.command("ping")
        assert exc.value.code == 18
        assert exc.value.details == {"ok": 0.0, "errmsg": "Authentication failed.", "code": 18,
                                     "codeName": "AuthenticationFailed"}


def test_auth_source_and_unauthenticated_access(mongo_auth_server):
    wrong_source = mongo_auth_server.client(APP_USER, APP_PASSWORD, authSource="app")  # user lives in admin
    with pytest.raises(OperationFailure) as exc:
        wrong_source.admin.command("ping")
    assert exc.value.code == 18
    anonymous = mongo_auth_server.client("")
    assert anonymous.admin.command("ping")["ok"] == 1.0  # mongod answers ping without auth
    with pytest.raises(OperationFailure) as unauth:
        anonymous.app.things.find_one()
    assert unauth.value.code == 13
    uri_client = pymongo.MongoClient(mongo_auth_server.uri, serverSelectionTimeoutMS=2000)
    try:
        assert uri_client.app.things.count_documents({}) == 0
    finally:
        uri_client.close()


def test_closed_port_is_a_server_selection_timeout(mongo_server):
    mongo_server.close_port()
    client = mongo_server.client(**FAST)
    started = time.monotonic()
    with pytest.raises(ServerSelectionTimeoutError) as exc:
        client.admin.command("ping")
    assert time.monotonic() - started < 3
    assert "refused" in str(exc.value).lower()
    mongo_server.reopen_port()
    assert mongo_server.client(**FAST).admin.command("ping")["ok"] == 1.0


def test_hang_is_a_timeout(mongo_server):
    pooled = mongo_server.client(**FAST)
    assert pooled.admin.command("ping")["ok"] == 1.0
    mongo_server.hang()
    with pytest.raises(NetworkTimeout):  # an open connection that never answers: socketTimeoutMS
        pooled.admin.command("ping")
    fresh = mongo_server.client(**FAST)
    with pytest.raises(ServerSelectionTimeoutError) as exc:  # even the handshake hangs
        fresh.admin.command("ping")
    assert "timed out" in str(exc.value) or "No servers found" in str(exc.value)
    mongo_server.clear_faults()
    assert mongo_server.client(**FAST).admin.command("ping")["ok"] == 1.0


def test_command_faults(mongo_server):
    client = mongo_server.client(**FAST)
    mongo_server.fail_command("aggregate", "Atlas is over its connection limit", code=8000, times=1)
    with pytest.raises(OperationFailure) as exc:
        list(client.db.c.aggregate([]))
    assert exc.value.code == 8000 and exc.value.details["errmsg"] == "Atlas is over its connection limit"
    assert list(client.db.c.aggregate([])) == []  # times=1: normal again
    mongo_server.hang_command("find")
    with pytest.raises(NetworkTimeout):
        client.db.c.find_one()
    assert client.admin.command("ping")["ok"] == 1.0  # only find hangs
    mongo_server.clear_faults()
    mongo_server.drop_command("insert")
    with pytest.raises(AutoReconnect):
        client.db.c.insert_one({"x": 1})


def test_malformed_wire_input_does_not_take_the_server_down(mongo_server):
    with socket.create_connection(("127.0.0.1", mongo_server.port), timeout=2) as raw:
        raw.sendall(struct.pack("<iiii", 20, 1, 0, 2013) + b"\x00\x00\x00\x00")  # OP_MSG without a body
        assert raw.recv(16) == b""  # the server drops that connection
    with socket.create_connection(("127.0.0.1", mongo_server.port), timeout=2) as raw:
        body = b"\x00\x00\x00\x00\x00" + bson.encode({"ping": 1, "$db": "admin"})
        raw.sendall(struct.pack("<iiii", 16 + len(body), 7, 0, 2013) + body)
        header = raw.recv(16)
        length, _, response_to, opcode = struct.unpack("<iiii", header)
        data = b""
        while len(data) < length - 16:
            data += raw.recv(length - 16 - len(data))
        assert (response_to, opcode) == (7, 2013)
        assert bson.decode(data[5:]) == {"ok": 1.0}


def test_airflow_connection_json_shape(mongo_auth_server):
    conn = json.loads(mongo_auth_server.airflow_conn())
    assert conn["conn_type"] == "mongo" and conn["port"] == mongo_auth_server.port
    assert conn["extra"]["srv"] is False and conn["extra"]["ssl"] is False
    assert conn["extra"]["authSource"] == "admin"


def test_speculative_auth_and_unacknowledged_writes(mongo_auth_server):
    client = mongo_auth_server.client()
    client.admin.command("ping")
    handshake = mongo_auth_server.command_names(include_handshake=True)
    assert "saslContinue" in handshake and "saslStart" not in handshake  # SCRAM began inside hello
    unacked = client.app.get_collection("events", write_concern=pymongo.WriteConcern(w=0))
    assert not unacked.insert_one({"kind": "login"}).acknowledged
    deadline = time.monotonic() + 2
    while client.app.events.count_documents({}) != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.app.events.count_documents({"kind": "login"}) == 1


def test_slow_command_and_transactions(mongo_server_factory):
    server = mongo_server_factory(replica_set="rs0")
    client = server.client(socketTimeoutMS=2000)
    server.delay_command("find", 0.3, times=1)
    started = time.monotonic()
    assert client.db.c.find_one() is None
    assert 0.3 <= time.monotonic() - started < 1.5
    server.delay_command("aggregate", 5)
    with pytest.raises(ExecutionTimeout) as slow:
        list(client.db.c.aggregate([], maxTimeMS=100))
    assert slow.value.code == 50
    server.clear_faults()
    with client.start_session() as session, pytest.raises(OperationFailure) as exc:
        with session.start_transaction():
            client.db.c.insert_one({"x": 1}, session=session)
    assert exc.value.code == 20 and "transactions" in str(exc.value)


def test_stop_releases_hung_connections():
    import threading

    from mongo_server import MongoTestServer

    before = threading.active_count()
    server = MongoTestServer().start()
    client = server.client(**FAST)
    client.admin.command("ping")
    server.hang()
    with pytest.raises(NetworkTimeout):
        client.admin.command("ping")
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1
    deadline = time.monotonic() + 2
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert threading.active_count() <= before
