"""Checks: plain functions, data in, CheckResults out. No Airflow imports here."""
