"""Maintenance orchestration: the importable package behind the DAGs.

Import direction: dags -> operators -> hooks, checks -> config, results (and conditions).
"""
