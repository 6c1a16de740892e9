"""Public URLs through the one HTTP policy: the single home of "call a URL that needs no
credentials".

- `get()` / `call()` / `probe()`: one URL, no Airflow connection needed (Statuspage JSON,
  Stripe's /current, an egress-IP echo, the runbooks' M-Pesa callback and upload probes). A
  plain requests session with the runbooks' User-Agent; `bearer_conn_id` optionally names a
  connection whose password goes as `Authorization: Bearer` (and is redacted), and a missing
  connection means an anonymous call. The caller picks the RetryPolicy (a probe that must not
  repeat passes attempts=1).
- `PublicApiHook`: a PolicyHttpHook for public APIs with a base URL (OSV, PyPI, npm, CrUX with a
  key, a site's own pages). The Airflow connection is optional: when it exists its host and
  credentials are used; otherwise the base URL comes from the config.
- `by_deadline()` and `read_limited()`: a request answered by a deadline and its streamed body
  read to a size limit and that deadline (a site's pages, lock files at a URL): a 2 GB answer,
  or one that drips its headers or body a byte at a time, never holds the task.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, TypeVar

from maintenance.hooks.http import BearerAuth, PolicyHttpHook
from maintenance.hooks.http_policy import (
    DEFAULT_POLICY, TIMEOUT, ProviderError, RetryPolicy, classify_exception, send,
)

USER_AGENT = "maintenance-runbook/1.0"
T = TypeVar("T")


def _bearer_token(conn_id: str | None) -> str | None:
    """The password of an optional connection, or None when it is not set (or has none)."""
    if not conn_id:
        return None
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id).password or None
    except AirflowNotFoundException:
        return None


def call(method: str, url: str, *, policy: RetryPolicy = DEFAULT_POLICY, expect_json: bool = False,
         bearer_conn_id: str | None = None, secrets: Iterable[str | None] = (), **kwargs: Any) -> Any:
    """One call to a public URL under the policy: the response (parsed JSON with expect_json);
    raises ProviderError."""
    import requests

    secrets = list(secrets)
    token = _bearer_token(bearer_conn_id)
    if token:
        kwargs["headers"] = {**(kwargs.get("headers") or {}), "Authorization": f"Bearer {token}"}
        secrets.append(token)
    with requests.Session() as session:
        session.headers["User-Agent"] = USER_AGENT
        return send(session, method, url, policy=policy, expect_json=expect_json, secrets=secrets,
                    conn_id=bearer_conn_id if token else None, **kwargs)


def get(url: str, *, expect_json: bool = True, policy: RetryPolicy = DEFAULT_POLICY, **kwargs: Any) -> Any:
    """GET a public URL: parsed JSON (or the response with expect_json=False); raises ProviderError."""
    return call("GET", url, policy=policy, expect_json=expect_json, **kwargs)


@dataclass(frozen=True)
class Answer:
    """How a URL answered a probe. `status`: the HTTP status it answered with, whatever it was
    (None: no answer at all); `reason` and `error`: the policy's classification and redacted
    message when the call failed (a 4xx or 5xx included), else None."""

    status: int | None
    reason: str | None = None
    error: str | None = None


def probe(method: str, url: str, *, policy: RetryPolicy = DEFAULT_POLICY, **kwargs: Any) -> Answer:
    """Whether and how a URL answers (call()'s arguments); never raises for a failed call."""
    try:
        return Answer(call(method, url, policy=policy, **kwargs).status_code)
    except ProviderError as exc:
        return Answer(exc.status, exc.reason, str(exc))


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


def by_deadline(call: Callable[[], T], deadline: float, what: str) -> T:
    """call()'s value, or its exception, if it ends by `deadline` (a time.monotonic() value). A read
    timeout bounds each read, not the whole, and headers sent a byte at a time would never end:
    the call runs in a daemon thread, left behind (it dies with the task) at the deadline, when
    ProviderError(TIMEOUT) is raised."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name=f"by-deadline {what}"[:60], daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if worker.is_alive():
        raise ProviderError(TIMEOUT, f"{what}: no answer by the deadline")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def read_limited(response: Any, limit: int, *, deadline: float | None = None, what: str = "the body",
                 ) -> tuple[bytes, bool]:
    """(at most `limit` bytes of a streamed response's body, decoded; whether it had more), read
    chunk by chunk as it arrives, so a body that drips is stopped at `deadline` (a
    time.monotonic() value) with ProviderError(TIMEOUT). The response is closed either way."""
    from urllib3.exceptions import HTTPError

    body = bytearray()
    try:
        while len(body) <= limit:   # one byte past the limit says there is more
            if deadline is not None and time.monotonic() >= deadline:
                raise ProviderError(TIMEOUT, f"{what}: still arriving at the deadline ({len(body):,} bytes read)")
            try:
                chunk = response.raw.read1(min(1024 * 1024, limit + 1 - len(body)), decode_content=True)
            except (OSError, HTTPError) as exc:   # a read timeout, a reset, a broken gzip stream
                reason, text = classify_exception(exc)
                raise ProviderError(reason, f"{what}: {text} after {len(body):,} bytes") from None
            if not chunk:
                break
            body += chunk
    finally:
        response.close()
    more = len(body) > limit
    del body[limit:]
    return bytes(body), more
