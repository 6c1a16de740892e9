"""A local MongoDB server for tests: the real wire protocol on a TCP socket, mongomock behind it.

pymongo (and so Airflow's MongoHook) connects to it over 127.0.0.1 exactly as to mongod: the
OP_QUERY/OP_MSG framing, the hello handshake, SCRAM-SHA-256 and SCRAM-SHA-1 authentication
(with speculative authentication), cursors with getMore/killCursors, and MongoDB's error
documents (ok: 0, errmsg, code, codeName). Query, update and aggregation semantics come from
mongomock, so what mongomock cannot do (e.g. $dateTrunc with binSize/timezone, $lookup with
pipelines, transactions) answers with an error reply that says so; nothing hangs.

    from mongo_server import MongoTestServer

    with MongoTestServer(users={"app": "s3cret"}) as server:       # users=None: no auth
        server.seed("shop", "orders", [{"sku": "a", "qty": 2}])     # through pymongo
        client = server.client()                                   # pymongo MongoClient, short timeouts
        client.shop.orders.count_documents({})                     # -> 1
        server.uri                                                 # mongodb://app:s3cret@127.0.0.1:PORT/?authSource=admin

Fixtures (tests/mongo_fixtures.py): `mongo_server` (no auth), `mongo_auth_server` (user "app",
password "s3cret"), `mongo_server_factory(**kwargs)` and `mongo_default_conn` (sets
AIRFLOW_CONN_MONGO_DEFAULT to the authenticated server).

Airflow connection ``mongo_default`` pointing at it (what ``server.airflow_conn()`` returns)::

    AIRFLOW_CONN_MONGO_DEFAULT='{"conn_type": "mongo", "host": "127.0.0.1", "port": PORT,
        "login": "app", "password": "s3cret", "schema": "app",
        "extra": {"srv": false, "ssl": false, "authSource": "admin",
                  "serverSelectionTimeoutMS": 2000, "connectTimeoutMS": 2000, "socketTimeoutMS": 5000}}'

MongoHook builds ``mongodb://login:password@host:port/schema`` and passes the remaining extras to
MongoClient as keyword options. ``srv`` must be false (true means ``mongodb+srv://``: a DNS SRV
lookup, and then no port may be set); ``ssl``/``tls`` false (this server speaks plain TCP, like
mongod without --tlsMode); ``allow_insecure`` only matters with ssl true (it becomes
tlsAllowInvalidCertificates) and the hook drops it otherwise. Users live in the ``admin``
database as on Atlas, so, as on Atlas, the extra needs ``authSource: admin`` whenever the schema
(default DB) is another database: without it pymongo authenticates against the schema database
and the server answers code 18 AuthenticationFailed, as mongod does.

Faults for tests (each until ``clear_faults()``; the fixtures clear them at teardown):

- ``close_port()``: the listening socket and every connection are closed: connection refused, so
  pymongo raises ServerSelectionTimeoutError after serverSelectionTimeoutMS. ``reopen_port()``
  listens again on the same port.
- ``hang()``: connections are accepted and requests read but never answered: NetworkTimeout on a
  pooled connection (socketTimeoutMS), ServerSelectionTimeoutError when even the handshake hangs.
- ``fail_command(name, errmsg, code=..., times=None)``: that command answers ok: 0 with the
  error (``times`` replies, then normal again); ``hang_command(name)`` hangs only that command;
  ``delay_command(name, seconds)`` answers it late (a slow query; with a smaller maxTimeMS it
  answers code 50 MaxTimeMSExpired at that limit, as mongod); ``drop_command(name)`` closes
  the connection instead of answering (AutoReconnect; pymongo retries reads once).

A client that saw the server fail marks it Unknown and looks again at its next heartbeat (at
least 500 ms later): after ``clear_faults()`` use a fresh ``server.client()`` or a client with
``heartbeatFrequencyMS=500`` and a serverSelectionTimeoutMS above that. Name commands as pymongo
sends them (``find``, ``aggregate``, ``insert``, ``update``, ``delete``, ``findAndModify``,
``count`` for estimated_document_count, ``hello`` for the handshake and the monitor).

Every command received is recorded in ``server.received`` (db, name, body).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
import os
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import quote_plus

import bson
from bson import Int64, ObjectId
from bson.codec_options import CodecOptions

OP_REPLY = 1
OP_QUERY = 2004
OP_COMPRESSED = 2012
OP_MSG = 2013

MAX_BSON_SIZE = 16 * 1024 * 1024
MAX_MESSAGE_SIZE = 48_000_000
MAX_WIRE_VERSION = 21  # MongoDB 7.0; pymongo 4.20 speaks wire versions 9..29
VERSION = "7.0.14"
SCRAM_ITERATIONS = 4096  # the minimum pymongo accepts (mongod defaults to 10000/15000)
MECHANISMS = ("SCRAM-SHA-1", "SCRAM-SHA-256")
FIRST_BATCH = 101  # mongod's default first batch for find and aggregate
BATCH_BYTES = 15 * 1024 * 1024

_HEADER = struct.Struct("<iiii")  # messageLength, requestID, responseTo, opCode
_CODEC = CodecOptions()  # dicts keep key order; naive UTC datetimes, as mongomock wants

# Commands mongod answers without authentication.
_NO_AUTH = {"hello", "isMaster", "ismaster", "ping", "buildInfo", "buildinfo", "saslStart",
            "saslContinue", "endSessions", "logout", "connectionStatus", "whatsmyuri"}
_ALIASES = {"ismaster": "hello", "isMaster": "hello", "buildinfo": "buildInfo"}

CODE_NAMES = {
    1: "InternalError", 2: "BadValue", 9: "FailedToParse", 11: "UserNotFound", 13: "Unauthorized",
    18: "AuthenticationFailed", 20: "IllegalOperation", 26: "NamespaceNotFound", 27: "IndexNotFound",
    43: "CursorNotFound", 48: "NamespaceExists", 59: "CommandNotFound", 76: "NoReplicationEnabled",
    85: "IndexOptionsConflict", 89: "NetworkTimeout", 91: "ShutdownInProgress",
    115: "CommandNotSupported", 168: "InvalidPipelineOperator", 189: "PrimarySteppedDown",
    262: "ExceededTimeLimit", 334: "MechanismUnavailable", 8000: "AtlasError",
    10107: "NotWritablePrimary", 11000: "DuplicateKey", 11600: "InterruptedAtShutdown",
    40324: "Location40324",
}


class CommandError(Exception):
    """Answered as {ok: 0, errmsg, code, codeName}."""

    def __init__(self, errmsg: str, code: int = 1, code_name: str | None = None,
                 labels: Iterable[str] = ()) -> None:
        super().__init__(errmsg)
        self.errmsg, self.code = errmsg, code
        self.code_name = code_name or CODE_NAMES.get(code, f"Location{code}")
        self.labels = list(labels)

    def reply(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"ok": 0.0, "errmsg": self.errmsg, "code": self.code, "codeName": self.code_name}
        if self.labels:
            doc["errorLabels"] = self.labels
        return doc


def auth_failed() -> CommandError:
    return CommandError("Authentication failed.", 18)


@dataclass
class Received:
    db: str
    name: str
    body: dict[str, Any]
    connection_id: int


@dataclass
class User:
    """A user as mongod stores it: SCRAM keys per mechanism (the password itself is not kept)."""

    name: str
    db: str = "admin"
    roles: list[dict[str, str]] = field(default_factory=lambda: [{"role": "root", "db": "admin"}])
    mechanisms: tuple[str, ...] = MECHANISMS
    keys: dict[str, tuple[bytes, bytes, bytes]] = field(default_factory=dict)  # mech -> salt, stored, server

    @classmethod
    def create(cls, name: str, password: str, db: str = "admin", roles: list | None = None,
               mechanisms: Iterable[str] = MECHANISMS) -> User:
        from pymongo.saslprep import saslprep

        user = cls(name, db, roles if roles is not None else [{"role": "root", "db": "admin"}],
                   tuple(mechanisms))
        for mech in user.mechanisms:
            if mech == "SCRAM-SHA-256":
                digest, secret = "sha256", saslprep(password).encode()
            elif mech == "SCRAM-SHA-1":
                digest = "sha1"
                secret = hashlib.md5(f"{name}:mongo:{password}".encode()).hexdigest().encode()  # noqa: S324
            else:
                raise ValueError(f"unsupported mechanism {mech}")
            salt = os.urandom(28 if digest == "sha256" else 16)
            salted = hashlib.pbkdf2_hmac(digest, secret, salt, SCRAM_ITERATIONS)
            client_key = hmac.digest(salted, b"Client Key", digest)
            server_key = hmac.digest(salted, b"Server Key", digest)
            user.keys[mech] = (salt, hashlib.new(digest, client_key).digest(), server_key)
        return user


class _Scram:
    """One server-side SCRAM conversation (RFC 5802/7677 as mongod runs it)."""

    def __init__(self, user: User, mechanism: str, payload: bytes, skip_empty: bool) -> None:
        self.user, self.mechanism, self.skip_empty = user, mechanism, skip_empty
        self.digest = "sha256" if mechanism == "SCRAM-SHA-256" else "sha1"
        parts = payload.split(b",", 2)
        if len(parts) != 3 or parts[0] not in (b"n", b"y"):
            raise auth_failed()
        self.gs2_header = parts[0] + b"," + parts[1] + b","
        self.client_first_bare = parts[2]
        attrs = _scram_attrs(self.client_first_bare)
        client_nonce = attrs.get(b"r")
        if not client_nonce:
            raise auth_failed()
        salt, self.stored_key, self.server_key = user.keys[mechanism]
        self.nonce = client_nonce + base64.b64encode(os.urandom(24))
        self.server_first = b"r=%s,s=%s,i=%d" % (self.nonce, base64.b64encode(salt), SCRAM_ITERATIONS)
        self.step = 1

    def proof(self, payload: bytes) -> bytes:
        """Check the client's proof; return the server-final message (v=signature)."""
        attrs = _scram_attrs(payload)
        if attrs.get(b"r") != self.nonce or b"p" not in attrs:
            raise auth_failed()
        if attrs.get(b"c") != base64.b64encode(self.gs2_header):
            raise auth_failed()
        without_proof = payload[: payload.rindex(b",p=")]
        auth_message = b",".join((self.client_first_bare, self.server_first, without_proof))
        client_signature = hmac.digest(self.stored_key, auth_message, self.digest)
        try:
            proof = base64.b64decode(attrs[b"p"], validate=True)
        except ValueError:
            raise auth_failed() from None
        if len(proof) != len(client_signature):
            raise auth_failed()
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature))
        if not hmac.compare_digest(hashlib.new(self.digest, client_key).digest(), self.stored_key):
            raise auth_failed()
        self.step = 2
        return b"v=" + base64.b64encode(hmac.digest(self.server_key, auth_message, self.digest))


def _scram_attrs(message: bytes) -> dict[bytes, bytes]:
    attrs = {}
    for item in message.split(b","):
        key, sep, value = item.partition(b"=")
        if sep:
            attrs[key] = value
    return attrs


def _saslname(raw: bytes) -> str:
    return raw.decode("utf-8").replace("=2C", ",").replace("=3D", "=")


@dataclass
class _Connection:
    id: int
    sock: socket.socket
    users: set[tuple[str, str]] = field(default_factory=set)  # authenticated (db, user)
    sasl: _Scram | None = None
    sasl_db: str = ""


@dataclass
class _Cursor:
    ns: str
    docs: deque
    connection_id: int


@dataclass
class _Fault:
    kind: str  # "error" | "hang" | "drop" | "delay"
    error: CommandError | None = None
    seconds: float = 0.0
    times: int | None = None  # None: until cleared


class MongoTestServer:
    """A MongoDB wire-protocol server on 127.0.0.1 (ephemeral port) over mongomock.

    users: {name: password} (created in the admin database with SCRAM-SHA-1 and -256, role root),
    or None for no authentication. mechanisms: which SCRAM mechanisms users get.
    replica_set: a set name makes it answer as the primary of a one-member replica set.
    """

    def __init__(self, users: Mapping[str, str] | None = None, *, replica_set: str | None = None,
                 mechanisms: Iterable[str] = MECHANISMS, host: str = "127.0.0.1") -> None:
        import mongomock

        self.host = host
        self.port = 0
        self.replica_set = replica_set
        self.users = {name: User.create(name, pw, mechanisms=mechanisms) for name, pw in (users or {}).items()}
        self._passwords = dict(users or {})
        self.backend = mongomock.MongoClient()
        self.received: deque[Received] = deque(maxlen=10_000)
        self.opcounters = dict.fromkeys(("insert", "query", "update", "delete", "getmore", "command"), 0)
        self.total_connections = 0
        self._lock = threading.RLock()  # mongomock is not thread-safe: one command at a time
        self._state = threading.Lock()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._connections: dict[int, _Connection] = {}
        self._cursors: dict[int, _Cursor] = {}
        self._cursor_ids = itertools.count(1_000_001)
        self._connection_ids = itertools.count(1)
        self._faults: dict[str, _Fault] = {}
        self._hang_all = False
        self._release = threading.Event()  # set: hung requests give up and close their connection
        self._stopped = threading.Event()
        self._clients: list[Any] = []
        self._admin: Any = None
        self._started_at = time.monotonic()

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> MongoTestServer:
        self._stopped.clear()
        self._listen()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._release.set()
        for client in self._clients:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
        self._clients.clear()
        self._admin = None
        self._close_listener()
        self._close_connections()

    def __enter__(self) -> MongoTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def uri(self) -> str:
        """mongodb:// URI; with the first user's credentials (authSource=admin) when auth is on."""
        if self._passwords:
            name, password = next(iter(self._passwords.items()))
            return self.uri_for(name, password)
        return self.uri_for()

    def uri_for(self, username: str | None = None, password: str | None = None, db: str = "",
                **options: Any) -> str:
        creds = f"{quote_plus(username)}:{quote_plus(password or '')}@" if username else ""
        if username:
            options.setdefault("authSource", "admin")
        if self.replica_set:
            options.setdefault("replicaSet", self.replica_set)
        query = "&".join(f"{k}={_uri_value(v)}" for k, v in options.items())
        return f"mongodb://{creds}{self.address}/{db}" + (f"?{query}" if query else "")

    def client(self, username: str | None = None, password: str | None = None, **kwargs: Any):
        """A pymongo MongoClient with test-friendly timeouts, closed by stop().

        Without username it uses the first configured user (if any); pass username="" for an
        unauthenticated client on an auth server.
        """
        from pymongo import MongoClient

        if username is None and self._passwords:
            username, password = next(iter(self._passwords.items()))
        for key, value in (("serverSelectionTimeoutMS", 2000), ("connectTimeoutMS", 2000),
                           ("socketTimeoutMS", 5000), ("appname", "mongo_server-tests")):
            kwargs.setdefault(key, value)
        if self.replica_set:
            kwargs.setdefault("replicaSet", self.replica_set)
        if username:
            kwargs.setdefault("authSource", "admin")
            kwargs.update(username=username, password=password)
        client = MongoClient(self.host, self.port, **kwargs)
        self._clients.append(client)
        return client

    def seed(self, db: str, collection: str, documents: Iterable[Mapping[str, Any]]) -> list[Any]:
        """Insert documents through pymongo (the wire protocol); returns their _ids."""
        docs = [dict(d) for d in documents]
        if not docs:
            return []
        return list(self._admin_client().get_database(db).get_collection(collection).insert_many(docs).inserted_ids)

    def collection(self, db: str, collection: str):
        """A pymongo Collection on this server (admin credentials), for setup and assertions."""
        return self._admin_client().get_database(db).get_collection(collection)

    def airflow_conn(self, schema: str = "app", login: str | None = None, password: str | None = None,
                     **extra: Any) -> str:
        """The JSON form of an Airflow `mongo` connection to this server (AIRFLOW_CONN_<ID>)."""
        if login is None and self._passwords:
            login, default_password = next(iter(self._passwords.items()))
            password = default_password if password is None else password
        options: dict[str, Any] = {"srv": False, "ssl": False, "serverSelectionTimeoutMS": 2000,
                                   "connectTimeoutMS": 2000, "socketTimeoutMS": 5000}
        if login:
            options["authSource"] = "admin"
        if self.replica_set:
            options["replicaSet"] = self.replica_set
        options.update(extra)
        conn: dict[str, Any] = {"conn_type": "mongo", "host": self.host, "port": self.port, "schema": schema,
                                "extra": options}
        if login:
            conn.update(login=login, password=password)
        return json.dumps(conn)

    def airflow_env(self, conn_id: str = "mongo_default", **kwargs: Any) -> dict[str, str]:
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.airflow_conn(**kwargs)}

    def command_names(self, include_handshake: bool = False) -> list[str]:
        skip = set() if include_handshake else {"hello", "isMaster", "ismaster", "saslStart", "saslContinue",
                                                "endSessions"}
        return [r.name for r in list(self.received) if r.name not in skip]

    def _admin_client(self):
        if self._admin is None:
            self._admin = self.client()
        return self._admin

    # ----------------------------------------------------------------- faults
    def fail_command(self, name: str, errmsg: str = "injected failure", code: int = 1,
                     code_name: str | None = None, times: int | None = None,
                     labels: Iterable[str] = ()) -> None:
        """`name` answers {ok: 0, errmsg, code, codeName} (`times` times, or until cleared)."""
        self._faults[_ALIASES.get(name, name)] = _Fault("error", CommandError(errmsg, code, code_name, labels), times=times)

    def hang_command(self, name: str, times: int | None = None) -> None:
        """`name` is read but never answered (the client times out)."""
        self._release.clear()
        self._faults[_ALIASES.get(name, name)] = _Fault("hang", times=times)

    def drop_command(self, name: str, times: int | None = None) -> None:
        """`name` closes the connection instead of answering (a network error)."""
        self._faults[_ALIASES.get(name, name)] = _Fault("drop", times=times)

    def delay_command(self, name: str, seconds: float, times: int | None = None) -> None:
        """`name` answers normally but only after `seconds` (a slow query; cut short by clear_faults())."""
        self._release.clear()
        self._faults[_ALIASES.get(name, name)] = _Fault("delay", seconds=seconds, times=times)

    def hang(self) -> None:
        """Accept connections and read requests but never answer any (handshake included)."""
        self._release.clear()
        self._hang_all = True

    def close_port(self) -> None:
        """Stop listening and close every connection: clients get connection refused."""
        self._close_listener()
        self._close_connections()

    def reopen_port(self) -> None:
        if self._listener is None and not self._stopped.is_set():
            self._listen()

    def clear_faults(self) -> None:
        self._faults.clear()
        self._hang_all = False
        self._release.set()
        self.reopen_port()

    # ----------------------------------------------------------------- sockets
    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(64)
        sock.settimeout(0.05)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._accept_thread = threading.Thread(target=self._accept_loop, args=(sock,),
                                               name=f"mongo-server-{self.port}", daemon=True)
        self._accept_thread.start()

    def _close_listener(self) -> None:
        sock, thread = self._listener, self._accept_thread
        self._listener = self._accept_thread = None
        if sock is not None:
            sock.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)

    def _close_connections(self) -> None:
        with self._state:
            conns = list(self._connections.values())
            self._connections.clear()
        for conn in conns:
            _close_socket(conn.sock)
        with self._lock:
            self._cursors.clear()

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                sock, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(next(self._connection_ids), sock)
            with self._state:
                if self._listener is not listener:
                    _close_socket(sock)
                    return
                self._connections[conn.id] = conn
                self.total_connections += 1
            threading.Thread(target=self._serve, args=(conn,), name=f"mongo-conn-{conn.id}", daemon=True).start()

    def _serve(self, conn: _Connection) -> None:
        try:
            while not self._stopped.is_set():
                header = _recv_exact(conn.sock, _HEADER.size)
                length, request_id, _, opcode = _HEADER.unpack(header)
                if length < _HEADER.size or length > MAX_MESSAGE_SIZE:
                    return
                payload = _recv_exact(conn.sock, length - _HEADER.size)
                if self._hang_all:
                    self._release.wait()
                    return
                reply = self._handle_message(conn, opcode, payload)
                if reply is _CLOSE:
                    return
                if reply is not None:
                    opcode_out, body = reply
                    conn.sock.sendall(_HEADER.pack(_HEADER.size + len(body), next(_request_ids), request_id,
                                                   opcode_out) + body)
        except (ConnectionError, OSError):
            pass
        except Exception:  # noqa: BLE001 - malformed input (bad BSON, truncated sections): drop the connection
            pass
        finally:
            with self._state:
                self._connections.pop(conn.id, None)
            _close_socket(conn.sock)

    def _handle_message(self, conn: _Connection, opcode: int, payload: bytes):
        if opcode == OP_MSG:
            flags = struct.unpack_from("<I", payload)[0]
            end = len(payload) - (4 if flags & 1 else 0)
            body = _parse_op_msg(payload, end)
            more_to_come = bool(flags & 2)
            out = self._dispatch(conn, body.get("$db", "admin"), body)
            if out is _CLOSE or more_to_come:
                return None if out is not _CLOSE else _CLOSE
            return OP_MSG, struct.pack("<I", 0) + b"\x00" + _encode_reply(out)
        if opcode == OP_QUERY:
            (_flags,) = struct.unpack_from("<i", payload)
            end = payload.index(b"\x00", 4)
            namespace = payload[4:end].decode()
            pos = end + 1 + 8
            (size,) = struct.unpack_from("<i", payload, pos)
            query = bson.decode(payload[pos:pos + size], _CODEC)
            db, _, coll = namespace.partition(".")
            if coll != "$cmd":
                out: Any = {"$err": "legacy OP_QUERY is not supported (only commands)", "code": 5739101, "ok": 0.0}
            else:
                if "$query" in query:  # legacy wrapped command
                    query = query["$query"]
                out = self._dispatch(conn, db, query)
                if out is _CLOSE:
                    return _CLOSE
            return OP_REPLY, struct.pack("<iqii", 8, 0, 0, 1) + _encode_reply(out)
        return _CLOSE  # OP_COMPRESSED (never negotiated) or legacy opcodes

    # ----------------------------------------------------------------- commands
    def _dispatch(self, conn: _Connection, db: str, body: dict[str, Any]):
        if not body:
            return CommandError("no command", 59, "CommandNotFound").reply()
        name = next(iter(body))
        self.received.append(Received(db, name, body, conn.id))
        fault = self._faults.get(_ALIASES.get(name, name))
        if fault is not None:
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.pop(_ALIASES.get(name, name), None)
            if fault.kind == "hang":
                self._release.wait()  # until clear_faults() or stop(); then drop the connection
                return _CLOSE
            if fault.kind == "drop":
                return _CLOSE
            if fault.kind == "delay":  # a slow server, not a dead one: answer late, or as maxTimeMS says
                max_ms = body.get("maxTimeMS")
                if isinstance(max_ms, (int, float)) and max_ms > 0 and fault.seconds > max_ms / 1000:
                    self._release.wait(max_ms / 1000)
                    return CommandError("operation exceeded time limit", 50, "MaxTimeMSExpired").reply()
                self._release.wait(fault.seconds)
                fault = None
        if fault is not None:
            assert fault.error is not None
            return fault.error.reply()
        handler: Callable | None = getattr(self, "_cmd_" + _ALIASES.get(name, name), None)
        if handler is None:
            return CommandError(f"no such command: '{name}'", 59, "CommandNotFound").reply()
        if self.users and not conn.users and name not in _NO_AUTH:
            return CommandError(f"Command {name} requires authentication", 13).reply()
        if "startTransaction" in body or body.get("autocommit") is False:
            return CommandError("transactions are not supported by the test server (mongomock)", 20).reply()
        if name not in ("find", "insert", "update", "delete", "getMore"):
            self.opcounters["command"] += 1
        try:
            with self._lock:
                out = handler(conn, db, body)
        except CommandError as exc:
            return exc.reply()
        except NotImplementedError as exc:
            return CommandError(f"not supported by the test server (mongomock): {exc}", 115).reply()
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error reply, never a hang
            code = getattr(exc, "code", None)
            return CommandError(f"{type(exc).__name__}: {exc}", code if isinstance(code, int) else 1).reply()
        out.setdefault("ok", 1.0)
        return out

    # handshake ---------------------------------------------------------------
    def _cmd_hello(self, conn: _Connection, db: str, body: dict) -> dict:
        legacy = next(iter(body)) != "hello"
        doc: dict[str, Any] = {"ismaster" if legacy else "isWritablePrimary": True}
        if body.get("helloOk"):
            doc["helloOk"] = True
        if self.replica_set:
            doc.update(setName=self.replica_set, setVersion=1, secondary=False, hosts=[self.address],
                       primary=self.address, me=self.address,
                       electionId=ObjectId("7fffffff0000000000000001"))
        now = datetime.now(timezone.utc)
        doc.update(maxBsonObjectSize=MAX_BSON_SIZE, maxMessageSizeBytes=MAX_MESSAGE_SIZE, maxWriteBatchSize=100_000,
                   localTime=now, logicalSessionTimeoutMinutes=30, connectionId=conn.id, minWireVersion=0,
                   maxWireVersion=MAX_WIRE_VERSION, readOnly=False)
        spec = body.get("saslSupportedMechs")
        if isinstance(spec, str) and "." in spec:
            user = self._user(*spec.split(".", 1))
            if user is not None:
                doc["saslSupportedMechs"] = list(user.mechanisms)
        speculative = body.get("speculativeAuthenticate")
        if isinstance(speculative, dict) and "saslStart" in speculative:
            try:
                doc["speculativeAuthenticate"] = self._cmd_saslStart(conn, speculative.get("db", db), speculative)
            except CommandError:
                pass  # as mongod: no speculative reply, the client then authenticates in full and fails
        return doc

    def _cmd_ping(self, conn, db, body) -> dict:
        return {}

    def _cmd_buildInfo(self, conn, db, body) -> dict:
        major, minor, patch = (int(p) for p in VERSION.split("."))
        return {"version": VERSION, "versionArray": [major, minor, patch, 0], "gitVersion": "mongo_server",
                "bits": 64, "maxBsonObjectSize": MAX_BSON_SIZE, "storageEngines": ["mongomock"],
                "modules": [], "javascriptEngine": "none", "debug": False}

    def _cmd_whatsmyuri(self, conn, db, body) -> dict:
        host, port = conn.sock.getpeername()[:2]
        return {"you": f"{host}:{port}"}

    def _cmd_endSessions(self, conn, db, body) -> dict:
        return {}

    # authentication ------------------------------------------------------------
    def _user(self, db: str, name: str) -> User | None:
        user = self.users.get(name)
        return user if user is not None and user.db == db else None

    def _cmd_saslStart(self, conn: _Connection, db: str, body: dict) -> dict:
        mechanism = body.get("mechanism")
        if mechanism not in MECHANISMS:
            raise CommandError(f"Received authentication for mechanism {mechanism} which is not enabled", 334)
        payload = bytes(body.get("payload") or b"")
        parts = payload.split(b",", 2)
        name = _saslname(_scram_attrs(parts[2]).get(b"n", b"")) if len(parts) == 3 else ""
        user = self._user(db, name)
        if user is None or mechanism not in user.mechanisms:
            raise auth_failed()
        options = body.get("options") or {}
        conn.sasl = _Scram(user, mechanism, payload, bool(options.get("skipEmptyExchange")))
        conn.sasl_db = db
        return {"conversationId": 1, "done": False, "payload": bson.Binary(conn.sasl.server_first)}

    def _cmd_saslContinue(self, conn: _Connection, db: str, body: dict) -> dict:
        scram = conn.sasl
        if scram is None or db != conn.sasl_db or body.get("conversationId") != 1:
            raise CommandError("No SASL session state found", 17, "ProtocolError")
        payload = bytes(body.get("payload") or b"")
        if scram.step == 1:
            try:
                server_final = scram.proof(payload)
            except CommandError:
                conn.sasl = None
                raise
            if scram.skip_empty:
                self._authenticated(conn)
                return {"conversationId": 1, "done": True, "payload": bson.Binary(server_final)}
            return {"conversationId": 1, "done": False, "payload": bson.Binary(server_final)}
        self._authenticated(conn)
        return {"conversationId": 1, "done": True, "payload": bson.Binary(b"")}

    def _authenticated(self, conn: _Connection) -> None:
        assert conn.sasl is not None
        conn.users.add((conn.sasl.user.db, conn.sasl.user.name))
        conn.sasl = None

    def _cmd_logout(self, conn: _Connection, db, body) -> dict:
        conn.users.clear()
        return {}

    def _cmd_connectionStatus(self, conn: _Connection, db, body) -> dict:
        users = [self.users[name] for _, name in sorted(conn.users)]
        return {"authInfo": {"authenticatedUsers": [{"user": u.name, "db": u.db} for u in users],
                             "authenticatedUserRoles": [r for u in users for r in u.roles]}}

    def _cmd_usersInfo(self, conn, db, body) -> dict:
        return {"users": [{"_id": f"{u.db}.{u.name}", "user": u.name, "db": u.db, "roles": u.roles,
                           "mechanisms": list(u.mechanisms)} for u in self.users.values() if u.db == db]}

    # diagnostics -----------------------------------------------------------------
    def _cmd_serverStatus(self, conn, db, body) -> dict:
        uptime = time.monotonic() - self._started_at
        return {"host": self.address, "version": VERSION, "process": "mongod", "pid": Int64(os.getpid()),
                "uptime": float(int(uptime)), "uptimeMillis": Int64(int(uptime * 1000)),
                "localTime": datetime.now(timezone.utc),
                "connections": {"current": len(self._connections), "available": 838_860,
                                "totalCreated": self.total_connections, "active": 1},
                "opcounters": {k: Int64(v) for k, v in self.opcounters.items()},
                "mem": {"bits": 64, "resident": 64, "virtual": 1024, "supported": True}}

    def _cmd_replSetGetStatus(self, conn, db, body) -> dict:
        if not self.replica_set:
            raise CommandError("not running with --replSet", 76)
        now = datetime.now(timezone.utc)
        return {"set": self.replica_set, "date": now, "myState": 1,
                "members": [{"_id": 0, "name": self.address, "health": 1.0, "state": 1, "stateStr": "PRIMARY",
                             "uptime": int(time.monotonic() - self._started_at), "optimeDate": now,
                             "self": True}]}

    def _cmd_listDatabases(self, conn, db, body) -> dict:
        databases = []
        for name in self.backend.list_database_names():
            size = self._db_size(name)
            databases.append({"name": name, "sizeOnDisk": Int64(size), "empty": size == 0})
        filt = _to_query(body.get("filter") or {})
        if filt:
            from mongomock.filtering import filter_applies

            databases = [d for d in databases if filter_applies(filt, d)]
        if body.get("nameOnly"):
            return {"databases": [{"name": d["name"]} for d in databases]}
        total = sum(d["sizeOnDisk"] for d in databases)
        return {"databases": databases, "totalSize": Int64(total), "totalSizeMb": Int64(total // 2**20)}

    def _db_size(self, db: str) -> int:
        database = self.backend.get_database(db)
        return sum(len(_encode(d)) for c in database.list_collection_names() for d in database[c].find())

    def _cmd_dbStats(self, conn, db, body) -> dict:
        database = self.backend.get_database(db)
        names = database.list_collection_names()
        objects = sum(database[c].count_documents({}) for c in names)
        size = self._db_size(db)
        indexes = sum(len(database[c].index_information()) for c in names)
        return {"db": db, "collections": len(names), "views": 0, "objects": objects,
                "avgObjSize": float(size / objects) if objects else 0.0, "dataSize": float(size),
                "storageSize": float(size), "indexes": indexes, "indexSize": float(indexes * 4096),
                "totalSize": float(size + indexes * 4096), "scaleFactor": 1.0}

    def _cmd_collStats(self, conn, db, body) -> dict:
        coll = self._existing(db, body["collStats"])
        docs = list(coll.find())
        size = sum(len(_encode(d)) for d in docs)
        index_names = list(coll.index_information())
        return {"ns": f"{db}.{coll.name}", "count": len(docs), "size": size,
                "avgObjSize": size // len(docs) if docs else 0, "storageSize": size,
                "nindexes": len(index_names), "totalIndexSize": 4096 * len(index_names),
                "indexSizes": {n: 4096 for n in index_names}}

    # collections and indexes -------------------------------------------------------
    def _existing(self, db: str, name: str):
        if name not in self.backend.get_database(db).list_collection_names():
            raise CommandError(f"ns does not exist: {db}.{name}", 26)
        return self.backend.get_database(db).get_collection(name)

    def _cmd_listCollections(self, conn, db, body) -> dict:
        from mongomock.filtering import filter_applies

        database = self.backend.get_database(db)
        infos = []
        for name in sorted(database.list_collection_names()):
            info = {"name": name, "type": "collection", "options": {}, "info": {"readOnly": False},
                    "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}
            if filter_applies(_to_query(body.get("filter") or {}), info):
                infos.append({"name": name, "type": "collection"} if body.get("nameOnly") else info)
        return self._cursor_reply(f"{db}.$cmd.listCollections", infos, body.get("cursor") or {})

    def _cmd_create(self, conn, db, body) -> dict:
        name = body["create"]
        if name in self.backend.get_database(db).list_collection_names():
            raise CommandError(f"Collection {db}.{name} already exists.", 48)
        self.backend.get_database(db).create_collection(name)
        return {}

    def _cmd_drop(self, conn, db, body) -> dict:
        name = body["drop"]
        database = self.backend.get_database(db)
        if name not in database.list_collection_names():
            return {}  # mongod >= 7.0 answers ok for a missing collection
        n_indexes = len(database[name].index_information())
        database.drop_collection(name)
        return {"nIndexesWas": n_indexes, "ns": f"{db}.{name}"}

    def _cmd_dropDatabase(self, conn, db, body) -> dict:
        self.backend.drop_database(db)
        return {"dropped": db}

    def _cmd_createIndexes(self, conn, db, body) -> dict:
        database = self.backend.get_database(db)
        name = body["createIndexes"]
        created = name not in database.list_collection_names()
        if created:
            database.create_collection(name)
        coll = database[name]
        before = len(coll.index_information())
        for spec in body.get("indexes") or []:
            kwargs = {k: spec[k] for k in ("name", "unique", "sparse", "expireAfterSeconds",
                                            "partialFilterExpression") if k in spec}
            coll.create_index(list(spec["key"].items()), **kwargs)
        return {"numIndexesBefore": before, "numIndexesAfter": len(coll.index_information()),
                "createdCollectionAutomatically": created}

    def _cmd_listIndexes(self, conn, db, body) -> dict:
        coll = self._existing(db, body["listIndexes"])
        specs = []
        for name, info in coll.index_information().items():
            spec = {"v": 2, "key": dict(info["key"]), "name": name}
            spec.update({k: v for k, v in info.items() if k not in ("key", "v")})
            specs.append(spec)
        return self._cursor_reply(f"{db}.{coll.name}", specs, body.get("cursor") or {})

    def _cmd_dropIndexes(self, conn, db, body) -> dict:
        coll = self._existing(db, body["dropIndexes"])
        before = len(coll.index_information())
        index = body.get("index")
        if index == "*":
            coll.drop_indexes()
        else:
            for one in index if isinstance(index, list) else [index]:
                if isinstance(one, dict):
                    one = next((n for n, i in coll.index_information().items() if dict(i["key"]) == one), None)
                if one not in coll.index_information():
                    raise CommandError(f"index not found with name [{one}]", 27)
                coll.drop_index(one)
        return {"nIndexesWas": before}

    # reads --------------------------------------------------------------------------
    def _cmd_find(self, conn, db, body) -> dict:
        self.opcounters["query"] += 1
        coll = self.backend.get_database(db).get_collection(body["find"])
        cursor = coll.find(_to_query(body.get("filter") or {}), body.get("projection") or None)
        if body.get("sort"):
            cursor = cursor.sort(list(body["sort"].items()))
        if body.get("skip"):
            cursor = cursor.skip(int(body["skip"]))
        limit = abs(int(body.get("limit") or 0))
        if limit:
            cursor = cursor.limit(limit)
        docs = [_id_first(d) for d in cursor]
        return self._cursor_reply(f"{db}.{body['find']}", docs, {"batchSize": body.get("batchSize")},
                                  single_batch=bool(body.get("singleBatch")), conn=conn)

    def _cmd_count(self, conn, db, body) -> dict:
        coll = self.backend.get_database(db).get_collection(body["count"])
        cursor = coll.find(_to_query(body.get("query") or {}))
        if body.get("skip"):
            cursor = cursor.skip(int(body["skip"]))
        if body.get("limit"):
            cursor = cursor.limit(abs(int(body["limit"])))
        return {"n": sum(1 for _ in cursor)}

    def _cmd_distinct(self, conn, db, body) -> dict:
        coll = self.backend.get_database(db).get_collection(body["distinct"])
        return {"values": coll.distinct(body["key"], _to_query(body.get("query") or {}))}

    def _cmd_aggregate(self, conn, db, body) -> dict:
        target = body["aggregate"]
        if not isinstance(target, str):
            raise CommandError("collection-less aggregate ({aggregate: 1}) is not supported by the test server", 115)
        pipeline = [_rewrite_stage(stage) for stage in body.get("pipeline") or []]
        if body.get("explain"):
            return {"stages": pipeline, "explainVersion": "1"}
        coll = self.backend.get_database(db).get_collection(target)
        docs = [_id_first(d) for d in coll.aggregate(_to_query(pipeline))]
        return self._cursor_reply(f"{db}.{target}", docs, body.get("cursor") or {}, conn=conn)

    def _cursor_reply(self, ns: str, docs: list, cursor_opts: Mapping, single_batch: bool = False,
                      conn: _Connection | None = None) -> dict:
        pending = deque(docs)
        batch = _take_batch(pending, cursor_opts.get("batchSize"), FIRST_BATCH)
        cursor_id = 0
        if pending and not single_batch:
            cursor_id = next(self._cursor_ids)
            self._cursors[cursor_id] = _Cursor(ns, pending, conn.id if conn else 0)
        return {"cursor": {"firstBatch": batch, "id": Int64(cursor_id), "ns": ns}}

    def _cmd_getMore(self, conn, db, body) -> dict:
        self.opcounters["getmore"] += 1
        cursor_id = int(body["getMore"])
        cursor = self._cursors.get(cursor_id)
        ns = f"{db}.{body.get('collection')}"
        if cursor is None or cursor.ns.split(".", 1)[0] != db:
            raise CommandError(f"cursor id {cursor_id} not found", 43)
        batch = _take_batch(cursor.docs, body.get("batchSize"), None)
        if not cursor.docs:
            del self._cursors[cursor_id]
            cursor_id = 0
        return {"cursor": {"nextBatch": batch, "id": Int64(cursor_id), "ns": cursor.ns or ns}}

    def _cmd_killCursors(self, conn, db, body) -> dict:
        killed, not_found = [], []
        for cid in body.get("cursors") or []:
            (killed if self._cursors.pop(int(cid), None) is not None else not_found).append(Int64(cid))
        return {"cursorsKilled": killed, "cursorsNotFound": not_found, "cursorsAlive": [], "cursorsUnknown": []}

    # writes -------------------------------------------------------------------------
    def _cmd_insert(self, conn, db, body) -> dict:
        import mongomock

        coll = self.backend.get_database(db).get_collection(body["insert"])
        n, errors = 0, []
        for index, doc in enumerate(body.get("documents") or []):
            self.opcounters["insert"] += 1
            try:
                coll.insert_one(doc)
                n += 1
            except mongomock.DuplicateKeyError as exc:
                errors.append({"index": index, "code": 11000, "keyValue": _dup_key(doc),
                               "errmsg": f"E11000 duplicate key error collection: {db}.{coll.name}"})
            except mongomock.OperationFailure as exc:
                errors.append({"index": index, "code": exc.code or 2, "errmsg": str(exc)})
            if errors and body.get("ordered", True):
                break
        out: dict[str, Any] = {"n": n}
        if errors:
            out["writeErrors"] = errors
        return out

    def _cmd_update(self, conn, db, body) -> dict:
        import mongomock

        coll = self.backend.get_database(db).get_collection(body["update"])
        n = modified = 0
        upserted, errors = [], []
        for index, spec in enumerate(body.get("updates") or []):
            self.opcounters["update"] += 1
            query, update = _to_query(spec.get("q") or {}), spec.get("u")
            kwargs: dict[str, Any] = {"upsert": bool(spec.get("upsert"))}
            if spec.get("arrayFilters"):
                kwargs["array_filters"] = spec["arrayFilters"]
            try:
                if isinstance(update, dict) and not any(k.startswith("$") for k in update):
                    if spec.get("multi"):
                        raise CommandError("multi update is not supported for replacement-style update", 9)
                    result = coll.replace_one(query, update, upsert=kwargs["upsert"])
                elif spec.get("multi"):
                    result = coll.update_many(query, update, **kwargs)
                else:
                    result = coll.update_one(query, update, **kwargs)
            except CommandError as exc:
                errors.append({"index": index, "code": exc.code, "errmsg": exc.errmsg})
            except mongomock.DuplicateKeyError as exc:
                errors.append({"index": index, "code": 11000,
                               "errmsg": f"E11000 duplicate key error collection: {db}.{coll.name}"})
            except (mongomock.OperationFailure, mongomock.WriteError, NotImplementedError) as exc:
                errors.append({"index": index, "code": getattr(exc, "code", None) or 2, "errmsg": str(exc)})
            else:
                n += result.matched_count
                modified += result.modified_count
                if result.upserted_id is not None:
                    n += 1
                    upserted.append({"index": index, "_id": result.upserted_id})
            if errors and body.get("ordered", True):
                break
        out: dict[str, Any] = {"n": n, "nModified": modified}
        if upserted:
            out["upserted"] = upserted
        if errors:
            out["writeErrors"] = errors
        return out

    def _cmd_delete(self, conn, db, body) -> dict:
        coll = self.backend.get_database(db).get_collection(body["delete"])
        n = 0
        for spec in body.get("deletes") or []:
            self.opcounters["delete"] += 1
            query = _to_query(spec.get("q") or {})
            result = coll.delete_one(query) if spec.get("limit") else coll.delete_many(query)
            n += result.deleted_count
        return {"n": n}

    def _cmd_findAndModify(self, conn, db, body) -> dict:
        coll = self.backend.get_database(db).get_collection(body["findAndModify"])
        query = _to_query(body.get("query") or {})
        sort = list(body["sort"].items()) if body.get("sort") else None
        projection = body.get("fields") or None
        existed = coll.find_one(query, sort=sort) is not None
        if body.get("remove"):
            self.opcounters["delete"] += 1
            value = coll.find_one_and_delete(query, projection=projection, sort=sort)
            return {"lastErrorObject": {"n": int(existed)}, "value": value}
        self.opcounters["update"] += 1
        update = body.get("update")
        upsert, new = bool(body.get("upsert")), bool(body.get("new"))
        if isinstance(update, dict) and not any(k.startswith("$") for k in update):
            value = coll.find_one_and_replace(query, update, projection=projection, sort=sort, upsert=upsert,
                                              return_document=new)
        else:
            value = coll.find_one_and_update(query, update, projection=projection, sort=sort, upsert=upsert,
                                             return_document=new)
        last: dict[str, Any] = {"n": int(existed or upsert), "updatedExisting": existed}
        if not existed and upsert and isinstance(value, dict) and "_id" in value:
            last["upserted"] = value["_id"]
        return {"lastErrorObject": last, "value": _id_first(value) if isinstance(value, dict) else value}


_CLOSE = object()
_request_ids = itertools.count(1)


def _dup_key(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {"_id": doc["_id"]} if "_id" in doc else {}


def _uri_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return quote_plus(str(value))


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed")
        buf += chunk
    return bytes(buf)


def _close_socket(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def _parse_op_msg(payload: bytes, end: int) -> dict[str, Any]:
    pos = 4
    body: dict[str, Any] | None = None
    sequences: dict[str, list] = {}
    while pos < end:
        kind = payload[pos]
        pos += 1
        (size,) = struct.unpack_from("<i", payload, pos)
        if kind == 0:
            body = bson.decode(payload[pos:pos + size], _CODEC)
        elif kind == 1:
            name_end = payload.index(b"\x00", pos + 4)
            name = payload[pos + 4:name_end].decode()
            sequences[name] = bson.decode_all(payload[name_end + 1:pos + size], _CODEC)
        else:
            raise ConnectionError(f"unknown OP_MSG section kind {kind}")
        pos += size
    if body is None:
        raise ConnectionError("OP_MSG without a body section")
    body.update(sequences)
    return body


def _encode(doc: Mapping[str, Any]) -> bytes:
    return bson.encode(doc, codec_options=_CODEC)


def _encode_reply(doc: Mapping[str, Any]) -> bytes:
    try:
        data = _encode(doc)
    except Exception as exc:  # noqa: BLE001 - e.g. a value BSON cannot hold: say so instead of dropping
        return _encode(CommandError(f"reply not encodable as BSON: {exc}", 1).reply())
    if len(data) > MAX_BSON_SIZE + 16 * 1024:
        return _encode(CommandError(f"reply of {len(data)} bytes exceeds the BSON size limit", 10334,
                                    "BSONObjectTooLarge").reply())
    return data


def _take_batch(pending: deque, batch_size: Any, default: int | None) -> list:
    limit = int(batch_size) if batch_size else default
    batch: list = []
    size = 0
    while pending and (limit is None or len(batch) < limit):
        doc_size = len(_encode(pending[0]))
        if batch and size + doc_size > BATCH_BYTES:
            break
        batch.append(pending.popleft())
        size += doc_size
    return batch


def _id_first(doc: dict) -> dict:
    if "_id" in doc and next(iter(doc)) != "_id":
        return {"_id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}}
    return doc


def _to_query(value: Any) -> Any:
    """Copy a filter/pipeline so mongomock never aliases the request (it may mutate)."""
    return copy.deepcopy(value)


_DATE_PARTS = (("year", "$year"), ("month", "$month"), ("day", "$dayOfMonth"), ("hour", "$hour"),
               ("minute", "$minute"), ("second", "$second"))


def _rewrite_stage(value: Any) -> Any:
    """mongomock lacks $dateTrunc: rewrite its UTC, binSize 1 forms (unit year..second) to $dateFromParts."""
    if isinstance(value, list):
        return [_rewrite_stage(v) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"$dateTrunc"} and isinstance(value["$dateTrunc"], dict):
        spec = value["$dateTrunc"]
        units = [u for u, _ in _DATE_PARTS]
        unit = spec.get("unit")
        extra = set(spec) - {"date", "unit", "binSize", "timezone"}
        if (unit in units and not extra and spec.get("binSize", 1) == 1
                and spec.get("timezone", "UTC") in ("UTC", "GMT", "Z", "+00:00")):
            date = _rewrite_stage(spec["date"])
            parts = _DATE_PARTS[: units.index(unit) + 1]
            return {"$dateFromParts": {part: {op: date} for part, op in parts}}
        raise CommandError(f"$dateTrunc with {spec!r} is not supported by the test server "
                           "(only UTC, binSize 1, unit year..second)", 168)
    return {k: _rewrite_stage(v) for k, v in value.items()}


__all__ = ["CommandError", "MongoTestServer", "Received", "User"]
