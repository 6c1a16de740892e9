"""Hooks: one module per provider, thin over the SDK or Airflow's own hooks."""
