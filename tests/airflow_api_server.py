"""`airflow api-server` as a process for the tests of the status-page app: this repo's plugins,
a SimpleAuthManager user and its token, the results store as connection status_results."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests

from servers import free_port

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def api_server(folder: Path, config: Path, results_url: str,
               extra_env: dict[str, str] | None = None) -> Iterator[dict[str, str]]:
    """`airflow api-server` on a free port with this repo's plugins and a SimpleAuthManager user."""
    port, password = free_port(), secrets.token_urlsafe(12)
    passwords = folder / "passwords.json"
    passwords.write_text(json.dumps({"admin": password}))
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ")}
    env = {
        **keep,
        "PATH": f"{Path(sys.executable).parent}:{keep.get('PATH', '/usr/bin:/bin')}",
        "PYTHONPATH": str(ROOT / "plugins"),
        "AIRFLOW_HOME": os.environ["AIRFLOW_HOME"],
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "MAINTENANCE_CONFIG": str(config),
        "AIRFLOW_CONN_STATUS_RESULTS": json.dumps({"conn_type": "sqlite", "extra": {"sqlalchemy_url": results_url}}),
        **(extra_env or {}),
    }
    log = open(folder / "api-server.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port",
                                str(port), "--workers", "1"], env=env, stdout=log, stderr=subprocess.STDOUT,
                               cwd=folder)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            if requests.get(f"{base}/api/v2/monitor/health", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            raise RuntimeError("the API server did not start:\n" + (folder / "api-server.log").read_text()[-3000:])
        time.sleep(0.5)
    token = requests.post(f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=10)
    assert token.status_code == 201, token.text
    try:
        yield {"base": base, "token": token.json()["access_token"]}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
