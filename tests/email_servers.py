"""Local Mailgun and SendGrid APIs in their shapes (provider-apis.md section 5)."""

from __future__ import annotations

import json
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from servers import LocalServer, Reply, Request, ServedApp, basic_credentials, json_reply


class Mailgun(ServedApp):
    KEY = "key-mailgun-SECRET-0001"

    def __init__(self, domain: str = "mg.test.example") -> None:
        self.domain_name = domain
        self.healthy()
        self.server = LocalServer(self)

    def healthy(self) -> None:
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
        if path == f"/v3/{self.domain_name}/stats/total":
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
