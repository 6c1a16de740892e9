"""A hostile site for the uptime sweep (issue 8): answers that once crashed the sweep,
leaked secrets or fooled the body check.

`HostileApp` is a LocalServer app (whole answers); `RawServer` writes raw HTTP/1.1 on a
socket where an answer must pause mid-body or stream gigabytes (generated, never allocated).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import threading
import time
from typing import Any, Callable
from urllib.parse import quote, quote_plus

# The secrets an endpoint sends, and which the site echoes back.
USER = "monitor"
PASSWORD = "Pw/s3cr3t+Zq7"                # '/' and '+' differ when URL-encoded
API_KEY = "AK-9f8e7d6c5b4a"
HEADER_KEY = "XK-7c6b5a4d3e2f"
BEARER = "tok-b1e2a3r4e5r6"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
# Every form in which one of them could come back out.
# Prefixes too: a shown value is cut at 80 characters, which must not leave half a secret.
SECRET_FORMS = (PASSWORD, quote(PASSWORD, safe=""), PASSWORD[:6], API_KEY, HEADER_KEY, BEARER, BASIC,
                BASIC.rstrip("="), BASIC[:14])

# Issue 18, item 9: the same secrets as PHP, Go, .NET or a form post writes them back.
BEARER_HEADER = f"Bearer {BEARER}"        # a header value with a space: "+" in a form post
UNKNOWN_USERINFO_URL = "https://admin:0therPass99@db.example/x"             # redacted by shape alone
UNKNOWN_QUERY_URL = "https://api.example/v1?access_token=UNKNOWNTOKEN123&x=1"


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


ENCODINGS: dict[str, Callable[[str], str]] = {
    "php-json": lambda t: t.replace("/", "\\/"),                                # json_encode's default
    "json-u": lambda t: "".join(c if c.isalnum() else f"\\u{ord(c):04x}" for c in t),
    "json-U": lambda t: "".join(c if c.isalnum() else f"\\u{ord(c):04X}" for c in t),
    "percent-lower": lambda t: _lower_hex(quote(t, safe="")),                    # .NET's %2f
    "percent-upper": lambda t: quote(t, safe=""),
    "form-plus": lambda t: _lower_hex(quote_plus(t)),                            # space as "+"
}
# Every shape redact() knows: known secrets (a password with "/" and "+", an api_key query
# value, header values, base64 of user:password), URL user-info, key-like query values.
ECHOED_SHAPES = {"pw": PASSWORD, "key": API_KEY, "header": HEADER_KEY, "bearer": BEARER_HEADER,
                 "basic": f"Basic {BASIC}", "userinfo": UNKNOWN_USERINFO_URL, "query": UNKNOWN_QUERY_URL}
# A run of each secret that no encoding changes: finding one anywhere is a leak.
LEAK_MARKERS = ("s3cr3t", "9f8e7d6c5b4a", "7c6b5a4d3e2f", "b1e2a3r4e5r6", BASIC.rstrip("="), "0therPass99",
                "UNKNOWNTOKEN123")


def encoded_echo(encoding: str) -> str:
    """A JSON error page echoing every shape in one encoding; "error" (first, so within the 80
    characters a [BODY] condition shows) as PHP writes a plain password, or encoded."""
    encode = ENCODINGS[encoding]
    php = encoding == "php-json"
    fields = {"error": f"wrong password {PASSWORD if php else encode(PASSWORD)}",
              **{name: encode(value) for name, value in ECHOED_SHAPES.items()}}
    body = json.dumps(fields)
    return body.replace("/", "\\/") if php else body


CONTROL = "<!channel> <https://evil.example/login|https://status.example/>"
WELCOME_PAGE = "<h1>Welcome to the café</h1>"
DEEP_JSON = '{"x":' * 100_000 + "1" + "}" * 100_000


def secret_url(base: str, path: str = "/echo") -> str:
    """base ('http://127.0.0.1:port') with user:password@ and an api_key query value."""
    host = base.split("://", 1)[1]
    return f"http://{USER}:{quote(PASSWORD, safe='')}@{host}{path}?api_key={API_KEY}&region=eu"


class HostileApp:
    """LocalServer app: one hostile answer per path."""

    def __call__(self, request: Any) -> tuple[int, dict[str, str], bytes | str]:
        path = request.path.split("?", 1)[0]
        if path == "/charset":
            return 200, {"Content-Type": "text/html; charset=x-no-such-codec"}, WELCOME_PAGE.encode()
        if path == "/deep":
            return 200, {"Content-Type": "application/json"}, DEEP_JSON
        if path == "/echo":
            # An error page that echoes the request: the URL (user-info is in the Authorization
            # header by then), the api_key, the header values, the password URL-encoded and raw,
            # and Slack control sequences.
            echo = {
                "url": request.path, "auth": request.headers.get("Authorization", ""),
                "pw": quote(PASSWORD, safe=""), "raw": PASSWORD, "key": API_KEY,
                "header": request.headers.get("X-Api-Key", ""),
                # The password cut by the 80-character limit of a shown value.
                "long": "x" * 70 + PASSWORD,
                "note": CONTROL,
            }
            return 500, {"Content-Type": "application/json"}, json.dumps(echo)
        if path.startswith("/echo-encoded/"):
            return 500, {"Content-Type": "application/json"}, encoded_echo(path.rsplit("/", 1)[1])
        if path == "/healthy":
            return 200, {"Content-Type": "text/html; charset=utf-8"}, WELCOME_PAGE.encode()
        if path == "/api/health":
            return 200, {"Content-Type": "application/json"}, json.dumps({"status": "ok"})
        return 404, {"Content-Type": "text/plain"}, "not found"


def redirect_to(target: str) -> Callable[[Any], tuple[int, dict[str, str], str]]:
    """An origin that sends every request to `target` (another origin), except /own."""

    def app(request: Any) -> tuple[int, dict[str, str], str]:
        if request.path.startswith("/own"):
            return 200, {"Content-Type": "text/plain"}, "own origin"
        return 302, {"Location": target}, ""
    return app


class RawServer:
    """Raw HTTP/1.1 on 127.0.0.1:0, one thread per connection, `Connection: close`.

    handler(method, path, headers, sock) writes the whole answer; a client that goes away
    mid-answer (BrokenPipe, reset) ends that connection quietly.
    """

    def __init__(self, handler: Callable[[str, str, dict[str, str], socket.socket], None],
                 ssl_context: Any = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context          # an ssl.SSLContext (server side): HTTPS
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{self.port}"
        self._stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.ssl_context is not None:
                    conn = self.ssl_context.wrap_socket(conn, server_side=True)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                length = int(headers.get("Content-Length", 0))
                while len(rest) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    rest += chunk
                self.requests.append((method, path, headers))
                self.handler(method, path, headers, conn)
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError, ssl.SSLError):
                pass

    def __enter__(self) -> "RawServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stopped.set()
        self.sock.close()


def head(status: str, content_type: str, length: int) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n"
            "Connection: close\r\n\r\n").encode()


PAUSED_SIZE = 201 * 1024


def paused_page(sock: socket.socket, pause: float = 0.3) -> None:
    """A 201 KB page with "Welcome" near its end; the server pauses after the first 1 KB."""
    tail = b"<p>Welcome</p></body></html>"
    body = b"<html><body>" + b"a" * (PAUSED_SIZE - len(tail) - 12) + tail
    assert len(body) == PAUSED_SIZE
    sock.sendall(head("200 OK", "text/html; charset=utf-8", len(body)) + body[:1024])
    time.sleep(pause)
    sock.sendall(body[1024:])


HUGE_SIZE = 2 * 1024 ** 3          # 2 GB, generated chunk by chunk
_CHUNK = b"x" * (1024 * 1024)


def huge_answer(sock: socket.socket, size: int = HUGE_SIZE) -> None:
    """A `size`-byte answer streamed from one reused 1 MB chunk (never allocated whole)."""
    sock.sendall(head("200 OK", "text/html", size))
    view = memoryview(_CHUNK)
    sent = 0
    while sent < size:
        part = view[: min(len(_CHUNK), size - sent)]
        sock.sendall(part)
        sent += len(part)


def trickle(sock: socket.socket, seconds: float = 30.0) -> None:
    """An answer whose body never ends in time: 100 bytes every 0.1 s."""
    sock.sendall(head("200 OK", "text/html", 10 ** 9))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.sendall(b"y" * 100)
        time.sleep(0.1)


def drip(sock: socket.socket, interval: float = 2.0, seconds: float = 60.0) -> None:
    """A page whose body drips one byte every `interval` s (each read returns before any read
    timeout), for `seconds`, then ends short of its Content-Length."""
    sock.sendall(head("200 OK", "text/plain", 10 ** 6))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.sendall(b"[")
        time.sleep(interval)


def drip_headers(sock: socket.socket, interval: float = 2.0, seconds: float = 60.0) -> None:
    """A status line, then headers one byte every `interval` s, for `seconds`."""
    sock.sendall(b"HTTP/1.1 200 OK\r\n")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.sendall(b"X")
        time.sleep(interval)


def login_site(post_answer: Callable[[socket.socket], None]) -> Callable[[str, str, dict[str, str], socket.socket], None]:
    """GET: a small login form; POST: `post_answer` (a 2 GB stream, a trickle...)."""

    def handler(method: str, path: str, headers: dict[str, str], sock: socket.socket) -> None:
        if method == "POST":
            post_answer(sock)
            return
        if path.startswith("/paused"):
            paused_page(sock)
            return
        form = b"<form>username password</form>"
        sock.sendall(head("200 OK", "text/html", len(form)) + form)
    return handler
