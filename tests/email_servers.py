"""Local Mailgun and SendGrid APIs in their shapes (provider-apis.md section 5)."""

from __future__ import annotations

import json
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from servers import LocalServer, Reply, Request, ServedApp, basic_credentials, json_reply


# POST /v1/analytics/metrics as the Mailgun API reference has it (request fields and their enums;
# the answer's shape as the official SDKs read it: items[], aggregates.metrics, pagination).
METRIC_NAMES = {
    "accepted_incoming_count", "accepted_outgoing_count", "accepted_count", "delivered_smtp_count",
    "delivered_http_count", "delivered_optimized_count", "delivered_count", "stored_count", "processed_count",
    "sent_count", "opened_count", "clicked_count", "unique_opened_count", "unique_clicked_count",
    "unsubscribed_count", "complained_count", "failed_count", "temporary_failed_count", "permanent_failed_count",
    "esp_block_count", "webhook_count", "permanent_failed_optimized_count", "permanent_failed_old_count",
    "bounced_count", "hard_bounces_count", "soft_bounces_count", "delayed_bounce_count", "suppressed_bounces_count",
    "suppressed_unsubscribed_count", "suppressed_complaints_count", "delivered_first_attempt_count",
    "delayed_first_attempt_count", "delivered_subsequent_count", "delivered_two_plus_attempts_count",
    "rate_limit_count", "delivered_rate", "opened_rate", "clicked_rate", "unique_opened_rate",
    "unique_clicked_rate", "unsubscribed_rate", "complained_rate", "bounce_rate", "fail_rate",
    "permanent_fail_rate", "temporary_fail_rate", "delayed_rate"}
METRIC_DIMENSIONS = {"bot", "country", "ip_pool", "recipient_domain", "recipient_provider", "ip", "domain", "tag",
                     "device", "subaccount", "time"}
METRIC_FIELDS = {"start", "end", "resolution", "duration", "dimensions", "metrics", "filter", "include_subaccounts",
                 "include_aggregates"}


class Mailgun(ServedApp):
    KEY = "key-mailgun-SECRET-0001"

    def __init__(self, domain: str = "mg.test.example") -> None:
        self.domain_name = domain
        self.healthy()
        self.server = LocalServer(self)

    def healthy(self) -> None:
        self.metrics_api = True          # False: an account the Metrics API refuses (403): stats is the fallback
        self.metric_queries: list[dict] = []
        self.stats_queries = 0
        self.state = "active"
        self.records = [{"record_type": "TXT", "name": self.domain_name, "valid": "valid", "value": "v=spf1 include:mailgun.org ~all"},
                        {"record_type": "TXT", "name": f"k1._domainkey.{self.domain_name}", "valid": "valid", "value": "k=rsa; p=MIGf"},
                        {"record_type": "CNAME", "name": f"email.{self.domain_name}", "valid": "valid", "value": "mailgun.org"}]
        self.sent, self.delivered, self.bounced, self.complained = 1000, 985, 10, 0
        now = datetime.now(timezone.utc)
        self.bounce_items = [{"address": f"user{i}@example.net", "code": "550", "error": "5.1.1 unknown user",
                              "created_at": format_datetime(now - timedelta(hours=i))} for i in range(3)]

    def connection_json(self, key: str | None = None) -> str:
        return json.dumps({"conn_type": "http", "host": self.server.url, "password": key or self.KEY})

    def __call__(self, request: Request) -> Reply:
        if basic_credentials(request) != ("api", self.KEY):
            return 401, {"Content-Type": "text/plain"}, "Forbidden"
        path = urlsplit(request.path).path
        if path == f"/v4/domains/{self.domain_name}":
            return json_reply({"domain": {"name": self.domain_name, "state": self.state, "type": "custom"},
                               "receiving_dns_records": [], "sending_dns_records": self.records})
        if path.startswith("/v4/domains/"):
            return json_reply({"message": "Domain not found"}, 404)
        if path == "/v1/analytics/metrics" and request.method == "POST":
            return self._metrics(request.json())
        if path == f"/v3/{self.domain_name}/stats/total":
            self.stats_queries += 1
            failed = self.sent - self.delivered
            return json_reply({"description": "", "resolution": "hour", "stats": [{
                "time": "Mon, 30 Nov 2026 10:00:00 UTC",
                "accepted": {"incoming": 0, "outgoing": self.sent, "total": self.sent},
                "delivered": {"smtp": 0, "http": self.delivered, "total": self.delivered},
                "failed": {"temporary": {"espblock": 0}, "permanent": {
                    "suppress-bounce": 0, "suppress-unsubscribe": 0, "suppress-complaint": 0, "bounce": self.bounced,
                    "delayed-bounce": 0, "total": failed}},
                "complained": {"total": self.complained}}]})
        if path == f"/v3/{self.domain_name}/bounces":
            if "page=next" in request.path:
                return json_reply({"items": [], "paging": {}})
            return json_reply({"items": self.bounce_items,
                               "paging": {"next": f"{self.server.url}/v3/{self.domain_name}/bounces?page=next"}})
        return json_reply({"message": "not found"}, 404)

    def _metrics(self, body: dict) -> Reply:
        self.metric_queries.append(body)
        if not self.metrics_api:
            return json_reply({"message": "Forbidden"}, 403)
        unknown = (set(body) - METRIC_FIELDS) | (set(body.get("metrics") or []) - METRIC_NAMES) \
            | (set(body.get("dimensions") or []) - METRIC_DIMENSIONS)
        if unknown or body.get("resolution", "day") not in ("day", "hour", "month"):
            return json_reply({"message": f"invalid request: {sorted(unknown) or body.get('resolution')}"}, 400)
        wanted = [c.get("values") for c in (body.get("filter") or {}).get("AND") or []
                  if c.get("attribute") == "domain" and c.get("comparator") == "="]
        mine = not wanted or any(v.get("value") == self.domain_name for values in wanted for v in values)
        counts = {"accepted_outgoing_count": self.sent, "delivered_count": self.delivered,
                  "permanent_failed_count": self.sent - self.delivered, "hard_bounces_count": self.bounced,
                  "delayed_bounce_count": 0, "suppressed_bounces_count": 0, "complained_count": self.complained}
        values = {m: (counts.get(m, 0) if mine else 0) for m in body.get("metrics") or []}
        now = datetime.now(timezone.utc)
        answer = {"start": format_datetime(now - timedelta(days=1)), "end": format_datetime(now),
                  "resolution": body.get("resolution", "day"), "duration": body.get("duration", ""),
                  "dimensions": body.get("dimensions") or [],
                  "items": [] if body.get("dimensions") else [{"dimensions": [], "metrics": values}],
                  "pagination": {"sort": "", "skip": 0, "limit": 1500, "total": 0}}
        if body.get("include_aggregates"):
            answer["aggregates"] = {"metrics": values}
        return json_reply(answer)


class SendGrid(ServedApp):
    KEY = "SG.sendgrid-SECRET-0002"

    def __init__(self, domain: str = "test.example") -> None:
        self.domain_name = domain
        self.scopes = ["mail.send", "stats.read", "suppression.read", "whitelabel.read"]
        self.valid = True
        self.server = LocalServer(self)

    def connection_json(self) -> str:
        return json.dumps({"conn_type": "http", "host": self.server.url, "password": self.KEY})

    def __call__(self, request: Request) -> Reply:
        if request.headers.get("Authorization") != f"Bearer {self.KEY}":
            return json_reply({"errors": [{"field": None, "message": "authorization required"}]}, 401)
        path = urlsplit(request.path).path
        if path == "/v3/scopes":
            return json_reply({"scopes": self.scopes})
        if path == "/v3/whitelabel/domains":
            return json_reply([{"id": 1, "domain": self.domain_name, "valid": self.valid,
                                "dns": {"mail_cname": {"valid": self.valid}, "dkim1": {"valid": True}, "dkim2": {"valid": True}}}])
        if path == "/v3/stats":
            return json_reply([{"date": "2026-11-29", "stats": [{"metrics": {
                "requests": 500, "processed": 500, "delivered": 495, "bounces": 3, "bounce_drops": 0, "blocks": 1,
                "invalid_emails": 0, "spam_reports": 0}}]}])
        if path == "/v3/suppression/bounces":
            return json_reply([{"created": 1796000000, "email": "a@example.net", "reason": "550 5.1.1", "status": "5.1.1"}])
        return json_reply({"errors": [{"message": "not found"}]}, 404)
