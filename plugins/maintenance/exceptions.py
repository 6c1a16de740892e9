"""Exceptions that operator modules need at import time (so this module stays light)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from maintenance.results import CheckResult


class ChecksFailed(AirflowFailException):
    """Raised by a check task when a check is at or past its failure threshold.

    Not retried: its alert is already out, and the next scheduled run is the re-check (a
    consecutive failure is a failed run, not a try). Task retries stay for crashes.
    """

    def __init__(self, failing: list[CheckResult]) -> None:
        self.failing = failing
        lines = "; ".join(f"{r.check}: {r.summary}" for r in failing)
        super().__init__(f"{len(failing)} check(s) failing: {lines}")
