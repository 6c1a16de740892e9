"""External uptime monitors: UptimeRobot API v3 and Pingdom API 3.1 (provider-apis.md 9)."""

from __future__ import annotations

from typing import Any

from maintenance.hooks.http import BearerAuth, PolicyHttpHook

MAX_PAGES = 50   # a runaway nextLink loop must end


class UptimeRobotHook(PolicyHttpHook):
    default_conn_name = "uptimerobot_api"
    default_host = "https://api.uptimerobot.com"
    auth_class = BearerAuth

    def monitors(self) -> list[dict[str, Any]]:
        """Every monitor, following `nextLink` (absolute or relative) page by page."""
        found: list[dict[str, Any]] = []
        link: str | None = "/v3/monitors?limit=200"
        for _ in range(MAX_PAGES):
            if not link:
                break
            page = self.get_json(link)
            found.extend(page.get("data") or [])
            link = page.get("nextLink")
        return found


class PingdomHook(PolicyHttpHook):
    default_conn_name = "pingdom_api"
    default_host = "https://api.pingdom.com"
    auth_class = BearerAuth

    def checks(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        offset, limit = 0, 1000
        for _ in range(MAX_PAGES):
            page = self.get_json("/api/3.1/checks", params={"limit": limit, "offset": offset})
            batch = page.get("checks") or []
            found.extend(batch)
            if len(batch) < limit:
                break
            offset += limit
        return found
