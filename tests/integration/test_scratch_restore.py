"""The monthly restore test's mongorestore step: the scratch database's password never reaches
a command line. A stand-in `mongorestore` on PATH records its argv and its --config file, then
restores like the real tool (<dir>/<db>/<collection>.bson) into a local MongoDB wire-protocol
server, authenticating with the URI and the config file's password."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import textwrap
from urllib.parse import quote, quote_plus

import bson
import pytest

from atlas_server import mongodump_archive
from maintenance.config import Atlas, RestoreTarget
from maintenance.operators.backups import scratch_restore
from mongo_fixtures import mongo_server_factory  # noqa: F401

SCRATCH_PW = "scratch-PW/secret:1"         # URL-special characters on purpose
LIVE_PW = "live-PW-secret"

FAKE = textwrap.dedent("""\
    #!{python}
    import json, os, stat, sys
    from urllib.parse import unquote_plus, urlsplit

    args = sys.argv[1:]
    record = {{"argv": sys.argv, "config": None}}
    if "--config" in args:
        path = args[args.index("--config") + 1]
        record.update(config_path=path, config=open(path).read(), config_mode=stat.S_IMODE(os.stat(path).st_mode))
    with open(os.environ["FAKE_MONGORESTORE_LOG"], "a") as out:
        out.write(json.dumps(record) + "\\n")

    import bson, pymongo, yaml
    password = yaml.safe_load(record["config"] or "{{}}").get("password")
    if os.environ.get("FAKE_MONGORESTORE_FAIL"):
        sys.exit(print(f"Failed: error connecting to db server: auth failed for password {{password}}", file=sys.stderr) or 1)
    uri = args[args.index("--uri") + 1]
    user = urlsplit(uri).username
    client = pymongo.MongoClient(uri, username=unquote_plus(user) if user else None, password=password,
                                 serverSelectionTimeoutMS=3000)
    dump = args[-1]
    for db in sorted(os.listdir(dump)):
        for name in sorted(os.listdir(os.path.join(dump, db))):
            if name.endswith(".bson"):
                collection = client[db][name[:-5]]
                if "--drop" in args:
                    collection.drop()
                docs = bson.decode_all(open(os.path.join(dump, db, name), "rb").read())
                if docs:
                    collection.insert_many(docs)
    print("done restoring", file=sys.stderr)
""")


@pytest.fixture
def restore_env(tmp_path, monkeypatch, mongo_server_factory):  # noqa: F811
    live = mongo_server_factory(users={"app": LIVE_PW})
    scratch = mongo_server_factory(users={"restorer": SCRATCH_PW})
    live.seed("app", "users", [{"n": i} for i in range(3)])
    live.seed("app", "orders", [{"n": 1}])
    monkeypatch.setenv("AIRFLOW_CONN_MONGO_DEFAULT", live.airflow_conn())
    monkeypatch.setenv("AIRFLOW_CONN_MONGO_RESTORE_SCRATCH", scratch.airflow_conn())
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "mongorestore"
    fake.write_text(FAKE.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    log = tmp_path / "mongorestore.log"
    monkeypatch.setenv("FAKE_MONGORESTORE_LOG", str(log))
    archive = tmp_path / "snapshot.tar.gz"
    archive.write_bytes(mongodump_archive({
        "app.users": b"".join(bson.encode({"n": i}) for i in range(3)),
        "app.orders": bson.encode({"n": 1})}))
    workdir = tmp_path / "work"
    workdir.mkdir()
    return live, scratch, str(archive), str(workdir), log


def forms(secret):
    return {secret, quote(secret, safe=""), quote_plus(secret), base64.b64encode(secret.encode()).decode()}


def test_the_password_goes_in_a_private_config_file_never_on_the_command_line(restore_env):
    live, scratch, archive, workdir, log = restore_env
    atlas = Atlas(restore_target=RestoreTarget(scratch=True))
    result = scratch_restore(atlas, archive, workdir, "atlas:prod")
    assert (result.check, result.status) == ("atlas.restore_counts", "ok"), result

    [record] = [json.loads(line) for line in log.read_text().splitlines()]
    command_line = " ".join(record["argv"])
    assert not any(form in command_line for form in forms(SCRATCH_PW) | forms(LIVE_PW)), command_line
    assert "restorer@" in command_line and "authSource=admin" in command_line
    assert record["config_mode"] == 0o600, oct(record["config_mode"])
    assert SCRATCH_PW in record["config"]
    assert not os.path.exists(record["config_path"]), "the config file is removed after the run"
    # the stand-in really restored with those credentials
    assert scratch.collection("app", "users").count_documents({}) == 3


def test_a_failed_mongorestore_is_a_fail_result_without_the_password(restore_env, monkeypatch):
    live, scratch, archive, workdir, log = restore_env
    monkeypatch.setenv("FAKE_MONGORESTORE_FAIL", "1")
    result = scratch_restore(Atlas(restore_target=RestoreTarget(scratch=True)), archive, workdir, "atlas:prod")
    assert (result.status, result.reason) == ("fail", "restore_failed")
    assert "auth failed for password ***" in result.summary and SCRATCH_PW not in result.summary
    [record] = [json.loads(line) for line in log.read_text().splitlines()]
    assert not os.path.exists(record["config_path"])


def test_a_missing_scratch_connection_is_skipped(restore_env, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_MONGO_RESTORE_SCRATCH")
    live, scratch, archive, workdir, log = restore_env
    result = scratch_restore(Atlas(restore_target=RestoreTarget(scratch=True)), archive, workdir, "atlas:prod")
    assert (result.status, result.reason) == ("skipped", "not_configured")
    assert "mongo_restore_scratch" in result.summary and not log.exists()
