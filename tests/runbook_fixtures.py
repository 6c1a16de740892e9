"""Shared pieces of the runbook tests: a config with local URLs, running a runbook's steps
in-process (the same functions the DAG's tasks run) and diagnosing them."""

from __future__ import annotations

import json
from typing import Any

from maintenance.checks.diagnosis import Diagnosis, diagnose
from maintenance.config import MaintenanceConfig

CONTACTS = {
    "atlas": {"name": "MongoDB Atlas Support", "how": "https://support.mongodb.com", "status_page": "https://status.mongodb.com"},
    "vercel": {"name": "Vercel Support", "how": "https://vercel.com/help"},
    "stripe": {"name": "Stripe Support", "how": "https://support.stripe.com", "status_page": "https://status.stripe.com"},
    "mpesa": {"name": "M-Pesa Support", "how": "apisupport@safaricom.co.ke"},
    "mailgun": {"name": "Mailgun Support", "how": "https://help.mailgun.com"},
    "sendgrid": {"name": "SendGrid Support", "how": "https://support.sendgrid.com"},
    "storage": {"name": "AWS / R2 Support", "how": "https://support.cloudflare.com"},
    "sentry": {"name": "Sentry Support", "how": "https://sentry.io/support/"},
}


def statuspage_body(indicator: str = "none", incidents: list[str] = ()) -> dict[str, Any]:
    return {"page": {"id": "p", "name": "Status"},
            "status": {"indicator": indicator, "description": "All Systems Operational" if indicator == "none" else "Outage"},
            "components": [{"id": "c1", "name": "Clusters", "status": "operational" if indicator == "none" else "major_outage"}],
            "incidents": [{"name": n, "status": "investigating"} for n in incidents]}


def make_config(**sections: Any) -> MaintenanceConfig:
    data = {"site": {"name": "test.example", "url": "https://test.example"}, "contacts": CONTACTS,
            "alerting": {"ui_base_url": "http://airflow.test:8080"}, **sections}
    return MaintenanceConfig.model_validate(data)


def run_steps(module: Any, config: MaintenanceConfig, steps: list[str], params: dict[str, Any] | None = None):
    context = {"params": params or {}}
    return [(name, getattr(module, name)(config, context)) for name in steps]


def diagnosis_of(runbook: str, steps) -> Diagnosis:
    import importlib

    catalogue = importlib.import_module(f"maintenance.checks.runbooks.{runbook}")
    config = make_config()
    return diagnose(f"runbook_{runbook}", steps, catalogue.CAUSES, config.contacts, default_contacts=catalogue.CONTACTS)


def by_check(steps) -> dict[str, Any]:
    return {r.check: r for _, results in steps for r in results}


def conn(monkeypatch, conn_id: str, **fields: Any) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
