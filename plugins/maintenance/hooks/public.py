"""PublicApiHook: a PolicyHttpHook for public APIs that need no credentials (OSV, PyPI, npm,
CrUX with a key, a site's own pages). The Airflow connection is optional: when it exists its
host and credentials are used; otherwise the base URL comes from the config. Every call goes
through the one HTTP policy either way.
"""

from __future__ import annotations

from typing import Any

from maintenance.hooks.http import BearerAuth, PolicyHttpHook


class PublicApiHook(PolicyHttpHook):
    auth_class = BearerAuth

    def __init__(self, conn_id: str | None = None, *, base_url: str = "", **kwargs: Any) -> None:
        self.fallback_base = base_url.rstrip("/")
        self.connection_id = conn_id
        super().__init__(conn_id or f"public:{self.fallback_base}", **kwargs)

    def get_connection(self, conn_id: str) -> Any:   # type: ignore[override]
        from airflow.sdk import Connection
        from airflow.sdk.exceptions import AirflowNotFoundException

        if self.connection_id and conn_id == self.connection_id:
            try:
                return super().get_connection(conn_id)
            except AirflowNotFoundException:
                pass
        # No connection: the public API at the configured base URL, anonymously.
        return Connection(conn_id=conn_id, conn_type="http", host=self.fallback_base)

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None):
        session = super().get_conn(headers, extra_options)
        connection = self.get_connection(self.http_conn_id)
        if not (connection.password or connection.login):
            session.auth = None
        return session
