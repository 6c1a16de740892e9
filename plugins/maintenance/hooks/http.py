"""PolicyHttpHook: Airflow's HttpHook (connection -> base URL, auth, extra headers) with every
call going through the one HTTP policy (hooks/http_policy.py).

Provider hooks subclass it and add one method per endpoint they use, e.g.

    class UptimeRobotHook(PolicyHttpHook):
        default_conn_name = "uptimerobot_api"
        auth_class = BearerAuth
        def monitors(self): return self.get_json("/v3/monitors")
"""

from __future__ import annotations

from typing import Any

import requests
from airflow.providers.http.hooks.http import HttpHook

from maintenance.hooks.http_policy import DEFAULT_POLICY, RetryPolicy, send


class BearerAuth(requests.auth.AuthBase):
    """Authorization: Bearer <connection password>, built by HttpHook from (login, password)."""

    def __init__(self, login: str | None = None, password: str | None = None) -> None:
        self.token = password or login or ""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class PolicyHttpHook(HttpHook):
    default_conn_name = "http_default"
    default_host = ""               # HttpHook's own: the provider's public API, when the connection has no host
    auth_class: Any = None          # requests auth class, built from (login, password); None: HTTP basic
    own_extras: tuple[str, ...] = ()  # connection extras that configure the hook, not HTTP headers

    def __init__(self, conn_id: str | None = None, policy: RetryPolicy = DEFAULT_POLICY, *,
                 connection: Any = None, **kwargs: Any) -> None:
        # `connection`: one fetched already, e.g. by a trigger with `await BaseHook.aget_connection()`
        # (the triggerer's event loop must not block on a synchronous connection lookup).
        self._connection = connection
        super().__init__(http_conn_id=conn_id or self.default_conn_name, **kwargs)
        self.policy = policy
        self._session: requests.Session | None = None
        self._secrets: list[str] = []
        self._more_secrets: list[str] = []

    def get_connection(self, conn_id: str) -> Any:  # type: ignore[override]
        if self._connection is not None and conn_id == self.http_conn_id:
            return self._connection
        return super().get_connection(conn_id)

    def get_conn(self, headers: dict[Any, Any] | None = None,
                 extra_options: dict[str, Any] | None = None) -> requests.Session:
        session = super().get_conn(headers, extra_options)
        connection = self.get_connection(self.http_conn_id)
        # HttpHook sends every connection extra as a header; ours configure the hook instead.
        for key in self.own_extras:
            session.headers.pop(key, None)
        if self.auth_class is not None:
            # HttpHook builds auth_class(login, password) only when login is set; a token may be password only.
            session.auth = self.auth_class(connection.login, connection.password)
        return session

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            connection = self.get_connection(self.http_conn_id)
            login, password = connection.login, connection.password
            # The pair too: HTTP Basic sends base64("login:password"), which an error body may echo.
            self._secrets = [s for s in (password, login, f"{login}:{password}" if login and password else None) if s]
            self._session = self.get_conn()
        return self._session

    def add_secrets(self, *secrets: str) -> None:
        """Values of this connection beyond login and password that are secrets (a token in
        the host's path): registered with Airflow's secret masker, redacted from its errors."""
        from airflow.sdk.log import mask_secret

        for secret in secrets:
            if secret and secret not in self._more_secrets:
                mask_secret(secret)
                self._more_secrets.append(secret)

    def request(self, method: str, endpoint: str, *, expect_json: bool = True, **kwargs: Any) -> Any:
        """One call under the policy; returns parsed JSON (or the response), raises ProviderError."""
        session = self.session
        url = endpoint if endpoint.startswith(("http://", "https://")) else self.url_from_endpoint(endpoint)
        return send(session, method, url, policy=self.policy, conn_id=self.http_conn_id,
                    secrets=[*self._secrets, *self._more_secrets], expect_json=expect_json, **kwargs)

    def get_json(self, endpoint: str, **kwargs: Any) -> Any:
        return self.request("GET", endpoint, **kwargs)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
