"""The deployment files: docker-compose.yaml against the Compose specification's JSON schema
(docker compose cannot run here), and the Helm chart values.

The schema is the one check-jsonschema vendors (requirements-dev.txt pins it: a test-only tool), i.e.
compose-spec/compose-spec schema/compose-spec.json, with its licence beside it in the package.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from importlib import resources
from pathlib import Path, PurePosixPath

import jsonschema
import pytest
import yaml

from e2e.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
IMAGE_AIRFLOW_HOME = PurePosixPath("/opt/airflow")      # the official apache/airflow image's AIRFLOW_HOME


def airflow_pin() -> str:
    """The apache-airflow version requirements.txt pins (what the tests and `make run` use)."""
    return re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)


def dockerfile() -> dict:
    """The image as the Dockerfile builds it: base image, COPY source -> destination, ENV."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    image = {"from": None, "copy": {}, "env": {}}
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "FROM":
            image["from"] = words[1]
        elif words[0] == "COPY":
            sources = [w for w in words[1:-1] if not w.startswith("--")]
            image["copy"].update({src: PurePosixPath(words[-1]) for src in sources})
        elif words[0] == "ENV":
            image["env"].update(dict(w.split("=", 1) for w in words[1:]))
    return image


def image_project_root(image: dict) -> PurePosixPath:
    """Where the code, as it is laid out, finds its project root inside the image: config.py's
    PROJECT_ROOT is computed from its own place under plugins/, so it follows the plugins COPY."""
    from maintenance import config

    inside = Path(config.__file__).resolve().relative_to(config.PROJECT_ROOT)      # plugins/maintenance/config.py
    assert inside.parts[0] == "plugins"
    return image["copy"]["plugins"].parent
AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker",
                    "airflow-triggerer", "airflow-init", "airflow-cli", "flower"}


@pytest.fixture(scope="module")
def compose_schema() -> dict:
    path = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())   # resolves anchors and << merges


def errors(schema: dict, document: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_matches_the_compose_specification(compose_schema, compose):
    assert errors(compose_schema, compose) == []


@pytest.mark.parametrize("mutate", [
    lambda c: c["services"]["airflow-worker"].update(restrat="always"),                 # a typo'd key
    lambda c: c["services"]["airflow-apiserver"].update(ports="8080:8080"),             # not a list
    lambda c: c["services"]["airflow-scheduler"]["depends_on"].update(
        {"postgres": {"condition": "service_up"}}),                                     # unknown enum value
], ids=["unknown-key", "wrong-type", "bad-condition"])
def test_the_schema_check_catches_mistakes(compose_schema, compose, mutate):
    broken = copy.deepcopy(compose)
    mutate(broken)
    assert errors(compose_schema, broken)


def test_compose_runs_the_topology_the_e2e_test_runs(compose):
    services = compose["services"]
    assert AIRFLOW_SERVICES <= set(services)
    commands = {" ".join(services[name]["command"].split()) for name in services
                if isinstance(services[name].get("command"), str)}
    for args in Topology.COMPONENTS.values():
        assert " ".join(args) in commands, f"no compose service runs 'airflow {' '.join(args)}'"
    root = image_project_root(dockerfile())
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert services[name]["env_file"] == [".env"], name   # connections reach every component
        # the host's include/ (config and runbooks) is where the code looks for it in the container
        mounts = {PurePosixPath(v.split(":")[1]): v.split(":")[0] for v in services[name]["volumes"]}
        assert mounts.get(root / "include") == "./include", name
        assert PurePosixPath(env["MAINTENANCE_CONFIG"]).is_relative_to(root / "include"), name


def test_airflow_db_cleanup_cleans_the_database_airflow_uses(compose, monkeypatch):
    """airflow_db_cleanup runs `airflow db clean` on the URL the project derives from connection
    airflow_db: in compose it must be Airflow's own metadata DB, in a driver SQLAlchemy loads."""
    import sqlalchemy as sa

    from maintenance.hooks.results_db import results_url
    from maintenance.operators.housekeeping import METADATA_CONN_ID

    for name in AIRFLOW_SERVICES:
        env = compose["services"][name]["environment"]
        monkeypatch.setenv(f"AIRFLOW_CONN_{METADATA_CONN_ID.upper()}", env["AIRFLOW_CONN_AIRFLOW_DB"])
        used, airflows = sa.engine.make_url(results_url(METADATA_CONN_ID)), sa.engine.make_url(
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        same = ("host", "database", "username", "password")
        assert {k: getattr(used, k) for k in same} == {k: getattr(airflows, k) for k in same}, name
        assert used.get_dialect().name == airflows.get_dialect().name == "postgresql", name


def test_env_example_documents_every_connection_the_topology_needs():
    env = (ROOT / ".env.example").read_text()
    for conn in ("SLACK_ALERTS", "MAINTENANCE_DB", "HEARTBEAT"):
        assert f"\nAIRFLOW_CONN_{conn}=" in env


@pytest.fixture(scope="module")
def helm() -> dict:
    return yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())


def test_helm_values_run_celery_on_the_extended_image(helm, compose):
    assert helm["executor"] == "CeleryExecutor"
    # every deployment runs the Airflow that requirements.txt pins, on the image the Dockerfile builds
    pin = airflow_pin()
    assert helm["airflowVersion"] == pin
    assert dockerfile()["from"].split(":")[1].split("-")[0] == pin
    image = helm["images"]["airflow"]
    built = compose["x-airflow-common"]["image"].split(":-")[1].rstrip("}")       # ${AIRFLOW_IMAGE_NAME:-name:tag}
    assert image["repository"].rsplit("/", 1)[-1] == built.split(":")[0] and image["tag"] == built.split(":")[1] == pin
    assert helm["redis"]["enabled"] is True and helm["postgresql"]["enabled"] is False
    assert helm["data"]["metadataSecretName"] and helm["data"]["brokerUrlSecretName"]
    for key in ("fernetKeySecretName", "apiSecretKeySecretName", "jwtSecretName"):
        assert helm[key], key
    assert helm["dagProcessor"]["enabled"] and helm["triggerer"]["enabled"] and helm["workers"]["replicas"] >= 1
    assert helm["config"]["core"]["auth_manager"].endswith("SimpleAuthManager")
    assert helm["dags"]["gitSync"]["enabled"] is False   # the code is baked into the image

def test_the_image_has_the_code_where_airflow_and_the_code_look_for_it():
    image = dockerfile()
    root = image_project_root(image)
    # Airflow's default dags_folder and plugins_folder under the image's AIRFLOW_HOME
    assert image["copy"]["dags"] == IMAGE_AIRFLOW_HOME / "dags"
    assert image["copy"]["plugins"] == IMAGE_AIRFLOW_HOME / "plugins"
    # the runbooks (doc_md) and the config the DAGs read, relative to the code's project root
    assert image["copy"]["include"] == root / "include"
    assert PurePosixPath(image["env"]["MAINTENANCE_CONFIG"]) == root / "include" / "config" / "maintenance.yaml"
    own = image["env"]["PYTHONPATH"].split("$")[0]          # before the inherited ${PYTHONPATH:+:...}
    assert str(image["copy"]["plugins"]) in own.split(":")   # `python -m maintenance` in the image


def test_helm_connections_come_from_kubernetes_secrets_only(helm):
    from_secrets = {s["envName"] for s in helm["secret"]}
    assert {"AIRFLOW_CONN_SLACK_ALERTS", "AIRFLOW_CONN_MAINTENANCE_DB", "AIRFLOW_CONN_HEARTBEAT"} <= from_secrets
    assert all(s["secretName"] and s["secretKey"] for s in helm["secret"])
    env_from = yaml.safe_load(helm["extraEnvFrom"])
    assert any("secretRef" in e for e in env_from)
    # No connection or secret value inline: plain env carries only non-secret settings.
    assert not any(e["name"].startswith("AIRFLOW_CONN_") for e in helm.get("env", []))
    text = (ROOT / "deploy" / "helm" / "values.yaml").read_text()
    for fragment in ("hooks.slack.com/services", "password:", "://airflow:airflow@"):
        assert fragment not in text


def test_sentry_is_on_with_the_dsn_from_the_environment_only(compose, helm):
    """The orchestrator's own errors go to Sentry (tests/dags/test_sentry_reporting.py runs this
    configuration); the DSN is a secret: from .env / a Kubernetes secret, never in these files."""
    for name, service in compose["services"].items():
        if name in AIRFLOW_SERVICES:
            assert str(service["environment"]["AIRFLOW__SENTRY__SENTRY_ON"]).lower() == "true", name
            assert "SENTRY_DSN" not in service["environment"] and ".env" in service["env_file"], name
    assert "\nSENTRY_DSN=" in (ROOT / ".env.example").read_text()
    assert str(helm["config"]["sentry"]["sentry_on"]).lower() == "true"
    refs = [e["secretRef"] for e in yaml.safe_load(helm["extraEnvFrom"]) if "secretRef" in e]
    assert {"name": "maintenance-sentry", "optional": True} in refs
    assert "ingest.sentry.io" not in (ROOT / "deploy" / "helm" / "values.yaml").read_text()


def test_compose_api_server_reads_the_reports_the_workers_write():
    """The status page (API server) serves the reports the worker's report tasks write to
    $AIRFLOW_HOME/reports: both must see the same folder (issue 17)."""
    services = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())["services"]
    for name in ("airflow-apiserver", "airflow-worker"):
        mounts = {v.split(":")[1]: v.split(":")[0] for v in services[name]["volumes"] if isinstance(v, str)}
        assert mounts.get("/opt/airflow/reports") == "./reports", (name, mounts)
