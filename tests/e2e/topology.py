"""The production topology as local processes: what docker-compose.yaml runs, minus Docker.

`Topology` owns one fresh Postgres database (Airflow metadata + results store), one Redis
database (Celery broker), an AIRFLOW_HOME in a temp dir, and the Airflow components as
subprocesses, each in its own process group with its log in AIRFLOW_HOME/logs/<name>.log.
`close()` stops every process (SIGTERM, then SIGKILL of the group) and drops the database;
it is safe to call after any failure, even a partial start.

`Api` drives Airflow through the REST API /api/v2 with a token from SimpleAuthManager.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
PG_ADMIN_URL = os.environ.get("E2E_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
TERMINAL = {"success", "failed"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, probe: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Call probe() until it returns something truthy; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - a component still starting
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


class Topology:
    COMPONENTS = {
        "api-server": ["api-server"],
        "scheduler": ["scheduler"],
        "dag-processor": ["dag-processor"],
        "triggerer": ["triggerer"],
        "worker": ["celery", "worker"],
    }

    def __init__(self, home: Path) -> None:
        self.home = home
        self.logs = home / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.db_name = f"maint_e2e_{secrets.token_hex(4)}"
        self.db_url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{self.db_name}"
        self.redis_db: int | None = None
        self.processes: dict[str, subprocess.Popen] = {}
        self.generation: dict[str, int] = {}
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(16)
        self.env: dict[str, str] = {}
        self.api: Api | None = None   # once up()

    # -- resources ------------------------------------------------------------------------
    def _create_database(self) -> None:
        engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.db_name}"'))
        engine.dispose()

    def _drop_database(self) -> None:
        engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
        engine.dispose()

    def _claim_redis_db(self) -> int:
        """An empty Redis database (1-15), claimed with a marker key so two runs never share one."""
        import redis

        for number in sorted(range(1, 16), key=lambda _: secrets.randbelow(1000)):
            client = redis.Redis(REDIS_HOST, REDIS_PORT, db=number)
            if client.dbsize() == 0 and client.set("maint_e2e:claim", self.db_name, nx=True, ex=3600):
                return number
        raise RuntimeError("no empty Redis database (1-15) left for the e2e broker")

    def _release_redis_db(self) -> None:
        import redis

        if self.redis_db is not None:
            redis.Redis(REDIS_HOST, REDIS_PORT, db=self.redis_db).flushdb()

    # -- environment ------------------------------------------------------------------------
    def _environment(self, extra_env: dict[str, str]) -> dict[str, str]:
        # Only what Airflow needs: PATH, HOME, locale; never the parent's AIRFLOW_* (the
        # test session's own SQLite settings) nor anything else that could leak in.
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER")}
        passwords = self.home / "passwords.json"
        passwords.write_text(json.dumps({"admin": self.password}))
        broker = f"redis://{REDIS_HOST}:{REDIS_PORT}/{self.redis_db}"
        env = {
            **keep,
            "PATH": f"{VENV_BIN}:{keep.get('PATH', '/usr/bin:/bin')}",
            # This worktree's plugins, ahead of any .pth in the shared venv.
            "PYTHONPATH": str(ROOT / "plugins"),
            "PYTHONUNBUFFERED": "1",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url,
            "AIRFLOW__CELERY__BROKER_URL": broker,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.db_url.replace("+psycopg2", ""),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            # Log servers on free ports: other engineers' Airflow may hold the defaults.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # Only the runs the test triggers: no cron runs appearing mid-test.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            # Tight timing: new and changed DAG files are seen within seconds, and a task
            # whose worker died is noticed after 20 s instead of 5 minutes.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "3",
            # The metadata DB for airflow_db_cleanup's `airflow db clean` (tasks cannot see the above).
            "AIRFLOW_CONN_AIRFLOW_DB": json.dumps({
                "conn_type": "postgres", "host": "127.0.0.1", "port": 5432,
                "schema": self.db_name, "login": "postgres"}),
            "AIRFLOW_CONN_MAINTENANCE_DB": json.dumps({
                "conn_type": "postgres", "host": "127.0.0.1", "port": 5432,
                "schema": self.db_name, "login": "postgres"}),
            **extra_env,
        }
        return env

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(VENV_BIN / "airflow"), *args], env=self.env, cwd=self.home,
                              capture_output=True, text=True, timeout=timeout, check=True)

    # -- processes --------------------------------------------------------------------------
    def start(self, name: str) -> subprocess.Popen:
        """Start a component (again); its output goes to logs/<name>.<n>.log."""
        generation = self.generation.get(name, 0) + 1
        self.generation[name] = generation
        log = open(self.logs / f"{name}.{generation}.log", "wb")  # noqa: SIM115 - owned by the process
        args = list(self.COMPONENTS[name])
        if name == "worker":
            args += ["--celery-hostname", f"e2e-worker-{generation}@%h"]
        process = subprocess.Popen([str(VENV_BIN / "airflow"), *args], env=self.env, cwd=self.home,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.processes[name] = process
        return process

    def stop(self, name: str, sig: int = signal.SIGTERM, grace: float = 20) -> None:
        """Signal a component's whole process group; SIGKILL it if it outlives `grace`."""
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        _signal_group(process, sig)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)
        # Children that outlived their parent (task supervisors, gunicorn workers...).
        _signal_group(process, signal.SIGKILL)

    def kill(self, name: str) -> None:
        """A crash: SIGKILL of the component's process group, no clean-up on its side."""
        self.stop(name, signal.SIGKILL, grace=10)

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"----- {path.name} -----\n" + "\n".join(text))
        return "\n".join(out)

    def up(self, extra_env: dict[str, str]) -> "Api":
        """Create the database, migrate it, start every component; the API once all are healthy."""
        self._create_database()
        self.redis_db = self._claim_redis_db()
        self.env = self._environment(extra_env)
        self.airflow("db", "migrate")
        for name in self.COMPONENTS:
            self.start(name)
        wait_for("the API server", lambda: requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=2).ok, 120)
        self.api = Api(self.base_url, "admin", self.password)
        wait_for("scheduler, dag-processor and triggerer to be healthy", lambda: _healthy(self.api), 120)
        return self.api

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name)
        try:
            self._drop_database()
        finally:
            self._release_redis_db()


def _healthy(api: "Api") -> bool:
    health = requests.get(f"{api.base_url}/api/v2/monitor/health", timeout=5).json()
    parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    return all((health.get(p) or {}).get("status") == "healthy" for p in parts)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


class Api:
    """The REST API /api/v2, authenticated with a SimpleAuthManager token."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        response = requests.post(f"{base_url}/auth/token", json={"username": username, "password": password},
                                 timeout=10)
        assert response.status_code == 201, f"token: HTTP {response.status_code} {response.text[:200]}"
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=15, **kwargs)
        assert response.ok, f"{method} {path}: HTTP {response.status_code} {response.text[:300]}"
        return response.json() if response.content else None

    def wait_for_dags(self, dag_ids: set[str], timeout: float = 120) -> None:
        def parsed() -> bool:
            found = {d["dag_id"] for d in self.call("GET", "/dags", params={"limit": 100})["dags"]}
            return dag_ids <= found
        wait_for(f"the DAGs {sorted(dag_ids)} to be parsed", parsed, timeout, interval=1)

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str) -> str:
        run = self.call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None})
        return run["dag_run_id"]

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        tis = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti for ti in tis}

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 180) -> dict[str, Any]:
        return wait_for(f"{dag_id} run {run_id} to finish",
                        lambda: (lambda r: r if r["state"] in TERMINAL else None)(self.run(dag_id, run_id)),
                        timeout, interval=1)

    def wait_for_task_state(self, dag_id: str, run_id: str, task_id: str, states: set[str],
                            timeout: float = 120) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            ti = self.task_instances(dag_id, run_id).get(task_id)
            return ti if ti and ti["state"] in states else None
        return wait_for(f"{dag_id}.{task_id} in {sorted(states)}", probe, timeout, interval=0.5)
