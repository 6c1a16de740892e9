"""The deployment files: docker-compose.yaml against the Compose specification's JSON schema
(docker compose cannot run here), and the Helm chart values.

The schema is the one check-jsonschema vendors (requirements.txt pins it), i.e.
compose-spec/compose-spec schema/compose-spec.json, with its licence beside it in the package.
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from e2e.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
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
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW_CONN_AIRFLOW_DB"].startswith("postgresql://"), name   # airflow_db_cleanup
        assert services[name]["env_file"] == [".env"], name   # connections reach every component
        assert "./include:/opt/airflow/include" in services[name]["volumes"], name


def test_env_example_documents_every_connection_the_topology_needs():
    env = (ROOT / ".env.example").read_text()
    for conn in ("SLACK_ALERTS", "MAINTENANCE_DB", "HEARTBEAT"):
        assert f"\nAIRFLOW_CONN_{conn}=" in env


@pytest.fixture(scope="module")
def helm() -> dict:
    return yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())


def test_helm_values_run_celery_on_the_extended_image(helm):
    assert helm["executor"] == "CeleryExecutor"
    assert helm["airflowVersion"] == "3.3.2"
    image = helm["images"]["airflow"]
    assert image["repository"].endswith("/maintenance-airflow") and image["tag"] == "3.3.2"
    assert helm["redis"]["enabled"] is True and helm["postgresql"]["enabled"] is False
    assert helm["data"]["metadataSecretName"] and helm["data"]["brokerUrlSecretName"]
    for key in ("fernetKeySecretName", "apiSecretKeySecretName", "jwtSecretName"):
        assert helm[key], key
    assert helm["dagProcessor"]["enabled"] and helm["triggerer"]["enabled"] and helm["workers"]["replicas"] >= 1
    assert helm["config"]["core"]["auth_manager"].endswith("SimpleAuthManager")
    assert helm["dags"]["gitSync"]["enabled"] is False   # the code is baked into the image
    dockerfile = (ROOT / "Dockerfile").read_text()
    for folder in ("dags", "plugins", "include"):
        assert f"COPY --chown=airflow:0 {folder} /opt/airflow/{folder}" in dockerfile


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
