"""Maintenance orchestration: the importable package behind the DAGs.

Import direction: dags -> operators -> hooks, checks -> config, results (and conditions).
"""

import sys as _sys

if "sentry_sdk" in _sys.modules:   # a task process with [sentry] sentry_on: see sentry_filter.py
    from maintenance.sentry_filter import install as _install_sentry_filter

    _install_sentry_filter()
