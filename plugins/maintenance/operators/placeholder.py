"""A task whose capability is not built yet: visibly skipped, saying so in its result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from maintenance.operators.base import MaintenanceCheckOperator

if TYPE_CHECKING:
    from maintenance.config import MaintenanceConfig
    from maintenance.results import CheckResult


class NotImplementedCheckOperator(MaintenanceCheckOperator):
    ui_color = "#eeeeee"

    def __init__(self, *, check: str, group: str, planned_in: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check, self.group, self.planned_in = check, group, planned_in

    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        from maintenance.results import not_implemented

        return [not_implemented(self.check, self.group, self.planned_in, runbook=context["dag"].dag_id)]
