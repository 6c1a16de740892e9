"""Traffic analytics providers (provider-apis.md section 7), on PolicyHttpHook.

Plausible Stats API v2: connection `plausible_api` (http; host = https://plausible.io or a
self-hosted instance; password = the Stats API key, sent as Bearer).

GA4 Data API runReport: connection `ga4_api` (http; host = https://analyticsdata.googleapis.com;
password = the service account's JSON key, or extra.keyfile_dict; or extra.access_token for a
token made elsewhere). The key signs a JWT (RS256) that the key's token_uri exchanges for an
access token with scope analytics.readonly (Google's service-account flow).
"""

from __future__ import annotations

import json
import time
from typing import Any

from maintenance.hooks.http import BearerAuth, PolicyHttpHook
from maintenance.hooks.http_policy import MALFORMED, UNAUTHORIZED, ProviderError, send

GA4_SCOPE = "https://www.googleapis.com/auth/analytics.readonly"


class PlausibleHook(PolicyHttpHook):
    default_conn_name = "plausible_api"
    default_host = "https://plausible.io"
    auth_class = BearerAuth

    def query(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.request("POST", "/api/v2/query", json=body)
        if not isinstance(answer, dict) or not isinstance(answer.get("results"), list):
            raise ProviderError(MALFORMED, f"Plausible /api/v2/query: no 'results' list in the answer "
                                           f"(dimensions {body.get('dimensions', [])})", conn_id=self.http_conn_id)
        return answer


def _lifetime(expires_in: object) -> float:
    """A token's lifetime in seconds from the token endpoint's expires_in: 3600 (Google's) when it
    is missing or not a positive finite number ("3599" is read; "NaN", {} and -1 are not)."""
    try:
        seconds = float(expires_in)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return 3600.0
    return seconds if 0 < seconds < 10 ** 7 else 3600.0


class GA4Hook(PolicyHttpHook):
    default_conn_name = "ga4_api"
    default_host = "https://analyticsdata.googleapis.com"
    own_extras = ("access_token", "keyfile_dict")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._token: tuple[str, float] | None = None

    def _key(self) -> dict[str, Any] | None:
        connection = self.get_connection(self.http_conn_id)
        raw = connection.extra_dejson.get("keyfile_dict") or connection.password
        if not raw:
            return None
        try:
            key = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            raise ProviderError(UNAUTHORIZED, "the service account key is not valid JSON",
                                conn_id=self.http_conn_id) from None
        if not isinstance(key, dict) or not all(key.get(k) for k in ("client_email", "private_key", "token_uri")):
            raise ProviderError(UNAUTHORIZED, "the service account key lacks client_email, private_key or token_uri",
                                conn_id=self.http_conn_id)
        return key

    def access_token(self) -> str:
        if self._token and self._token[1] > time.time() + 60:
            return self._token[0]
        connection = self.get_connection(self.http_conn_id)
        given = connection.extra_dejson.get("access_token")
        if given:
            self._secrets.append(given)
            return given
        key = self._key()
        if key is None:
            raise ProviderError(UNAUTHORIZED, "no credentials: set the service account JSON key as the password",
                                conn_id=self.http_conn_id)
        import jwt

        now = int(time.time())
        self._secrets.append(key["private_key"])
        assertion = jwt.encode({"iss": key["client_email"], "scope": GA4_SCOPE, "aud": key["token_uri"],
                                "iat": now, "exp": now + 3600}, key["private_key"], algorithm="RS256",
                               headers={"kid": key.get("private_key_id", "")})
        import requests

        answer = send(requests.Session(), "POST", key["token_uri"], policy=self.policy, conn_id=self.http_conn_id,
                      secrets=[assertion, *self._secrets], expect_json=True,
                      data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion})
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not token or not isinstance(token, str):
            raise ProviderError(MALFORMED, "the token endpoint answered without an access_token",
                                conn_id=self.http_conn_id)
        self._secrets.append(token)
        self._token = (token, time.time() + _lifetime(answer.get("expires_in")))
        return token

    def run_report(self, property_id: str, body: dict[str, Any]) -> dict[str, Any]:
        session = self.session
        session.headers["Authorization"] = f"Bearer {self.access_token()}"
        answer = self.request("POST", f"/v1beta/properties/{property_id}:runReport", json=body)
        if not isinstance(answer, dict):
            raise ProviderError(MALFORMED, "GA4 runReport: the answer is not a JSON object", conn_id=self.http_conn_id)
        return answer
