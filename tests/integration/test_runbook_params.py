"""The runbooks' optional params are optional in Airflow's trigger form (issue 17 item 9).

Airflow's trigger form marks a param required unless its JSON schema allows null, and sends a
field left empty as null; the REST API validates a run's conf against the same schemas. So,
through a running API server: each optional param's schema accepts an empty value, and a run
triggered with it left empty is created.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import requests

from integration.test_status_page import server, site  # noqa: F401 - the module's API server

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = {"runbook_payments": "mpesa_checkout_request_id", "runbook_email": "recipient",
            "runbook_file_upload": "upload_key"}


@pytest.fixture(scope="module")
def dags_in_db(airflow_db):
    """The DAG files serialized into the metadata DB the API server reads (the DAG processor's job)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins"), "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    subprocess.run([sys.executable, "-m", "airflow", "dags", "reserialize"], env=env, check=True,
                   capture_output=True, timeout=300)


def call(server, method, path, **kwargs):  # noqa: F811
    return requests.request(method, f"{server['base']}/api/v2{path}", timeout=30,
                            headers={"Authorization": f"Bearer {server['token']}"}, **kwargs)


@pytest.mark.parametrize("dag_id", sorted(OPTIONAL))
def test_an_optional_runbook_param_may_be_left_empty(server, dags_in_db, dag_id):  # noqa: F811
    name = OPTIONAL[dag_id]
    details = call(server, "GET", f"/dags/{dag_id}/details")
    assert details.status_code == 200, details.text
    param = details.json()["params"][name]
    jsonschema.validate(None, param["schema"])          # the form's empty field
    assert param["value"] is None, "an empty default: the form starts empty, the Trigger button enabled"
    run = call(server, "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": {name: None}})
    assert run.status_code == 200, run.text
    assert run.json()["conf"] == {name: None}
    given = call(server, "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": {name: "x-1"}})
    assert given.status_code == 200, given.text
    wrong = call(server, "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": {name: 12}})
    assert wrong.status_code == 400, wrong.text      # still a string when given
