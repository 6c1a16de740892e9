"""The site as a scanner sees it: response headers, raw Set-Cookie values, the http:// redirect
chain, CORS with a foreign Origin, sensitive paths (bounded reads), and its TLS handshake.

HTTP goes through PublicApiHook (the one HTTP policy); TLS is a plain ssl handshake. Every
answer is streamed: headers are read, bodies only where needed and only to the uptime sweep's
body limit; and one site's scan has a deadline (SITE_DEADLINE), so a site that answers a byte
every few seconds, or sends gigabytes, never holds the monthly task.
"""

from __future__ import annotations

import socket
import ssl
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin, urlsplit

from maintenance.hooks.http_policy import TIMEOUT, ProviderError, RetryPolicy, classify_exception
from maintenance.hooks.public import PublicApiHook, by_deadline, read_limited

SITE_POLICY = RetryPolicy(timeout=10, attempts=2, backoff_base=0.5)
SITE_DEADLINE = 120.0           # seconds for everything one site's scan asks (pages, redirects, CORS, paths)
PROBE_BYTES = 65536             # what judge_exposed reads of a probed path
FOREIGN_ORIGIN = "https://cors-probe.invalid"
MAX_HOPS = 5


class SiteHook(PublicApiHook):
    def __init__(self, url: str, *, ca_file: str | None = None, user_agent: str = "maintenance-security-scan/1.0",
                 policy: RetryPolicy = SITE_POLICY, deadline: float = SITE_DEADLINE,
                 body_limit: int = PROBE_BYTES) -> None:
        super().__init__(None, base_url=url, policy=policy)
        self.url, self.verify = url, ca_file or True
        self.user_agent = user_agent
        self.seconds, self.deadline = deadline, time.monotonic() + deadline
        self.body_limit = body_limit

    def remaining(self) -> float:
        """Seconds left of this site's deadline; ProviderError(TIMEOUT) once it has passed."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ProviderError(TIMEOUT, f"{self.url}: the scan's deadline of {self.seconds:g} s passed")
        return left

    def _get(self, url: str, **kwargs: Any) -> Any:
        """The streamed response (headers read, body not), by the site's deadline."""
        headers = {"User-Agent": self.user_agent, **kwargs.pop("headers", {})}
        timeout = min(self.policy.timeout, self.remaining())
        try:
            return by_deadline(lambda: self.request("GET", url, expect_json=False, verify=self.verify, headers=headers,
                                                    stream=True, timeout=timeout, **kwargs),
                               self.deadline, f"GET {url}")
        except ProviderError as exc:
            if exc.reason == TIMEOUT and time.monotonic() >= self.deadline:
                self.deadline = 0.0   # the session is the abandoned request's now: nothing more is asked
                raise ProviderError(TIMEOUT, f"{self.url}: the scan's deadline of {self.seconds:g} s passed "
                                             f"waiting for the answer to GET {url}") from None
            raise

    def _headers(self, url: str, **kwargs: Any) -> Any:
        """A response whose headers are all that is used: its body is never read."""
        response = self._get(url, **kwargs)
        response.close()
        return response

    def page(self) -> dict[str, Any]:
        """Headers (lower-case) and raw Set-Cookie values of the site's final HTTPS answer."""
        response = self._headers(self.url, allow_redirects=True)
        cookies = list(response.raw.headers.getlist("Set-Cookie")) if hasattr(response.raw, "headers") else []
        return {"url": response.url, "headers": {k.lower(): v for k, v in response.headers.items()},
                "cookies": cookies}

    def cors_reflected(self) -> bool:
        response = self._headers(self.url, headers={"Origin": FOREIGN_ORIGIN})
        return (response.headers.get("Access-Control-Allow-Origin") == FOREIGN_ORIGIN
                and response.headers.get("Access-Control-Allow-Credentials", "").lower() == "true")

    def http_redirects(self, http_url: str) -> tuple[list[str] | None, int | None]:
        """The Location chain from the http:// URL (None when nothing answers on http)."""
        from maintenance.hooks.http_policy import ProviderError

        chain: list[str] = []
        url, first = http_url, None
        for _ in range(MAX_HOPS):
            try:
                response = self._headers(url, allow_redirects=False)
            except ProviderError as exc:
                if not chain and exc.reason in ("refused", "timeout", "dns"):
                    return None, None
                raise
            first = first or response.status_code
            location = response.headers.get("Location")
            if response.status_code not in (301, 302, 303, 307, 308) or not location:
                break
            url = urljoin(url, location)
            chain.append(url)
            if urlsplit(url).scheme == "https":
                break
        return chain, first

    def probe(self, path: str) -> tuple[int, str, bytes]:
        """(status, content type, the body's first bytes up to the body limit) of a path; redirects
        not followed."""
        response = self._get(urljoin(self.url, path), allow_redirects=False)
        if response.status_code != 200:
            response.close()
            return response.status_code, response.headers.get("Content-Type", ""), b""
        body, _ = read_limited(response, min(PROBE_BYTES, self.body_limit), deadline=self.deadline,
                               what=f"GET {urljoin(self.url, path)}")
        return response.status_code, response.headers.get("Content-Type", ""), body


def probe_tls(url: str, *, ca_file: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """days_left, chain_ok/chain_error, negotiated version, and the legacy versions (TLS 1.0/1.1) offered."""
    from cryptography import x509

    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    facts: dict[str, Any] = {"host": host, "port": port, "chain_ok": True, "chain_error": None, "legacy": []}

    def handshake(context: ssl.SSLContext) -> tuple[bytes | None, str | None]:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=host) as tls:
                return tls.getpeercert(binary_form=True), tls.version()

    try:
        try:
            der, facts["version"] = handshake(ssl.create_default_context(cafile=ca_file))
        except ssl.SSLCertVerificationError as exc:
            facts.update(chain_ok=False, chain_error=exc.verify_message or str(exc))
            loose = ssl.create_default_context()
            loose.check_hostname, loose.verify_mode = False, ssl.CERT_NONE
            der, facts["version"] = handshake(loose)
    except (OSError, ssl.SSLError) as exc:
        reason, text = classify_exception(exc)
        return {**facts, "error": text, "reason": reason}
    if der:
        not_after = x509.load_der_x509_certificate(der).not_valid_after_utc
        facts["not_after"] = not_after.isoformat()
        facts["days_left"] = (not_after - datetime.now(timezone.utc)).total_seconds() / 86400
    for name, version in (("TLSv1", ssl.TLSVersion.TLSv1), ("TLSv1.1", ssl.TLSVersion.TLSv1_1)):
        legacy = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        legacy.check_hostname, legacy.verify_mode = False, ssl.CERT_NONE
        try:
            legacy.set_ciphers("DEFAULT:@SECLEVEL=0")
            legacy.minimum_version = legacy.maximum_version = version
            handshake(legacy)
        except (OSError, ssl.SSLError, ValueError):
            continue
        facts["legacy"].append(name)
    return facts
