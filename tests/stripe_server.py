"""Stripe for tests: localstripe (the stateful local Stripe, PyPI localstripe) in a thread on
127.0.0.1:0, behind a small front that adds what localstripe lacks (provider-apis.md section 3):
/v1/webhook_endpoints, events carrying pending_webhooks, the real balance shape (arrays), revoked
keys (401) and restricted keys (403, naming the permission). Everything else goes to localstripe.
Also Stripe's status page (/current, not Statuspage) and a local Daraja.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from servers import LocalServer, Reply, Request, ServedApp, basic_credentials, json_reply


class LocalStripe:
    """localstripe's aiohttp app, served in a thread (its store kept in memory, not in /tmp).

    localstripe's app is a module global bound to the first event loop that runs it, so one
    server serves the whole test process; entering it again clears its store.
    """

    _running: tuple[str, int] | None = None

    def __enter__(self) -> "LocalStripe":
        from localstripe import resources

        resources.store.dump_to_disk = lambda: None     # the CLI pickles every write to /tmp
        resources.store.clear()
        if LocalStripe._running is None:
            LocalStripe._running = self._start()
        self.url, self.port = LocalStripe._running
        return self

    @staticmethod
    def _start() -> tuple[str, int]:
        from aiohttp import web
        from localstripe import server

        loop = asyncio.new_event_loop()
        ready = threading.Event()
        where: dict[str, int] = {}

        async def start() -> None:
            runner = web.AppRunner(server.app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            where["port"] = site._server.sockets[0].getsockname()[1]
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(start())
            loop.run_forever()

        threading.Thread(target=run, daemon=True, name="localstripe").start()
        if not ready.wait(10):
            raise RuntimeError("localstripe did not start")
        return f"http://127.0.0.1:{where['port']}", where["port"]

    def __exit__(self, *exc: Any) -> None:
        pass                                            # the daemon thread ends with the process


def stripe_error(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None) -> Reply:
    return json_reply({"error": {"type": kind, "code": code, "message": message}}, status)


class StripeFront(ServedApp):
    KEY = "sk_test_runbookKEY123456"

    def __init__(self, local: LocalStripe) -> None:
        self.local = local
        self.revoked: set[str] = set()
        self.restricted: dict[str, set[str]] = {}          # key -> allowed path prefixes
        self.webhook_endpoints: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.server = LocalServer(self)

    def connection_json(self, key: str | None = None) -> str:
        return json.dumps({"conn_type": "http", "host": self.url, "password": key or self.KEY})

    def healthy(self, site: str = "https://test.example") -> None:
        now = int(time.time())
        self.webhook_endpoints = [{"id": "we_1", "object": "webhook_endpoint", "url": f"{site}/api/stripe/webhook",
                                   "status": "enabled", "enabled_events": ["*"], "livemode": False}]
        self.events = [{"id": f"evt_{i}", "object": "event", "type": "payment_intent.succeeded", "created": now - 600 * i,
                        "livemode": False, "pending_webhooks": 0, "data": {"object": {}}} for i in range(1, 6)]

    def _key(self, request: Request) -> str:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return header[7:]
        if header.startswith("Basic "):
            return base64.b64decode(header[6:]).decode().split(":")[0]
        return ""

    def __call__(self, request: Request) -> Reply:
        parts = urlsplit(request.path)
        path, query = parts.path, parse_qs(parts.query)
        key = self._key(request)
        if key in self.revoked:
            return stripe_error(401, f"Expired API Key provided: {key[:8]}*********{key[-4:]}", code="api_key_expired")
        if key in self.restricted and not any(path.startswith(p) for p in self.restricted[key]):
            resource = path.split("/")[2] if path.count("/") >= 2 else "?"
            return stripe_error(403, f"The provided key '{key[:8]}***' does not have the required permissions for "
                                     f"this endpoint on account 'acct_1Test'. Having the 'rak_{resource}_read' "
                                     "permission would allow this request to continue.")
        if not key.startswith(("sk_", "rk_")):
            return stripe_error(401, "Invalid API Key provided")
        if path == "/v1/balance":
            return json_reply({"object": "balance", "livemode": "_live_" in key,
                               "available": [{"amount": 1200, "currency": "usd", "source_types": {"card": 1200}}],
                               "pending": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}]})
        if path == "/v1/webhook_endpoints":
            return self._list(path, self.webhook_endpoints, query)
        if path == "/v1/events":
            gte = int(query.get("created[gte]", ["0"])[0])
            return self._list(path, [e for e in self.events if e["created"] >= gte], query)
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        if key.startswith("rk_"):
            headers["Authorization"] = "Bearer sk_test_forwarded"
        response = requests.request(request.method, self.local.url + request.path, headers=headers,
                                    data=request.body, timeout=10)
        return response.status_code, {"Content-Type": response.headers.get("Content-Type", "application/json")}, \
            response.content

    @staticmethod
    def _list(path: str, items: list[dict[str, Any]], query: dict[str, list[str]]) -> Reply:
        limit = int(query.get("limit", ["10"])[0])
        after = query.get("starting_after", [None])[0]
        start = next((i + 1 for i, item in enumerate(items) if item["id"] == after), 0) if after else 0
        chunk = items[start:start + limit]
        return json_reply({"object": "list", "url": path, "has_more": start + limit < len(items), "data": chunk})


def stripe_status(large: str = "up", **statuses: str) -> dict[str, Any]:
    base = {k: "up" for k in ("api", "dashboard", "stripejs", "checkoutjs", "webhooks", "emails")}
    return {"largestatus": large, "message": "All systems operational" if large == "up" else "Degraded",
            "time": "2026-11-30T10:00:00Z", "statuses": {**base, **statuses}}


class Daraja(ServedApp):
    """Daraja: OAuth (Basic consumer key:secret), STK push query with programmed results."""

    def __init__(self, key: str = "consumer-key", secret: str = "consumer-SECRET") -> None:
        self.key, self.secret = key, secret
        self.tokens: set[str] = set()
        self.stk: dict[str, Any] = {}        # CheckoutRequestID -> ResultCode, or "pending"
        self.server = LocalServer(self)

    def connection_json(self, secret: str | None = None, passkey: str = "bfb279f9aa9bdbcf158e97dd71a467cd") -> str:
        return json.dumps({"conn_type": "http", "host": self.server.url, "login": self.key,
                           "password": secret or self.secret, "extra": {"passkey": passkey}})

    def __call__(self, request: Request) -> Reply:
        path = urlsplit(request.path).path
        header = request.headers.get("Authorization", "")
        if path == "/oauth/v1/generate":
            if basic_credentials(request) != (self.key, self.secret):
                return json_reply({"requestId": "r1", "errorCode": "400.008.01",
                                   "errorMessage": "Invalid Authentication passed"}, 400)
            token = f"tok{len(self.tokens)}"
            self.tokens.add(token)
            return json_reply({"access_token": token, "expires_in": "3599"})
        if header.removeprefix("Bearer ") not in self.tokens:
            return json_reply({"requestId": "r2", "errorCode": "404.001.03", "errorMessage": "Invalid Access Token"}, 404)
        if path == "/mpesa/stkpushquery/v1/query":
            body = request.json()
            state = self.stk.get(body.get("CheckoutRequestID"))
            if state == "pending":
                return json_reply({"requestId": "r3", "errorCode": "500.001.1001",
                                   "errorMessage": "The transaction is being processed"}, 500)
            if state is None:
                return json_reply({"requestId": "r4", "errorCode": "400.002.02",
                                   "errorMessage": "Bad Request - Invalid CheckoutRequestID"}, 400)
            return json_reply({"ResponseCode": "0", "ResponseDescription": "The service request has been accepted successsfully",
                               "MerchantRequestID": "m1", "CheckoutRequestID": body["CheckoutRequestID"],
                               "ResultCode": str(state), "ResultDesc": "result"})
        return json_reply({"errorMessage": "not found"}, 404)
