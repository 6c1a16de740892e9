"""The runbook diagnoses' checks: one module per runbook DAG, each with its CAUSES catalogue."""
