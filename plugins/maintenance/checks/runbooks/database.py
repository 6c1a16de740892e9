"""runbook_database: Atlas status and cluster state, the connection string (parse, SRV/TXT,
hosts), the IP access list, a timed ping through MongoHook, the project's recent events.

Plain functions on data the operator fetched; CAUSES ranks what they find (checks/diagnosis.py).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from maintenance.checks.diagnosis import Cause
from maintenance.results import CheckResult

GROUP, RUNBOOK = "database", "runbook_database"
CONTACTS = ("atlas", "vercel")      # whom to call when no finding names anyone
ATLAS = "atlas"

CAUSES = {c.reason: c for c in (
    Cause("provider_incident", "MongoDB Atlas reports an incident", 10,
          "follow the incident on status.mongodb.com; nothing to fix on our side: tell users and watch it", ATLAS),
    Cause("cluster_unavailable", "The Atlas cluster is paused, being created or being deleted", 15,
          "Atlas > Database > the cluster: resume it (paused) or find who changed it (Activity Feed)", ATLAS),
    Cause("cluster_not_idle", "The Atlas cluster is not IDLE: a change or repair is in progress", 20,
          "Atlas > Database > the cluster: wait for the change to finish (connections drop during elections); "
          "open a support case if REPAIRING lasts", ATLAS),
    Cause("uri_invalid", "The database connection string does not parse", 22,
          "compare mongo_default (and the app's MONGODB_URI on Vercel) with Atlas > Connect", ATLAS),
    Cause("srv_missing", "The connection string's SRV record does not exist", 25,
          "compare the host in mongo_default / the app's MONGODB_URI with Atlas > Connect: the cluster may have "
          "been renamed or deleted", ATLAS),
    Cause("dns_failed", "DNS lookups for the database fail", 30,
          "check the resolver and the cluster's host names (dig SRV _mongodb._tcp.<host>)", ATLAS),
    Cause("ip_not_allowed", "Our address is missing from the Atlas IP access list", 35,
          "Atlas > Network Access: add the address below (a temporary entry may have expired)", ATLAS),
    Cause("auth_failed", "The database user or password is wrong", 40,
          "Atlas > Database Access: check the user and reset its password; URL-encode special characters; "
          "update mongo_default and the app's MONGODB_URI, then redeploy", ATLAS),
    Cause("tls_failed", "The TLS handshake with the cluster fails", 45,
          "check the worker's CA bundle and the driver's TLS options against Atlas > Connect", ATLAS),
    Cause("access_entry_expiring", "An IP access list entry expires soon", 55,
          "Atlas > Network Access: make the entry permanent or renew it", ATLAS),
    Cause("hosts_unreachable", "The cluster's hosts do not answer on their port", 60,
          "from a worker: nc -z <host> 27017; check Atlas status and the access list first", ATLAS),
    Cause("connect_timeout", "Connecting to the database times out", 80,
          "usually a symptom: see the steps above; otherwise Atlas > Metrics > Connections", ATLAS),
    Cause("server_selection", "No database server could be selected", 80,
          "usually a symptom of the causes above (access list, cluster state, DNS)", ATLAS),
    Cause("cluster_events", "Atlas recorded restarts, elections or maintenance on the cluster", 85,
          "Atlas > Project > Activity Feed: match the times with the errors", ATLAS),
    Cause("egress_unknown", "Our egress address could not be found", 88,
          "set runbooks.database.egress_ip (or egress_echo_url) in the maintenance config", ATLAS),
)}

UNAVAILABLE_STATES = {"CREATING", "DELETING", "DELETED"}
NOTABLE_EVENTS = ("ELECT", "HOST_DOWN", "RESTART", "ROLLBACK", "CONNECTIONS", "MAINTENANCE", "FAILOVER",
                  "PAUSED", "UPGRADE", "CLUSTER_UPDATE", "REPLICATION_OPLOG")


def _result(check: str, status: str, summary: str, reason: str | None = None, **kw: Any) -> CheckResult:
    return CheckResult(check=f"database.{check}", status=status, summary=summary, reason=reason, group=GROUP,
                       runbook=RUNBOOK, provider=kw.pop("provider", ATLAS), **kw)


# -- cluster ----------------------------------------------------------------------------------------
def cluster_state(cluster: dict[str, Any]) -> CheckResult:
    state = str(cluster.get("stateName") or "?").upper()
    name = cluster.get("name", "?")
    evidence = {"cluster": name, "stateName": state, "paused": cluster.get("paused"),
                "mongoDBVersion": cluster.get("mongoDBVersion")}
    if cluster.get("paused"):
        return _result("cluster_state", "fail", f"cluster {name} is paused", "cluster_unavailable", evidence=evidence)
    if state in UNAVAILABLE_STATES:
        return _result("cluster_state", "fail", f"cluster {name} is {state}: not available", "cluster_unavailable",
                       evidence=evidence)
    if state != "IDLE":
        return _result("cluster_state", "warn", f"cluster {name} is {state}, not IDLE", "cluster_not_idle",
                       evidence=evidence)
    return _result("cluster_state", "ok", f"cluster {name} is IDLE", evidence=evidence)


# -- connection string -----------------------------------------------------------------------------
@dataclass
class ParsedUri:
    scheme: str
    hosts: list[tuple[str, int]]
    database: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def srv(self) -> bool:
        return self.scheme == "mongodb+srv"


def parse_uri(uri: str) -> ParsedUri:
    """A MongoDB connection string's parts; ValueError saying what is wrong (never the password)."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ("mongodb", "mongodb+srv"):
        raise ValueError(f"scheme must be mongodb:// or mongodb+srv://, got {scheme + sep if sep else 'none'!r}")
    netloc, _, tail = rest.partition("/")
    if "?" in netloc:
        netloc, _, query = netloc.partition("?")
        path = ""
    else:
        path, _, query = tail.partition("?")
    userinfo, at, hostlist = netloc.rpartition("@")
    if at and ":" in userinfo:
        user, _, password = userinfo.partition(":")
        if any(c in password for c in "@/:?#[]") or any(c in user for c in "@/:?#[]"):
            raise ValueError("the user name or password has unescaped special characters (URL-encode them)")
    if not hostlist:
        raise ValueError("no host")
    hosts = []
    for item in hostlist.split(","):
        host, _, port = item.rpartition(":") if item.count(":") == 1 else (item, "", "")
        if not host:
            raise ValueError(f"empty host in {item!r}")
        if port and not port.isdigit():
            raise ValueError(f"port of {host!r} is not a number")
        hosts.append((unquote(host), int(port) if port else 27017))
    if scheme == "mongodb+srv":
        if len(hosts) != 1 or ":" in hostlist:
            raise ValueError("a mongodb+srv:// string takes exactly one host name and no port")
        if hostlist.count(".") < 2:
            raise ValueError(f"SRV host {hostlist!r} needs at least three labels (e.g. cluster0.ab1cd.mongodb.net)")
    return ParsedUri(scheme, hosts, unquote(path), dict(parse_qsl(query)))


def connection_string(uri: str, conn_id: str) -> tuple[CheckResult, ParsedUri | None]:
    try:
        parsed = parse_uri(uri)
    except ValueError as exc:
        return _result("connection_string", "fail", f"connection '{conn_id}': {exc}", "uri_invalid"), None
    hosts = ", ".join(f"{h}:{p}" if not parsed.srv else h for h, p in parsed.hosts)
    return _result("connection_string", "ok", f"connection '{conn_id}' parses: {parsed.scheme}://{hosts}",
                   evidence={"scheme": parsed.scheme, "hosts": [h for h, _ in parsed.hosts],
                             "options": sorted(parsed.options)}), parsed


def srv_records(host: str, srv: Any, txt: Any) -> CheckResult:
    """srv / txt: hooks.dns.Lookup of _mongodb._tcp.<host> (SRV) and <host> (TXT)."""
    evidence = {"srv_name": f"_mongodb._tcp.{host}", "srv": srv.answers, "txt": txt.answers,
                "srv_error": srv.error, "txt_error": txt.error}
    if srv.error in ("nxdomain", "no_answer"):
        return _result("srv_records", "fail", f"no SRV record for _mongodb._tcp.{host} ({srv.error})", "srv_missing",
                       evidence=evidence, target=host)
    if srv.error:
        return _result("srv_records", "fail", f"SRV lookup failed: {srv.detail}", "dns_failed", evidence=evidence,
                       target=host)
    bad_txt = [t for t in txt.answers if any(k.split("=")[0] not in ("authSource", "replicaSet", "loadBalanced")
                                             for k in t.split("&"))]
    if bad_txt:
        return _result("srv_records", "fail", f"TXT record of {host} has options a driver refuses: {bad_txt[0]}",
                       "uri_invalid", evidence=evidence, target=host)
    txt_note = f"; TXT {txt.answers[0]}" if txt.answers else " (no TXT record: fine)"
    return _result("srv_records", "ok", f"SRV resolves to {len(srv.answers)} host(s){txt_note}", evidence=evidence,
                   target=host)


def hosts_answer(probes: list[tuple[str, int, str | None]]) -> CheckResult:
    """probes: (host, port, error or None) of a TCP connect to each seed host."""
    down = [f"{h}:{p} ({e})" for h, p, e in probes if e]
    evidence = {"hosts": [f"{h}:{p}" for h, p, _ in probes], "unreachable": down}
    if not probes:
        return _result("hosts", "skipped", "no host to try", evidence=evidence)
    if any(e == "dns" for _, _, e in probes) and len(down) == len(probes):
        return _result("hosts", "fail", f"no host resolves: {', '.join(down[:3])}", "dns_failed", evidence=evidence)
    if len(down) == len(probes):
        return _result("hosts", "fail", f"no host answers: {', '.join(down[:3])}", "hosts_unreachable",
                       evidence=evidence)
    if down:
        return _result("hosts", "warn", f"{len(down)} of {len(probes)} hosts do not answer: {', '.join(down[:3])}",
                       "hosts_unreachable", evidence=evidence)
    return _result("hosts", "ok", f"all {len(probes)} host(s) answer", evidence=evidence)


# -- IP access list --------------------------------------------------------------------------------
def _entry_value(entry: dict[str, Any]) -> str:
    return str(entry.get("cidrBlock") or entry.get("ipAddress") or entry.get("awsSecurityGroup") or "?")


def _covers(entry: dict[str, Any], ip: ipaddress._BaseAddress) -> bool:
    value = entry.get("cidrBlock") or entry.get("ipAddress")
    if not value:
        return False
    try:
        return ip in ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return False


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def removed_entries(events: list[dict[str, Any]]) -> list[str]:
    """Access-list entries the project's events say were removed or expired (newest first)."""
    found = []
    for event in events:
        kind = str(event.get("eventTypeName", "")).upper()
        if ("NETWORK_PERMISSION" in kind or "ACCESS_LIST" in kind or "WHITELIST" in kind) and \
                any(word in kind for word in ("REMOVED", "DELETED", "EXPIRED")):
            value = str(event.get("whitelistEntry") or "?")     # the spec's field; `raw` has no entry
            found.append(f"{value} ({kind.lower()} {event.get('created', '?')}"
                         + (f" by {event['username']}" if event.get("username") else "") + ")")
    return found


def access_list(entries: list[dict[str, Any]], egress_ip: str | None, events: list[dict[str, Any]],
                now: datetime, egress_error: str | None = None) -> CheckResult:
    values = [_entry_value(e) for e in entries]
    removed = removed_entries(events)
    evidence: dict[str, Any] = {"egress_ip": egress_ip, "entries": values, "recently_removed": removed}
    expiring = []
    for entry in entries:
        when = _parse_time(entry.get("deleteAfterDate")) if entry.get("deleteAfterDate") else None
        if when is not None and when - now < timedelta(hours=24):
            expiring.append(f"{_entry_value(entry)} (expires {entry['deleteAfterDate']})")
    if expiring:
        evidence["expiring"] = expiring
    if egress_ip is None:
        return _result("access_list", "warn", f"our egress address is unknown ({egress_error or 'not configured'}); "
                       f"{len(entries)} entries listed", "egress_unknown", evidence=evidence)
    try:
        ip = ipaddress.ip_address(egress_ip)
    except ValueError:
        return _result("access_list", "warn", f"egress address {egress_ip!r} is not an IP address", "egress_unknown",
                       evidence=evidence)
    allowing = [_entry_value(e) for e in entries if _covers(e, ip)]
    evidence["allowed_by"] = allowing
    if not allowing:
        hint = f"; recently removed: {removed[0]}" if removed else ""
        return _result("access_list", "fail", f"{egress_ip} is not in the project's IP access list "
                       f"({len(entries)} entries){hint}", "ip_not_allowed", evidence=evidence, target=egress_ip)
    if any(a.startswith(("0.0.0.0/0", "::/0")) for a in allowing):
        evidence["note"] = "0.0.0.0/0 allows everyone (the monthly security scan flags it)"
    if expiring:
        return _result("access_list", "warn", f"{egress_ip} allowed by {allowing[0]}, but {expiring[0]}",
                       "access_entry_expiring", evidence=evidence, target=egress_ip)
    return _result("access_list", "ok", f"{egress_ip} allowed by {', '.join(allowing)}", evidence=evidence,
                   target=egress_ip)


# -- ping ---------------------------------------------------------------------------------------------
def classify_mongo_error(exc: BaseException) -> tuple[str, str]:
    """(cause reason, short text) of a pymongo failure, from its class, code and message.

    Not built on hooks/mongo.mongo_error: that maps class and code onto the HTTP policy's reasons
    (a ServerSelectionTimeoutError is only `timeout`); a runbook needs the cause inside it (DNS,
    TLS, refused, auth), which only the driver's message tells."""
    name = type(exc).__name__
    code = getattr(exc, "code", None)
    text = str(exc).split(", Timeout:")[0].split(", Topology Description")[0][:240]
    lowered = text.lower()
    if code in (18, 8000) or "authentication failed" in lowered or "bad auth" in lowered:
        return "auth_failed", f"authentication failed ({name}, code {code})"
    if name == "ConfigurationError" and ("dns" in lowered or "srv" in lowered or "does not exist" in lowered):
        return "dns_failed", f"the driver cannot resolve the seed list: {text}"
    if name == "ConfigurationError" or name == "InvalidURI":
        return "uri_invalid", f"{name}: {text}"
    if "ssl" in lowered or "certificate" in lowered or "tls" in lowered:
        return "tls_failed", f"TLS: {text}"
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "getaddrinfo" in lowered:
        return "dns_failed", f"host name does not resolve: {text}"
    if "refused" in lowered:
        return "hosts_unreachable", f"connection refused: {text}"
    if name in ("NetworkTimeout", "ExecutionTimeout") or "timed out" in lowered:
        return "connect_timeout", f"timed out: {text}"
    if name == "ServerSelectionTimeoutError":
        return "server_selection", f"no server selected: {text}"
    return "server_selection", f"{name}: {text}"


def ping_ok(ms: float, server: dict[str, Any]) -> CheckResult:
    return _result("ping", "ok", f"ping answered in {ms:.0f} ms", metrics={"ping_ms": round(ms, 1)},
                   evidence={k: server[k] for k in ("version", "setName", "primary") if k in server})


def ping_failed(exc: BaseException, ms: float, conn_id: str) -> CheckResult:
    reason, text = classify_mongo_error(exc)
    return _result("ping", "fail", f"connect and ping through '{conn_id}' failed after {ms:.0f} ms: {text}", reason,
                   metrics={"ping_ms": round(ms, 1)}, evidence={"error": type(exc).__name__, "class": reason})


# -- events -----------------------------------------------------------------------------------------
def cluster_events(events: list[dict[str, Any]], hours: int) -> CheckResult:
    notable = [e for e in events if any(word in str(e.get("eventTypeName", "")).upper() for word in NOTABLE_EVENTS)]
    lines = [f"{e.get('created', '?')} {e.get('eventTypeName')}" + (f" {e['hostname']}" if e.get("hostname") else "")
             for e in notable[:10]]
    evidence = {"events": len(events), "notable": lines}
    if notable:
        return _result("events", "warn", f"{len(notable)} notable event(s) in {hours}h: {'; '.join(lines[:3])}",
                       "cluster_events", evidence=evidence, metrics={"notable_events": len(notable)})
    return _result("events", "ok", f"{len(events)} project event(s) in {hours}h, none about restarts or elections",
                   evidence=evidence, metrics={"notable_events": 0})
