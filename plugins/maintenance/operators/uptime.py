"""uptime_monitor's operator: one task sweeps every endpoint concurrently."""

from __future__ import annotations

from typing import Any, Sequence

from maintenance.config import MaintenanceConfig
from maintenance.operators.base import MaintenanceCheckOperator
from maintenance.results import CheckResult, not_configured


class UptimeCheckOperator(MaintenanceCheckOperator):
    """Check the configured endpoints (optionally only some groups) against their conditions."""

    template_fields: Sequence[str] = ("groups",)

    def __init__(self, *, groups: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.groups = groups

    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        from maintenance.checks.uptime import sweep  # aiohttp: not at DAG-parse time

        endpoints = [e for e in config.endpoints if not self.groups or e.group in self.groups]
        if not endpoints:
            return [not_configured("uptime.endpoints", "uptime", "add endpoints: to the maintenance config")]
        return sweep(endpoints, config.uptime.concurrency, config.uptime.user_agent)
