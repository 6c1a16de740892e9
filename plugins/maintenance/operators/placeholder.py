"""A task whose capability is not built yet: visibly skipped, saying so in its result."""

from __future__ import annotations

from typing import Any

from maintenance.config import MaintenanceConfig
from maintenance.operators.base import MaintenanceCheckOperator
from maintenance.results import CheckResult, not_implemented


class NotImplementedCheckOperator(MaintenanceCheckOperator):
    ui_color = "#eeeeee"

    def __init__(self, *, check: str, group: str, planned_in: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check, self.group, self.planned_in = check, group, planned_in

    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        return [not_implemented(self.check, self.group, self.planned_in, runbook=context["dag"].dag_id)]
