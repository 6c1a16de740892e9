"""runbook_email: provider status, key and scopes, sending domain verification, delivery rates
over 24 h, bounce growth, and DNSBL listings of the sending IPs and domain (provider-apis.md 5, 10)."""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Any

from maintenance.checks.diagnosis import Cause
from maintenance.hooks.dns import is_ip
from maintenance.results import CheckResult

GROUP, RUNBOOK = "email", "runbook_email"
CONTACTS = ("mailgun", "sendgrid")

CAUSES = {c.reason: c for c in (
    Cause("provider_incident", "The email provider reports an incident", 10,
          "follow the provider's status page; nothing to fix on our side: tell users mail is delayed"),
    Cause("email_key_invalid", "The email provider rejects the API key", 20,
          "create or fix the key (Mailgun API Security / SendGrid Settings > API Keys), update the Airflow "
          "connection and the app's variables on Vercel, redeploy"),
    Cause("domain_not_found", "The sending domain is not on this account or region", 22,
          "Mailgun: an EU domain must be called on api.eu.mailgun.net (and the reverse); check the domain name"),
    Cause("domain_unverified", "The sending domain is not verified (its DNS records fail)", 25,
          "add or fix the SPF/DKIM/MX records the provider shows (Mailgun Sending > Domains > DNS records; SendGrid "
          "Sender Authentication), then verify again"),
    Cause("key_missing_scope", "The SendGrid key lacks the mail.send permission", 28,
          "SendGrid Settings > API Keys: give the key Mail Send (full or restricted access)", "sendgrid"),
    Cause("ip_listed", "A sending IP is on a DNS blocklist", 30,
          "look the IP up on the list's site (e.g. check.spamhaus.org), fix the cause (leaked key, bad list, high "
          "bounces), request removal; on a shared IP ask the provider"),
    Cause("domain_listed", "The sending domain is on a domain blocklist", 32,
          "look the domain up on check.spamhaus.org and follow its removal steps after fixing the cause"),
    Cause("bounce_rate_high", "The bounce rate is over the threshold", 40,
          "Sending > Logs (failed): find the list or form sending to bad addresses; stop it and clean the list"),
    Cause("complaint_rate_high", "Recipients mark our mail as spam", 42,
          "check what was sent in the last day (a campaign, a loop); honour unsubscribes"),
    Cause("failed_rate_high", "Many messages fail to deliver", 45,
          "Sending > Logs (failed) for the reasons; check blocks (espblock) and the domain's DNS"),
    Cause("suppression_growth", "The suppression list grew fast", 60,
          "Suppressions: remove addresses suppressed by mistake; fix typos at signup"),
    Cause("dnsbl_refused", "A blocklist refused our query, so the listing is unknown", 80,
          "query through our own resolver (not 8.8.8.8/1.1.1.1) or Spamhaus DQS; set runbooks.resolver"),
    Cause("policy_listed", "A sending IP is on Spamhaus PBL (policy, not spam)", 85,
          "PBL lists end-user IP space: send through the provider's IPs, not from this address"),
)}

REFUSED = ipaddress.ip_network("127.255.255.0/24")
PBL = {"127.0.0.10", "127.0.0.11"}


def _result(check: str, status: str, summary: str, reason: str | None, provider: str, **kw: Any) -> CheckResult:
    return CheckResult(check=f"email.{check}", status=status, summary=summary, reason=reason, group=GROUP,
                       runbook=RUNBOOK, provider=provider, **kw)


# -- key and domain -----------------------------------------------------------------------------------
def mailgun_domain(body: dict[str, Any], domain: str) -> CheckResult:
    info = body.get("domain") if isinstance(body.get("domain"), dict) else {}
    records = [r for r in body.get("sending_dns_records") or [] if isinstance(r, dict)]
    bad = [f"{r.get('record_type')} {r.get('name')} ({r.get('valid')})" for r in records if r.get("valid") != "valid"]
    state = str(info.get("state", "?"))
    evidence = {"domain": domain, "state": state, "type": info.get("type"), "invalid_records": bad,
                "records": [f"{r.get('record_type')} {r.get('name')}: {r.get('valid')}" for r in records]}
    if state != "active" or bad:
        detail = f"state {state}" + (f"; failing: {', '.join(bad)}" if bad else "")
        return _result("domain", "fail", f"sending domain {domain} is not verified: {detail}", "domain_unverified",
                       "mailgun", evidence=evidence, target=domain)
    return _result("domain", "ok", f"sending domain {domain} is active, {len(records)} DNS records valid", None,
                   "mailgun", evidence=evidence, target=domain)


def sendgrid_scopes(scopes: list[str]) -> CheckResult:
    evidence = {"scopes": sorted(scopes)[:20], "count": len(scopes)}
    if "mail.send" not in scopes:
        return _result("api_key", "fail", "the SendGrid key is valid but lacks mail.send", "key_missing_scope",
                       "sendgrid", evidence=evidence)
    return _result("api_key", "ok", f"the SendGrid key is valid with mail.send ({len(scopes)} scopes)", None,
                   "sendgrid", evidence=evidence)


def sendgrid_domain(domains: list[dict[str, Any]], domain: str) -> CheckResult:
    match = next((d for d in domains if str(d.get("domain", "")).lower() == domain.lower()
                  or domain.lower().endswith("." + str(d.get("domain", "")).lower())), None)
    if match is None:
        return _result("domain", "fail", f"{domain} is not an authenticated domain in SendGrid", "domain_unverified",
                       "sendgrid", evidence={"authenticated": [d.get("domain") for d in domains]}, target=domain)
    dns = match.get("dns") if isinstance(match.get("dns"), dict) else {}
    bad = [name for name, rec in dns.items() if isinstance(rec, dict) and not rec.get("valid")]
    evidence = {"domain": match.get("domain"), "valid": match.get("valid"), "invalid_records": bad}
    if not match.get("valid") or bad:
        return _result("domain", "fail", f"SendGrid domain {match.get('domain')} is not verified"
                       + (f": {', '.join(bad)}" if bad else ""), "domain_unverified", "sendgrid", evidence=evidence,
                       target=domain)
    return _result("domain", "ok", f"SendGrid domain {match.get('domain')} is verified", None, "sendgrid",
                   evidence=evidence, target=domain)


# -- delivery rates -------------------------------------------------------------------------------------
def _num(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def mailgun_totals(body: dict[str, Any]) -> dict[str, float]:
    totals = Counter()
    for row in body.get("stats") or []:
        if not isinstance(row, dict):
            continue
        accepted, delivered = row.get("accepted") or {}, row.get("delivered") or {}
        failed = row.get("failed") or {}
        permanent = failed.get("permanent") or {}
        totals["sent"] += _num(accepted.get("outgoing", accepted.get("total")))
        totals["delivered"] += _num(delivered.get("total"))
        totals["failed"] += _num(permanent.get("total"))
        totals["bounced"] += _num(permanent.get("bounce")) + _num(permanent.get("delayed-bounce")) \
            + _num(permanent.get("suppress-bounce"))
        totals["complained"] += _num((row.get("complained") or {}).get("total"))
    return dict(totals)


def mailgun_metric_totals(body: dict[str, Any]) -> dict[str, float]:
    """Totals from a Metrics API answer: its aggregates, else the sum of its items (a count may be
    a number or a string)."""
    aggregate = (body.get("aggregates") or {}).get("metrics") if isinstance(body.get("aggregates"), dict) else None
    rows = [aggregate] if isinstance(aggregate, dict) else \
        [item.get("metrics") or {} for item in body.get("items") or [] if isinstance(item, dict)]
    totals = Counter()
    for m in rows:
        totals["sent"] += _num(m.get("accepted_outgoing_count"))
        totals["delivered"] += _num(m.get("delivered_count"))
        totals["failed"] += _num(m.get("permanent_failed_count"))
        totals["bounced"] += _num(m.get("hard_bounces_count")) + _num(m.get("delayed_bounce_count")) \
            + _num(m.get("suppressed_bounces_count"))
        totals["complained"] += _num(m.get("complained_count"))
    return dict(totals)


def sendgrid_totals(days: list[dict[str, Any]]) -> dict[str, float]:
    totals = Counter()
    for day in days:
        for stat in day.get("stats") or [] if isinstance(day, dict) else []:
            m = stat.get("metrics") or {}
            totals["sent"] += _num(m.get("requests") or m.get("processed"))
            totals["delivered"] += _num(m.get("delivered"))
            totals["bounced"] += _num(m.get("bounces")) + _num(m.get("bounce_drops"))
            totals["failed"] += _num(m.get("bounces")) + _num(m.get("blocks")) + _num(m.get("invalid_emails"))
            totals["complained"] += _num(m.get("spam_reports"))
    return dict(totals)


def delivery_rates(totals: dict[str, float], provider: str, *, max_bounce: float, max_complaint: float,
                   max_failed: float, source: str | None = None) -> CheckResult:
    """source: which of the provider's APIs counted (Mailgun: the Metrics API or the stats fallback)."""
    sent = totals.get("sent", 0)
    rates = {k: (totals.get(k, 0) / sent if sent else 0.0) for k in ("bounced", "complained", "failed", "delivered")}
    metrics = {f"{k}_rate": round(v, 4) for k, v in rates.items()} | {"sent": sent}
    evidence = {"sent_24h": sent, **{k: totals.get(k, 0) for k in ("delivered", "failed", "bounced", "complained")},
                "thresholds": f"bounce {max_bounce:.1%}, complaint {max_complaint:.2%}, failed {max_failed:.0%}",
                **({"source": source} if source else {})}
    for key, limit, reason in (("bounced", max_bounce, "bounce_rate_high"), ("complained", max_complaint,
                                                                           "complaint_rate_high"),
                               ("failed", max_failed, "failed_rate_high")):
        if sent and rates[key] > limit:
            return _result("delivery", "fail", f"{key} rate {rates[key]:.1%} of {sent:.0f} sent in 24h is over "
                           f"{limit:.1%}", reason, provider, evidence=evidence, metrics=metrics)
    return _result("delivery", "ok", f"{sent:.0f} sent in 24h: {rates['delivered']:.1%} delivered, "
                   f"{rates['bounced']:.1%} bounced", None, provider, evidence=evidence, metrics=metrics)


def bounce_growth(bounces: list[dict[str, Any]], provider: str, max_growth: int) -> CheckResult:
    reasons = Counter(str(b.get("code") or b.get("status") or "?") for b in bounces)
    evidence = {"new_bounces_24h": len(bounces), "codes": dict(reasons.most_common(5)),
                "examples": [str(b.get("error") or b.get("reason") or "")[:80] for b in bounces[:3]]}
    if len(bounces) > max_growth:
        return _result("bounces", "warn", f"{len(bounces)} addresses added to the bounce list in 24h "
                       f"(more than {max_growth})", "suppression_growth", provider, evidence=evidence)
    return _result("bounces", "ok", f"{len(bounces)} new bounce(s) in 24h", None, provider, evidence=evidence)


# -- DNSBL --------------------------------------------------------------------------------------------
def reversed_ip(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        return ".".join(reversed(ip.split(".")))
    return ".".join(reversed(address.exploded.replace(":", "")))


def classify_dnsbl(answers: list[str], error: str | None) -> str:
    """listed | policy | refused | clean | unknown, from the A answers of one DNSBL query."""
    if error in ("nxdomain", "no_answer"):
        return "clean"
    if error:
        return "refused" if error == "refused" else "unknown"
    addresses = [ipaddress.ip_address(a) for a in answers if is_ip(a)]
    if any(a in REFUSED for a in addresses):
        return "refused"                        # 127.255.255.x: public resolver, typo, too many queries
    if addresses and all(str(a) in PBL for a in addresses):
        return "policy"
    if any(a in ipaddress.ip_network("127.0.0.0/8") for a in addresses):
        return "listed"
    return "unknown"


def dnsbl(lookups: list[tuple[str, str, list[str], str | None]], provider: str) -> CheckResult:
    """lookups: (subject (IP or domain), zone, A answers, error). Never 'listed' on a refusal."""
    verdicts = [(subject, zone, classify_dnsbl(answers, error), answers) for subject, zone, answers, error in lookups]
    listed = [f"{s} on {z} ({', '.join(a)})" for s, z, v, a in verdicts if v == "listed"]
    policy = [f"{s} on {z} (PBL)" for s, z, v, _ in verdicts if v == "policy"]
    refused = [f"{s} on {z}" for s, z, v, _ in verdicts if v in ("refused", "unknown")]
    evidence = {"listed": listed, "policy": policy, "query_refused": refused, "queries": len(lookups)}
    if listed:
        reason = "ip_listed" if any(is_ip(s) for s, _, v, _ in verdicts if v == "listed") else "domain_listed"
        return _result("blocklists", "fail", f"listed: {'; '.join(listed[:3])}", reason, provider, evidence=evidence)
    if policy:
        return _result("blocklists", "warn", f"policy listing only: {'; '.join(policy[:3])}", "policy_listed",
                       provider, evidence=evidence)
    if refused:
        return _result("blocklists", "warn", f"query refused, listing unknown: {'; '.join(refused[:3])}",
                       "dnsbl_refused", provider, evidence=evidence)
    return _result("blocklists", "ok", f"not listed ({len(lookups)} lookups)", None, provider, evidence=evidence)
