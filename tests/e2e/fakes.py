"""The outside world of the e2e test: the site, Slack and the heartbeat endpoint, as local servers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from servers import Reply, Request, SlackReceiver


class Site:
    """The monitored site. `modes[path]`: "ok", "fail" (HTTP 500) or a number of seconds to
    answer slowly, once (then "ok"): a slow answer keeps the uptime task running."""

    def __init__(self) -> None:
        self.modes: dict[str, Any] = {}
        self.answers: list[tuple[float, str, int]] = []    # (time answered, path, status)
        self.slow_request = threading.Event()               # set when a slow answer starts

    def set(self, **modes: Any) -> None:
        """set(home="ok", api="fail") for the paths / and /api/health."""
        paths = {"home": "/", "api": "/api/health"}
        self.modes.update({paths[name]: mode for name, mode in modes.items()})
        self.slow_request.clear()

    def __call__(self, request: Request) -> Reply:
        mode = self.modes.get(request.path, "ok")
        if isinstance(mode, (int, float)):
            self.modes[request.path] = "ok"
            self.slow_request.set()
            time.sleep(mode)
        status = 500 if mode == "fail" else 200
        self.answers.append((time.time(), request.path, status))
        return status, {"Content-Type": "text/html"}, "<h1>Welcome</h1>" if status == 200 else "internal error"

    def failures(self, path: str) -> list[float]:
        return [t for t, p, status in self.answers if p == path and status >= 500]


@dataclass
class Slack(SlackReceiver):
    """SlackReceiver that can be down (HTTP 503 to everything) and notes when each message arrived."""

    down: bool = False
    refused: int = 0
    arrived: list[float] = field(default_factory=list)

    def __call__(self, request: Request) -> Reply:
        if self.down:
            self.refused += 1
            return 503, {"Content-Type": "text/plain"}, "service_unavailable"
        reply = super().__call__(request)
        if reply[0] == 200:
            self.arrived.append(time.time())
        return reply

    def texts(self, since: int = 0) -> list[str]:
        """The messages' texts from index `since` on (a test passes len(messages) at its start)."""
        return [m["text"] for m in self.messages[since:]]

    def count(self, needle: str, since: int = 0) -> int:
        return sum(text.count(needle) for text in self.texts(since))
