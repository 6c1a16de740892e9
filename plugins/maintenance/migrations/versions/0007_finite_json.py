"""JSON that could not be read back (issue 18 item 4): before the store serialised strictly, a NaN
or Infinity from a provider was written as a bare token, which SQLite's JSON functions (the
daily roll-up, the status page) call malformed. Such values are rewritten as null. Postgres
never stored them (it refused the write), so only SQLite has rows to mend.

Revision ID: 0007
Revises: 0006
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

# The JSON columns as of 0006: (table, primary key columns, JSON columns).
JSON_COLUMNS = (
    ("check_results", ("id",), ("metrics", "evidence")),
    ("alert_outbox", ("id",), ("payload",)),
    ("check_daily", ("check_name", "day"), ("metrics",)),
    ("osv_vulns", ("vuln_id",), ("record",)),
    ("runbook_starts", ("id",), ("checks",)),
)


def upgrade() -> None:
    from maintenance.results import dump_json

    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    tables = set(sa.inspect(bind).get_table_names())
    for table, keys, columns in JSON_COLUMNS:
        if table not in tables:
            continue
        for column in columns:
            found = bind.exec_driver_sql(
                f"SELECT {', '.join(keys)}, {column} FROM {table} WHERE json_valid({column}) = 0").fetchall()
            for *key, text in found:
                try:
                    value = json.loads(text)   # Python reads the NaN and Infinity tokens it wrote
                except ValueError:
                    continue                   # not ours to guess at
                where = " AND ".join(f"{k} = ?" for k in keys)
                bind.exec_driver_sql(f"UPDATE {table} SET {column} = ? WHERE {where}", (dump_json(value), *key))


def downgrade() -> None:
    pass   # null is what the values meant; nothing to restore
