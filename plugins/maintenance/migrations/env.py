"""Alembic environment: migrations run on the connection upgrade() hands over (no alembic.ini)."""

from alembic import context

connection = context.config.attributes["connection"]
# Its own version table: the results store may share a database with Airflow's metadata,
# whose migrations keep theirs in `alembic_version`.
context.configure(connection=connection, target_metadata=None, version_table=context.config.attributes["version_table"],
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
