"""pytest fixtures for the local MongoDB wire-protocol server (tests/mongo_server.py).

Import the ones a test module uses (pytest.ini puts tests/ on sys.path):

    from mongo_fixtures import mongo_auth_server, mongo_default_conn, mongo_server, mongo_server_factory  # noqa: F401

- mongo_server: a fresh server without authentication (data is per test).
- mongo_auth_server: a fresh server with user APP_USER / APP_PASSWORD (admin database, root).
- mongo_server_factory(**kwargs): more servers, e.g. users=..., replica_set="rs0".
- mongo_default_conn: mongo_auth_server with AIRFLOW_CONN_MONGO_DEFAULT pointing at it.

Each yields a MongoTestServer: .uri, .client(), .seed(db, collection, docs), .collection(db, name),
.airflow_conn(), faults (.close_port(), .hang(), .fail_command(...)). Servers stop at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from mongo_server import MongoTestServer

APP_USER = "app"
APP_PASSWORD = "s3cret"


@pytest.fixture
def mongo_server_factory() -> Iterator[Callable[..., MongoTestServer]]:
    servers: list[MongoTestServer] = []

    def make(**kwargs: Any) -> MongoTestServer:
        server = MongoTestServer(**kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def mongo_server(mongo_server_factory: Callable[..., MongoTestServer]) -> MongoTestServer:
    return mongo_server_factory()


@pytest.fixture
def mongo_auth_server(mongo_server_factory: Callable[..., MongoTestServer]) -> MongoTestServer:
    return mongo_server_factory(users={APP_USER: APP_PASSWORD})


@pytest.fixture
def mongo_default_conn(mongo_auth_server: MongoTestServer, monkeypatch: pytest.MonkeyPatch) -> MongoTestServer:
    """AIRFLOW_CONN_MONGO_DEFAULT -> mongo_auth_server (schema "app", authSource admin, short timeouts)."""
    for key, value in mongo_auth_server.airflow_env("mongo_default").items():
        monkeypatch.setenv(key, value)
    return mongo_auth_server
