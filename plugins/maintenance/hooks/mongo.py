"""MongoDB for the monthly restore test, on Airflow's MongoHook: mongorestore into the scratch
database and per-collection document counts.

mongorestore never gets the password on its command line (every process on the worker can
read a command line): the URI it gets carries the user name only, and the password goes in a
YAML file readable by this user alone (mode 0600), passed with --config and removed at once.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import Any
from urllib.parse import quote_plus, urlencode, urlunsplit

from maintenance.hooks.http_policy import CONNECTION, HTTP_4XX, TIMEOUT, UNAUTHORIZED, ProviderError, redact

# connection extras that configure MongoHook, not the MongoDB URI
_HOOK_EXTRAS = {"srv", "allow_insecure"}


def restore_target(conn_id: str) -> tuple[str, str | None]:
    """(URI without the password, password) of a mongo connection, for mongorestore.

    The URI carries what MongoHook passes pymongo as options (authSource, replicaSet, tls...),
    with the authentication database made explicit (pymongo takes it from the URI's path, which
    mongorestore would read as a database to restore into instead).
    """
    from airflow.providers.mongo.hooks.mongo import MongoHook

    hook = MongoHook(mongo_conn_id=conn_id)
    conn = hook.connection
    extras = dict(conn.extra_dejson)
    netloc = conn.host or "localhost"
    if conn.login:
        netloc = f"{quote_plus(conn.login)}@{netloc}"
    if conn.port:
        netloc = f"{netloc}:{conn.port}"
    options: dict[str, str] = {}
    for key, value in extras.items():
        if key in _HOOK_EXTRAS or isinstance(value, (dict, list)) or value is None:
            continue
        options[key] = str(value).lower() if isinstance(value, bool) else str(value)
    if str(extras.get("allow_insecure", "")).lower() == "true":
        options["tlsAllowInvalidCertificates"] = "true"
    if conn.login:
        options.setdefault("authSource", conn.schema or "admin")
    scheme = "mongodb+srv" if str(extras.get("srv", "")).lower() == "true" else "mongodb"
    uri = urlunsplit((scheme, netloc, "/", urlencode(options), ""))
    return uri, conn.password or None


def mongorestore(binary: str, uri: str, password: str | None, dump_dir: str, *, gzip: bool = False,
                 drop: bool = True, conn_id: str | None = None, timeout: float = 4 * 3600) -> None:
    """mongorestore a dump directory (one folder per database), the password through --config.

    Raises ProviderError: restore_failed (with the tool's last words, redacted) or timeout.
    """
    command = [binary, "--uri", uri] + (["--drop"] if drop else []) + (["--gzip"] if gzip else [])
    where = f"mongorestore into '{conn_id}'" if conn_id else "mongorestore"
    config = None
    try:
        if password:
            import yaml

            fd, config = tempfile.mkstemp(prefix="mongorestore-", suffix=".yaml")   # created 0600
            with os.fdopen(fd, "w") as out:
                yaml.safe_dump({"password": password}, out)
            command += ["--config", config]
        done = subprocess.run(command + [dump_dir], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ProviderError(TIMEOUT, f"{where} did not finish in {timeout:g} s") from None
    except OSError as exc:
        raise ProviderError("restore_failed", f"{where} could not start ({type(exc).__name__})") from None
    finally:
        if config is not None:
            os.unlink(config)
    if done.returncode != 0:
        raise ProviderError("restore_failed", redact(f"{where} failed: {done.stderr.strip()[-300:]}", [password]))


def collection_counts(conn_id: str, skip: tuple[str, ...] = ("admin", "local", "config")) -> dict[str, int]:
    """{"db.collection": estimated document count} of every user database of the connection.
    Raises ProviderError (classified pymongo failure)."""
    from airflow.providers.mongo.hooks.mongo import MongoHook
    from pymongo.errors import PyMongoError

    try:
        with MongoHook(mongo_conn_id=conn_id) as hook:
            client: Any = hook.get_conn()
            counts = {}
            for db in client.list_database_names():
                if db in skip:
                    continue
                for name in client[db].list_collection_names():
                    counts[f"{db}.{name}"] = client[db][name].estimated_document_count()
            return counts
    except PyMongoError as exc:
        reason, text = mongo_error(exc)
        raise ProviderError(reason, f"counting the collections of '{conn_id}' failed: {text}", conn_id=conn_id) from None


def mongo_error(exc: Exception) -> tuple[str, str]:
    """(reason, message) of a pymongo error, without secrets: the server's code name (else the
    error class) and code only."""
    from pymongo.errors import (AutoReconnect, ConfigurationError, ConnectionFailure, ExecutionTimeout,
                                NetworkTimeout, OperationFailure, ServerSelectionTimeoutError)

    name = type(exc).__name__
    if isinstance(exc, OperationFailure):
        name = str((exc.details or {}).get("codeName") or name)   # AuthenticationFailed, Unauthorized...
        if exc.code in (13, 18):      # Unauthorized, AuthenticationFailed
            return UNAUTHORIZED, f"{name} (code {exc.code})"
        if isinstance(exc, ExecutionTimeout) or exc.code == 50:   # MaxTimeMSExpired
            return TIMEOUT, f"{name} (code {exc.code}: the query ran past its time limit)"
        return "mongo_error", f"{name} (code {exc.code})"
    if isinstance(exc, (ServerSelectionTimeoutError, NetworkTimeout)):
        return TIMEOUT, "no server answered in time"
    if isinstance(exc, (ConnectionFailure, AutoReconnect)):
        return CONNECTION, f"connection failed ({name})"
    if isinstance(exc, ConfigurationError):
        return HTTP_4XX, f"connection misconfigured ({name})"
    return "mongo_error", name


def aggregate(conn_id: str, database: str, pipelines: dict[str, tuple[str, list[dict[str, Any]]]],
              max_time_ms: int = 60_000) -> dict[str, list[dict[str, Any]] | Exception]:
    """Run each named (collection, pipeline) in the database through MongoHook: its groups, or
    the ProviderError that stopped it (one failing pipeline does not stop the others)."""
    from airflow.providers.mongo.hooks.mongo import MongoHook
    from pymongo.errors import PyMongoError

    found: dict[str, list[dict[str, Any]] | Exception] = {}
    try:
        with MongoHook(mongo_conn_id=conn_id) as hook:
            client: Any = hook.get_conn()
            unreachable: ProviderError | None = None
            for name, (collection, pipeline) in pipelines.items():
                if unreachable is not None:   # no server: the next pipelines would only wait as long again
                    found[name] = unreachable
                    continue
                try:
                    found[name] = list(client[database][collection].aggregate(pipeline, maxTimeMS=max_time_ms))
                except PyMongoError as exc:
                    reason, text = mongo_error(exc)
                    found[name] = ProviderError(reason, f"aggregating {database}.{collection} through '{conn_id}' "
                                                        f"failed: {text}", conn_id=conn_id)
                    if reason in (TIMEOUT, CONNECTION):
                        unreachable = found[name]
    except PyMongoError as exc:   # the client itself (URI, DNS) could not be made
        reason, text = mongo_error(exc)
        error = ProviderError(reason, f"connecting through '{conn_id}' failed: {text}", conn_id=conn_id)
        found = {name: error for name in pipelines}
    return found
