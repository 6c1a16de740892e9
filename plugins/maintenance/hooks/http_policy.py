"""The one HTTP policy: timeouts, retries with backoff and jitter, error classification.

Every hook that speaks HTTP goes through `send()` (requests) or, for the concurrent uptime
sweep, uses `classify_exception()` / `RetryPolicy` with aiohttp. Failures become a
ProviderError whose `reason` is one of REASONS and whose message never carries a secret.

Retried: timeouts, refused or reset connections, DNS hiccups, 5xx, 429 (Retry-After honoured,
bounded). Not retried: 401/403 (a credential is wrong; retrying only locks accounts), other 4xx,
TLS errors and malformed responses.
"""

from __future__ import annotations

import base64
import errno
import functools
import logging
import random
import re
import socket
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterable
from urllib.parse import quote, quote_plus

log = logging.getLogger(__name__)

TIMEOUT, REFUSED, DNS, TLS = "timeout", "refused", "dns", "tls"
HTTP_5XX, RATE_LIMITED, UNAUTHORIZED, HTTP_4XX = "http_5xx", "rate_limited", "unauthorized", "http_4xx"
MALFORMED, CONNECTION = "malformed_response", "connection_error"
INTERNAL = "internal_error"   # our own code failed on this input: a bug to report, never a crash of the rest
REASONS = (TIMEOUT, REFUSED, DNS, TLS, HTTP_5XX, RATE_LIMITED, UNAUTHORIZED, HTTP_4XX, MALFORMED, CONNECTION, INTERNAL)
RETRYABLE = {TIMEOUT, REFUSED, DNS, CONNECTION, HTTP_5XX, RATE_LIMITED}


@dataclass(frozen=True)
class RetryPolicy:
    timeout: float = 10.0          # seconds per request (connect and read)
    attempts: int = 3              # total tries, the first included
    backoff_base: float = 0.5      # first back-off; doubles each try
    backoff_max: float = 8.0
    retry_after_max: float = 30.0  # a Retry-After larger than this is capped
    jitter: float = 0.25           # +/- fraction of random spread, so callers don't stampede

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number `attempt` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max)
        base = min(self.backoff_base * (2 ** (attempt - 1)), self.backoff_max)
        return max(0.0, base * (1 + random.uniform(-self.jitter, self.jitter)))


DEFAULT_POLICY = RetryPolicy()


class ProviderError(Exception):
    """A classified failure of a provider call. `str()` is safe to log and to post."""

    def __init__(self, reason: str, message: str, *, status: int | None = None,
                 conn_id: str | None = None, attempts: int = 1) -> None:
        self.reason, self.status, self.conn_id, self.attempts = reason, status, conn_id, attempts
        if reason == UNAUTHORIZED and conn_id:
            message += f" (check the credentials of connection '{conn_id}')"
        super().__init__(message)

    @property
    def retryable(self) -> bool:
        return self.reason in RETRYABLE


_SECRET_QUERY = re.compile(r"(?i)([?&][^=&\s]*(?:key|token|secret|password|passwd|sig|signature|auth)[^=&\s]*=)[^&\s]+")
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/@\s]+@")


@functools.lru_cache(maxsize=256)
def secret_forms(secrets: tuple[str, ...]) -> tuple[str, ...]:
    """Each secret as it may come back in a body or a log: as is, URL-encoded, base64.

    A secret that travels as "user:password" (HTTP Basic, URL user-info) must be given as
    that pair too, so its base64 form ("Basic dXNlcjpwYXNz") is found.
    """
    forms: set[str] = set()
    for secret in secrets:
        if not secret or len(secret) < 3:
            continue
        encoded = base64.b64encode(secret.encode()).decode()
        forms.update({secret, quote(secret, safe=""), quote_plus(secret), encoded, encoded.rstrip("="),
                      base64.urlsafe_b64encode(secret.encode()).decode().rstrip("=")})
    # Longest first, so a secret is never half-replaced by a shorter one it contains.
    return tuple(sorted((f for f in forms if len(f) >= 3), key=len, reverse=True))


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove credentials from a message: known secrets (in their encoded forms too), URL
    user-info, key-like query values."""
    for form in secret_forms(tuple(s for s in secrets if s)):
        if form in text:
            text = text.replace(form, "***")
    text = _USERINFO.sub(r"\1***@", text)
    return _SECRET_QUERY.sub(r"\1***", text)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything that caused it (requests, urllib3 and aiohttp wrap deeply)."""
    seen: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None),
                     getattr(item, "os_error", None), getattr(item, "certificate_error", None), *item.args])
    return seen


def classify_exception(exc: BaseException) -> tuple[str, str]:
    """(reason, short description) of a transport-level failure, for requests and aiohttp alike."""
    chain = _chain(exc)
    names = {type(e).__name__ for e in chain}
    if any(isinstance(e, ssl.SSLError) for e in chain) or names & {"SSLError", "ClientConnectorCertificateError",
                                                                   "ClientSSLError", "ClientConnectorSSLError"}:
        detail = next((e.verify_message for e in chain if getattr(e, "verify_message", None)), "handshake failed")
        detail = f"certificate verify failed: {detail}" if "certif" not in detail else detail
        return TLS, f"TLS error: {detail}"
    if any(isinstance(e, socket.gaierror) for e in chain) or names & {"NameResolutionError", "ClientConnectorDNSError"}:
        return DNS, "DNS lookup failed: host name does not resolve"
    if any(isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == errno.ECONNREFUSED for e in chain):
        return REFUSED, "connection refused"
    if any(isinstance(e, TimeoutError) for e in chain) or names & {
        "Timeout", "ConnectTimeout", "ReadTimeout", "ConnectTimeoutError", "ReadTimeoutError",
        "ServerTimeoutError", "ConnectionTimeoutError", "SocketTimeoutError",
    }:
        return TIMEOUT, "timed out"
    if any(isinstance(e, (ValueError,)) and "JSON" in type(e).__name__ for e in chain):
        return MALFORMED, "response is not valid JSON"
    return CONNECTION, f"connection failed ({type(exc).__name__})"


def classify_status(status: int) -> str | None:
    if status in (401, 403):
        return UNAUTHORIZED
    if status == 429:
        return RATE_LIMITED
    if status >= 500:
        return HTTP_5XX
    if status >= 400:
        return HTTP_4XX
    return None


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, from either of its two forms (delta-seconds or HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def send(session: Any, method: str, url: str, *, policy: RetryPolicy = DEFAULT_POLICY,
         conn_id: str | None = None, secrets: Iterable[str | None] = (), expect_json: bool = False,
         with_response: bool = False, recover: Callable[[ProviderError], Any] | None = None,
         sleep: Callable[[float], None] = time.sleep, **kwargs: Any) -> Any:
    """One logical HTTP call through a requests.Session, under the policy.

    Returns the response (or its parsed JSON with expect_json; (json, response) with
    with_response too, for callers that also need the headers, e.g. Link paging); raises
    ProviderError. A 2xx body that is not JSON is a MALFORMED ProviderError, never a bare
    ValueError.

    recover(error), for a call that is not idempotent (a POST that creates a job), runs after
    each retryable failure (timeout, 5xx, dropped connection: the server may have acted on it),
    after the back-off and before the next try or the final raise. It looks for what the failed
    try may have created: a value other than None ends the call with that value; raising stops
    the call. So a retry never creates a second job.
    """
    import requests  # a hook dependency; imported here to keep DAG parsing light

    secrets = [s for s in secrets if s]
    kwargs.setdefault("timeout", policy.timeout)
    safe_url = redact(url, secrets)
    last: ProviderError | None = None
    for attempt in range(1, policy.attempts + 1):
        retry_after = None
        try:
            response = session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            reason, text = classify_exception(exc)
            last = ProviderError(reason, f"{method} {safe_url}: {text}", conn_id=conn_id, attempts=attempt)
        else:
            reason = classify_status(response.status_code)
            if reason is None:
                if not expect_json:
                    return response
                try:
                    body = response.json()
                except (ValueError, RecursionError):   # not JSON, or nested too deep to parse
                    # Redacted, then cut: a secret cut in two would no longer be found.
                    snippet = redact(response.text[:4096], secrets)[:120].replace("\n", " ")
                    raise ProviderError(MALFORMED, f"{method} {safe_url}: response is not valid JSON: {snippet!r}",
                                        status=response.status_code, conn_id=conn_id, attempts=attempt) from None
                return (body, response) if with_response else body
            if reason in (RATE_LIMITED, HTTP_5XX):   # 503 may carry Retry-After too
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            last = ProviderError(reason, f"{method} {safe_url}: HTTP {response.status_code}{_detail(response, secrets)}",
                                 status=response.status_code, conn_id=conn_id, attempts=attempt)
        final = attempt == policy.attempts
        if not last.retryable or (final and recover is None):
            break
        wait = policy.delay(attempt, retry_after)
        if not final:
            log.info("%s (try %d of %d); retrying in %.1fs", last, attempt, policy.attempts, wait)
        sleep(wait)
        if recover is not None:
            found = recover(last)
            if found is not None:
                return found
        if final:
            break
    assert last is not None
    raise last


def _detail(response: Any, secrets: Iterable[str]) -> str:
    """A short, redacted reason phrase from an error body (JSON 'message'/'error'/'detail')."""
    try:
        body = response.json()
    except (ValueError, RecursionError):   # not JSON, or nested too deep to parse
        return ""
    if isinstance(body, dict):
        for key in ("message", "error", "detail", "errorMessage", "title"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if isinstance(value, str) and value:
                return ": " + redact(value[:4096], secrets)[:160]   # redacted, then cut
    return ""

