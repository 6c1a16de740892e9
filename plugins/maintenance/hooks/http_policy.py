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
import math
import random
import re
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import timezone
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


# How a character may come back besides as is: percent-encoded (either case of hex, "+" for a
# space: .NET writes %2f) or JSON-escaped ("\/" as PHP writes it, "\u002f"; escaped again when
# JSON is quoted inside JSON). redact() matches secrets and URL structure in all of these.
_QUERY_START = r"(?:[?&]|\\+u003f|\\+u0026|%3f|%26)"
_EQUALS = r"(?:=|\\+u003d|%3d)"
_SECRET_QUERY = re.compile(rf"(?i)({_QUERY_START}[^=&\s]*?(?:key|token|secret|password|passwd|sig|signature|auth)"
                           rf"[^=&\s]*?{_EQUALS})[^&\s]+")
# URL user-info, in each way a whole URL may be written: as is (where %2F inside the password
# is no separator), PHP's "\/", JSON's "\u002f", percent-encoded as a query value.
# Each with what the lower-cased text must contain for it to be worth running.
_USERINFO = tuple(
    (marker, re.compile(rf"(?i)(\b[a-z][a-z0-9+.-]*{colon}{slash}{slash})(?:(?!{slash}|{at})\S)+({at})"))
    for marker, colon, slash, at in (("://", ":", "/", "@"), (":\\", ":", r"\\+/", "@"),
                                     ("u003a", r"\\+u003a", r"\\+u002f", r"\\+u0040"), ("%3a", "%3a", "%2f", "%40")))


@functools.lru_cache(maxsize=256)
def secret_forms(secrets: tuple[str, ...]) -> tuple[str, ...]:
    """Each secret as it may come back in a body or a log: as is, URL-encoded, base64.

    A secret that travels as "user:password" (HTTP Basic, URL user-info) must be given as
    that pair too, so its base64 form ("Basic dXNlcjpwYXNz") is found. redact() also finds
    each of these percent-encoded in either case and JSON-escaped (_any_encoding).
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


def _hex(value: int, digits: int) -> str:
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in f"{value:0{digits}x}")


@functools.lru_cache(maxsize=4096)
def _any_encoding(char: str) -> str:
    """A regex matching one character as is, percent-encoded or JSON-escaped."""
    if char.isascii() and char.isalnum():
        return char   # no encoder escapes letters or digits: they anchor the search (_secret_anchors)
    options = [re.escape(char), "".join("%" + _hex(byte, 2) for byte in char.encode())]
    units = char.encode("utf-16-be")
    options.append("".join(r"\\+u" + _hex(int.from_bytes(units[i:i + 2], "big"), 4) for i in range(0, len(units), 2)))
    if char == " ":
        options.append(r"\+")
    if char in '/"\\':
        options.append(r"\\+" + re.escape(char))
    return "(?:" + "|".join(options) + ")"


@functools.lru_cache(maxsize=256)
def _secret_anchors(secrets: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(anchor, form) per form of these secrets, longest form first. The anchor is the form's
    longest run of letters and digits, which no encoding changes: a form's pattern is only
    built and run when its anchor is in the text, so a long secret (a private key) costs
    nothing in the usual message that does not contain it."""
    return tuple((max(re.findall(r"[A-Za-z0-9]+", form), key=len, default=""), form)
                 for form in secret_forms(secrets))


@functools.lru_cache(maxsize=1024)
def _form_pattern(form: str) -> re.Pattern[str]:
    """One form in every encoding (_any_encoding per character)."""
    return re.compile("".join(_any_encoding(c) for c in form))


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove credentials from a message: known secrets (in their encoded forms too), URL
    user-info, key-like query values; each also percent-encoded in either case or JSON-escaped."""
    for anchor, form in _secret_anchors(tuple(s for s in secrets if s)):
        if anchor in text:
            text = _form_pattern(form).sub("***", text)
    lowered = text.lower()
    for marker, userinfo in _USERINFO:
        if marker in lowered:
            text = userinfo.sub(r"\1***\2", text)
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


RETRY_AFTER_MAX = 86400.0   # a Retry-After past a day is read as a day; callers cap it lower still


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After in seconds, from either of its two forms (delta-seconds or HTTP date),
    bounded to [0, RETRY_AFTER_MAX]. None when absent or unusable (not a number or a date,
    negative, inf, NaN): the caller then backs off by its own default."""
    if not value:
        return None
    try:
        seconds = float(value)                       # delta-seconds (a decimal point tolerated)
    except ValueError:
        pass
    else:
        return min(seconds, RETRY_AFTER_MAX) if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:                     # "-0000": UTC, says RFC 5322
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX) if math.isfinite(seconds) else None


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
        # Cloudflare's v4 envelope: errors[] of {code, message}
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict) and e.get("message")] \
            if isinstance(body.get("errors"), list) else []
        if errors:
            text = "; ".join(f"{e['message']}" + (f" (code {e['code']})" if e.get("code") is not None else "")
                             for e in errors[:3])
            return ": " + redact(text[:4096], secrets)[:160]
    return ""

