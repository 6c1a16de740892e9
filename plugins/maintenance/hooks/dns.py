"""DNS lookups through a configurable resolver (runbooks.resolver), with dnspython, and whether a
host so resolved accepts a TCP connection (`connect()`, runbook_database's seed hosts).

`lookup(name, rdtype, resolver)` never raises: it returns a Lookup with the answers, or with
`error` one of nxdomain (the name does not exist), no_answer (the name exists, not this type),
timeout, refused (the resolver refused or failed: SERVFAIL/REFUSED), error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TIMEOUT_S = 3.0
CONNECT_TIMEOUT_S = 3.0


@dataclass
class Lookup:
    name: str
    rdtype: str
    answers: list[str] = field(default_factory=list)
    error: str | None = None          # nxdomain | no_answer | timeout | refused | error
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def make_resolver(address: str | None, timeout: float = TIMEOUT_S):
    """A dnspython Resolver on `address` ("ip" or "ip:port"), or the system's when None."""
    import dns.resolver

    if address is None:
        resolver = dns.resolver.Resolver()
    else:
        host, port = (address.rsplit(":", 1) + ["53"])[:2] if address.count(":") == 1 else (address, "53")
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = int(port)
    resolver.timeout = resolver.lifetime = timeout
    return resolver


def lookup(name: str, rdtype: str, resolver) -> Lookup:
    import dns.exception
    import dns.resolver

    try:
        answer = resolver.resolve(name, rdtype, raise_on_no_answer=True)
    except dns.resolver.NXDOMAIN:
        return Lookup(name, rdtype, error="nxdomain", detail=f"{name} does not exist")
    except dns.resolver.NoAnswer:
        return Lookup(name, rdtype, error="no_answer", detail=f"{name} has no {rdtype} record")
    except dns.resolver.LifetimeTimeout:
        return Lookup(name, rdtype, error="timeout", detail=f"{rdtype} {name}: the resolver did not answer")
    except dns.resolver.NoNameservers as exc:
        return Lookup(name, rdtype, error="refused", detail=f"{rdtype} {name}: refused or failed ({str(exc)[:120]})")
    except dns.exception.DNSException as exc:
        return Lookup(name, rdtype, error="error", detail=f"{rdtype} {name}: {type(exc).__name__}")
    values = []
    for record in answer:
        if rdtype == "SRV":
            values.append(f"{record.priority} {record.weight} {record.port} {str(record.target).rstrip('.')}")
        elif rdtype == "TXT":
            values.append(b"".join(record.strings).decode("utf-8", "replace"))
        else:
            values.append(record.to_text())
    return Lookup(name, rdtype, answers=values)


def is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def connect(host: str, port: int, resolver, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Open (and close) a TCP connection to host:port, the name resolved through `resolver` when
    given (else the system's): None, or what stopped it (dns, refused, timeout, the OSError's
    class name). Never raises."""
    import socket

    address = host
    if resolver is not None and not is_ip(host):
        found = lookup(host, "A", resolver)
        if not found.ok:
            return "dns"
        address = found.answers[0]
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return None
    except socket.gaierror:
        return "dns"
    except ConnectionRefusedError:
        return "refused"
    except (TimeoutError, socket.timeout):
        return "timeout"
    except OSError as exc:
        return type(exc).__name__
