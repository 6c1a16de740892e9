"""A local DNS server (dnslib) for tests: SRV, TXT, A answers from a dict, NXDOMAIN otherwise.

    with DnsServer({("_mongodb._tcp.c0.example.net", "SRV"): ["0 0 27017 h1.c0.example.net"],
                    ("h1.c0.example.net", "A"): ["127.0.0.1"]}) as dns:
        dns.address   # "127.0.0.1:<port>" for runbooks.resolver

`refuse` names (suffixes) are answered REFUSED; `queries` records every (name, type) asked.
"""

from __future__ import annotations

import threading
from typing import Any

from dnslib import QTYPE, RCODE, RR, A, SRV, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class _Quiet(DNSLogger):
    def __init__(self) -> None:
        super().__init__(log="-request,-reply,-truncated,-error,-recv,-send,-data")


class DnsServer(BaseResolver):
    def __init__(self, records: dict[tuple[str, str], list[str]] | None = None, refuse: tuple[str, ...] = ()) -> None:
        self.records = {(n.rstrip(".").lower(), t): v for (n, t), v in (records or {}).items()}
        self.refuse = refuse
        self.queries: list[tuple[str, str]] = []
        self.server = DNSServer(self, address="127.0.0.1", port=0, logger=_Quiet())
        self.port = self.server.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.server.serve_forever, daemon=True)

    def set(self, name: str, rdtype: str, values: list[str] | None) -> None:
        key = (name.rstrip(".").lower(), rdtype)
        if values is None:
            self.records.pop(key, None)
        else:
            self.records[key] = values

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        rdtype = QTYPE[request.q.qtype]
        self.queries.append((name, rdtype))
        if any(name.endswith(s) for s in self.refuse):
            reply.header.rcode = RCODE.REFUSED
            return reply
        values = self.records.get((name, rdtype))
        if values is None:
            if not any(n == name for n, _ in self.records):
                reply.header.rcode = RCODE.NXDOMAIN
            return reply                                   # the name exists, not this type: NOERROR, no answer
        for value in values:
            if rdtype == "A":
                rdata = A(value)
            elif rdtype == "TXT":
                rdata = TXT(value)
            elif rdtype == "SRV":
                priority, weight, port, target = value.split()
                rdata = SRV(int(priority), int(weight), int(port), target)
            else:
                raise ValueError(rdtype)
            reply.add_answer(RR(name, getattr(QTYPE, rdtype), rdata=rdata, ttl=60))
        return reply

    def __enter__(self) -> "DnsServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.server.shutdown()
        self.server.server.server_close()
