"""Local HTTP(S) servers that stand in for the site and the providers in tests.

`LocalServer(app)` serves app(request) -> (status, headers, body) on 127.0.0.1 in a thread;
every request is recorded. `SlackReceiver` speaks Slack's incoming-webhook API: it answers
"ok" (or a programmed error) and keeps the JSON payloads it accepted.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


Reply = tuple[int, dict[str, str], bytes | str]


class LocalServer:
    def __init__(self, app: Callable[[Request], Reply], ssl_context: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.requests: list[Request] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out as two writes: without TCP_NODELAY the body waits for the
            # client's delayed ACK (~40 ms a request on Linux), which no real server adds
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                server.requests.append(request)
                try:
                    status, headers, body = server.app(request)
                except ConnectionAbortedError:
                    self.close_connection = True
                    return
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if ssl_context else "http"
        self.port = self.httpd.server_address[1]
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "LocalServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ServedApp:
    """A provider fake that is its own request handler on a LocalServer (set `self.server =
    LocalServer(self)` in __init__): `with Fake() as fake: fake.url`."""

    server: LocalServer

    def __enter__(self):
        self.server.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self.server.url


def basic_credentials(request: Request) -> tuple[str, str]:
    """(user, password) of a Basic Authorization header; ("", "") when it is missing or garbled."""
    header = request.headers.get("Authorization", "")
    try:
        user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
    except ValueError:
        return "", ""
    return user, password


def json_reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(data)


@dataclass
class SlackReceiver:
    """Slack's incoming webhook: POST JSON, answer 'ok'; `failures` programs errors first."""

    failures: list[int] = field(default_factory=list)   # statuses to answer before accepting
    messages: list[dict[str, Any]] = field(default_factory=list)
    server: LocalServer | None = None

    def __call__(self, request: Request) -> Reply:
        if self.failures:
            status = self.failures.pop(0)
            return status, {"Content-Type": "text/plain"}, "service_unavailable" if status >= 500 else "invalid_payload"
        self.messages.append(request.json())
        return 200, {"Content-Type": "text/plain"}, "ok"

    def __enter__(self) -> "SlackReceiver":
        self.server = LocalServer(self).__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self.server is not None
        self.server.__exit__(*exc)

    @property
    def webhook_url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/services/T000/B000/XXXXSECRETXXXX"

    def connection_json(self) -> str:
        return json.dumps({"conn_type": "slackwebhook", "password": self.webhook_url})


# A host name that cannot resolve, and fails at once on any machine, resolver or none: at 309
# characters it is longer than DNS allows (RFC 1035: 255 octets), so the system resolver gives
# up (EAI_NONAME) before sending a query. A short name such as no-such-host.invalid is asked of
# the configured nameserver, and where that one does not answer the check reports `timeout`.
UNRESOLVABLE_HOST = ".".join(["no-such-host-" + "x" * 47] * 5) + ".invalid"
assert len(UNRESOLVABLE_HOST) > 255 and all(len(label) <= 63 for label in UNRESOLVABLE_HOST.split("."))


def free_port() -> int:
    """A port nothing listens on (for 'connection refused')."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's AWS APIs (S3 in these tests) over HTTP on a port the OS picks; yields the endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
