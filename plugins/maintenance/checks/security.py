"""Monthly security scan (plain functions): an HTTP Observatory style grade, TLS, exposed files,
and the configuration of Atlas, S3 and R2. Facts: next-anchors.md section 2.

The grade follows Mozilla's HTTP Observatory (mdn/mdn-http-observatory, algorithm v6): the
score starts at 100, each test adds its modifier, bonuses count only when the score without
them is at least 90, the result is rounded down to a multiple of 5 and mapped to a grade.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from maintenance.config import HEADERS_GRADES
from maintenance.results import CheckResult

RUNBOOK = "maintenance_monthly"
HSTS_MIN = 15552000                       # 180 days
PRIVATE_REFERRER = {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}
UNSAFE_REFERRER = {"unsafe-url", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin"}
VALID_REFERRER = PRIVATE_REFERRER | UNSAFE_REFERRER
GRADES = list(zip((100, 90, 85, 80, 70, 65, 60, 50, 45, 40, 30, 25, 0), HEADERS_GRADES))   # (lowest score, grade)
GRADE_ORDER = list(HEADERS_GRADES)


@dataclass
class SiteFacts:
    """What the scanner saw of one site (hooks/site.py collects it)."""

    url: str
    headers: dict[str, str]                       # final HTTPS response, lower-case names
    cookies: list[str] = field(default_factory=list)   # raw Set-Cookie values
    http_redirects: list[str] | None = None       # Location chain from the http:// URL (None: no http)
    http_status: int | None = None                # first answer of the http:// URL
    cors_reflected: bool = False                  # an arbitrary Origin echoed back with credentials


@dataclass
class Test:
    name: str
    result: str
    modifier: int
    fix: str = ""

    @property
    def passed(self) -> bool:
        return self.modifier >= 0


def _csp(headers: dict[str, str]) -> tuple[Test, dict[str, list[str]]]:
    value = headers.get("content-security-policy")
    if not value:
        if headers.get("content-security-policy-report-only"):
            return Test("content-security-policy", "csp-not-implemented-but-reporting-enabled", -25,
                        "enforce the policy: send Content-Security-Policy, not only the Report-Only header"), {}
        return Test("content-security-policy", "csp-not-implemented", -25,
                    "send a Content-Security-Policy (start from default-src 'self'; object-src 'none')"), {}
    directives: dict[str, list[str]] = {}
    for part in value.split(";"):
        tokens = part.strip().split()
        if tokens:
            directives.setdefault(tokens[0].lower(), [t.lower() for t in tokens[1:]])
    script = directives.get("script-src", directives.get("default-src"))
    if script is None:
        return Test("content-security-policy", "csp-implemented-with-unsafe-inline", -20,
                    "add script-src (or default-src): without it any script may run"), directives
    hashed = any(t.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-")) for t in script)
    if ("'unsafe-inline'" in script and not hashed) or "data:" in script:
        return Test("content-security-policy", "csp-implemented-with-unsafe-inline", -20,
                    "remove 'unsafe-inline' and data: from script-src (use nonces or hashes)"), directives
    if "'unsafe-eval'" in script:
        return Test("content-security-policy", "csp-implemented-with-unsafe-eval", -10,
                    "remove 'unsafe-eval' from script-src"), directives
    passive = [t for src in ("img-src", "media-src", "default-src") for t in directives.get(src, []) if t == "http:"]
    if passive:
        return Test("content-security-policy", "csp-implemented-with-insecure-scheme-in-passive-content-only", -10,
                    "allow https: only for images and media"), directives
    if directives.get("default-src") == ["'none'"]:
        return Test("content-security-policy", "csp-implemented-with-no-unsafe-default-src-none", 10), directives
    return Test("content-security-policy", "csp-implemented-with-no-unsafe", 5), directives


def _cookies(raw: list[str], hsts: bool) -> Test:
    if not raw:
        return Test("cookies", "cookies-not-found", 0)
    worst = Test("cookies", "cookies-secure-with-httponly-sessions-and-samesite", 5)
    for text in raw:
        name = text.split("=", 1)[0].strip()
        attrs = {a.strip().split("=", 1)[0].lower(): (a.split("=", 1)[1].strip() if "=" in a else "")
                 for a in text.split(";")[1:]}
        session = any(k in name.lower() for k in ("login", "sess"))
        csrf = "csrf" in name.lower()
        samesite = attrs.get("samesite")
        candidates = []
        if samesite is not None and samesite.lower() not in ("strict", "lax", "none"):
            candidates.append(Test("cookies", "cookies-samesite-flag-invalid", -20, f"cookie {name}: SameSite=Strict or Lax"))
        if csrf and samesite is None:
            candidates.append(Test("cookies", "cookies-anticsrf-without-samesite-flag", -20,
                                   f"cookie {name}: add SameSite=Strict"))
        if "secure" not in attrs:
            if session:
                candidates.append(Test("cookies", "cookies-session-without-secure-flag-but-protected-by-hsts", -10,
                                       f"cookie {name}: add Secure") if hsts else
                                  Test("cookies", "cookies-session-without-secure-flag", -40,
                                       f"session cookie {name}: add Secure (it is sent over plain HTTP)"))
            else:
                candidates.append(Test("cookies", "cookies-without-secure-flag-but-protected-by-hsts", -5,
                                       f"cookie {name}: add Secure") if hsts else
                                  Test("cookies", "cookies-without-secure-flag", -20, f"cookie {name}: add Secure"))
        if session and "httponly" not in attrs:
            candidates.append(Test("cookies", "cookies-session-without-httponly-flag", -30,
                                   f"session cookie {name}: add HttpOnly (scripts can read it)"))
        if not candidates and samesite is None and worst.modifier > 0:
            worst = Test("cookies", "cookies-secure-with-httponly-sessions", 0)
        for test in candidates:
            if test.modifier < worst.modifier:
                worst = test
    return worst


def _hsts(headers: dict[str, str]) -> Test:
    value = headers.get("strict-transport-security")
    if not value:
        return Test("strict-transport-security", "hsts-not-implemented", -20,
                    f"send Strict-Transport-Security: max-age={HSTS_MIN * 2}; includeSubDomains")
    match = re.search(r"max-age\s*=\s*\"?(\d+)", value, re.I)
    if not match:
        return Test("strict-transport-security", "hsts-header-invalid", -20, "fix the header: max-age=<seconds>")
    if int(match.group(1)) < HSTS_MIN:
        return Test("strict-transport-security", "hsts-implemented-max-age-less-than-six-months", -10,
                    f"raise max-age to at least {HSTS_MIN} (six months)")
    return Test("strict-transport-security", "hsts-implemented-max-age-at-least-six-months", 0)


def _redirection(facts: SiteFacts) -> Test:
    if facts.http_redirects is None:
        return Test("redirection", "redirection-not-needed-no-http", 0)
    chain = facts.http_redirects
    if not chain:
        return Test("redirection", "redirection-missing", -20, "redirect http:// to https:// (301)")
    from urllib.parse import urlsplit
    first, last = urlsplit(chain[0]), urlsplit(chain[-1])
    if last.scheme != "https":
        return Test("redirection", "redirection-not-to-https", -20, "the redirects must end on https://")
    if first.scheme != "https":
        return Test("redirection", "redirection-not-to-https-on-initial-redirection", -10,
                    "redirect to https:// on the same host first")
    if first.hostname != urlsplit(facts.url).hostname:
        return Test("redirection", "redirection-off-host-from-http", -5,
                    "redirect to https:// on the same host first (then elsewhere)")
    return Test("redirection", "redirection-to-https", 0)


def _referrer(headers: dict[str, str]) -> Test:
    value = headers.get("referrer-policy")
    if not value:
        return Test("referrer-policy", "referrer-policy-not-implemented", 0)
    values = [v.strip().lower() for v in value.split(",") if v.strip()]
    effective = next((v for v in reversed(values) if v in VALID_REFERRER), None)
    if effective is None:
        return Test("referrer-policy", "referrer-policy-header-invalid", -5, "use strict-origin-when-cross-origin")
    if effective in UNSAFE_REFERRER:
        return Test("referrer-policy", "referrer-policy-unsafe", -5, "use strict-origin-when-cross-origin")
    return Test("referrer-policy", "referrer-policy-private", 5)


def _frame(headers: dict[str, str], csp: dict[str, list[str]]) -> Test:
    if "frame-ancestors" in csp:
        return Test("x-frame-options", "x-frame-options-implemented-via-csp", 5)
    value = (headers.get("x-frame-options") or "").strip().lower()
    if not value:
        return Test("x-frame-options", "x-frame-options-not-implemented", -20,
                    "send X-Frame-Options: DENY (or CSP frame-ancestors 'none')")
    if value not in ("deny", "sameorigin"):
        return Test("x-frame-options", "x-frame-options-header-invalid", -20, "use DENY or SAMEORIGIN")
    return Test("x-frame-options", "x-frame-options-sameorigin-or-deny", 0)


def _nosniff(headers: dict[str, str]) -> Test:
    value = (headers.get("x-content-type-options") or "").strip().lower()
    if value == "nosniff":
        return Test("x-content-type-options", "x-content-type-options-nosniff", 0)
    if value:
        return Test("x-content-type-options", "x-content-type-options-header-invalid", -5, "use nosniff")
    return Test("x-content-type-options", "x-content-type-options-not-implemented", -5,
                "send X-Content-Type-Options: nosniff")


def _cross_origin(headers: dict[str, str]) -> list[Test]:
    specs = (("cross-origin-resource-policy", "corp", {"same-origin", "same-site", "cross-origin"}),
             ("cross-origin-opener-policy", "coop", {"same-origin", "same-origin-allow-popups", "unsafe-none",
                                                     "noopener-allow-popups"}),
             ("cross-origin-embedder-policy", "coep", {"require-corp", "credentialless", "unsafe-none"}))
    out = []
    for header, short, valid in specs:
        value = (headers.get(header) or "").split(";")[0].strip().lower()
        if not value:
            out.append(Test(header, f"{short}-not-implemented", 0))
        elif value not in valid:
            out.append(Test(header, f"{short}-header-invalid", -5, f"use one of {', '.join(sorted(valid))}"))
        elif value in ("unsafe-none", "cross-origin"):
            out.append(Test(header, f"{short}-implemented-with-{value}", 0))
        else:
            out.append(Test(header, f"{short}-implemented-with-{value}", 10))
    return out


def _cors(facts: SiteFacts) -> Test:
    if facts.cors_reflected:
        return Test("cross-origin-resource-sharing", "cors-implemented-with-universal-access", -50,
                    "do not echo arbitrary Origins with Access-Control-Allow-Credentials: true")
    if facts.headers.get("access-control-allow-origin", "").strip() == "*":
        return Test("cross-origin-resource-sharing", "cors-implemented-with-public-access", 0)
    return Test("cross-origin-resource-sharing", "cors-not-implemented", 0)


def observatory(facts: SiteFacts) -> tuple[int, str, list[Test]]:
    """(score, grade, tests) of one site."""
    headers = {k.lower(): v for k, v in facts.headers.items()}
    facts = SiteFacts(facts.url, headers, facts.cookies, facts.http_redirects, facts.http_status, facts.cors_reflected)
    hsts = _hsts(headers)
    csp, directives = _csp(headers)
    tests = [csp, _cookies(facts.cookies, hsts.passed), _cors(facts), _redirection(facts), _referrer(headers),
             hsts, _nosniff(headers), _frame(headers, directives), *_cross_origin(headers)]
    penalties = 100 + sum(t.modifier for t in tests if t.modifier < 0)
    score = penalties + (sum(t.modifier for t in tests if t.modifier > 0) if penalties >= 90 else 0)
    score = max(0, score - score % 5)
    grade = next(g for floor, g in GRADES if score >= floor)
    return score, grade, tests


def grade_result(facts: SiteFacts, previous_grade: str | None, runbook: str = RUNBOOK,
                 page_below: str = "D") -> CheckResult:
    """The grade of a site: at or below `page_below`, or lower than last month's, it fails (one
    page); under B it is a warning for the digest; otherwise ok."""
    score, grade, tests = observatory(facts)
    failed = [t for t in tests if t.modifier < 0]
    evidence = {"tests": [{"test": t.name, "result": t.result, "modifier": t.modifier, "fix": t.fix} for t in tests],
                "previous_grade": previous_grade}
    common = dict(check=f"security.headers.{_host(facts.url)}", target=facts.url, group="security", runbook=runbook,
                  metrics={"score": score, "failed_tests": len(failed)}, evidence={**evidence, "grade": grade})
    detail = "; ".join(f"{t.name} {t.modifier} ({t.result}: {t.fix})" for t in failed[:6])
    tests_line = f"failed: {detail}" if failed else "every test passed"
    summary = f"grade {grade} (score {score}); {tests_line}"
    rank = GRADE_ORDER.index
    dropped = previous_grade in GRADE_ORDER and rank(grade) > rank(previous_grade)
    too_low = rank(grade) >= rank(page_below)
    low = f", at or below {page_below} (security_scan.page_below)" if too_low else ""
    if dropped:
        return CheckResult(status="fail", reason="grade_dropped", summary=f"grade dropped {previous_grade} -> "
                           f"{grade} (score {score}) since the last scan{low}; {tests_line}", **common)
    if too_low:
        return CheckResult(status="fail", reason="grade_too_low",
                           summary=f"grade {grade} (score {score}){low}; {tests_line}", **common)
    if rank(grade) > rank("B"):
        return CheckResult(status="warn", reason="weak_headers", summary=summary, critical=False, **common)
    return CheckResult(status="ok", summary=summary, critical=False, **common)


def _host(url: str) -> str:
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else url


# -- TLS --------------------------------------------------------------------------------------------
def tls_result(url: str, facts: dict[str, Any], warn_days: int, runbook: str = RUNBOOK) -> CheckResult:
    """facts: days_left (float|None), chain_ok (bool), chain_error (str|None), legacy (list of versions
    offered: 'TLSv1', 'TLSv1.1'), version (negotiated), error (str|None, reason)."""
    common = dict(check=f"security.tls.{_host(url)}", target=url, group="security", runbook=runbook,
                  evidence=dict(facts))
    if facts.get("error"):
        return CheckResult(status="fail", reason=facts.get("reason") or "tls", summary=f"TLS: {facts['error']}", **common)
    problems, status = [], "ok"
    days = facts.get("days_left")
    if not facts.get("chain_ok"):
        problems.append(f"the certificate chain does not validate ({facts.get('chain_error') or 'unknown error'})")
        status = "fail"
    if days is not None and days < 0:
        problems.append(f"the certificate expired {-days:.0f} day(s) ago")
        status = "fail"
    elif days is not None and days < warn_days:
        problems.append(f"the certificate expires in {days:.0f} day(s)")
        status = "fail" if days < 7 else "warn"
    legacy = facts.get("legacy") or []
    if legacy:
        problems.append(f"{' and '.join(legacy)} still offered (disable TLS 1.0 and 1.1)")
        status = "fail" if status == "fail" else "warn"
    metrics = {"days_left": round(days, 1) if days is not None else None, "legacy_versions": len(legacy)}
    if problems:
        return CheckResult(status=status, reason="tls_findings", summary="TLS: " + "; ".join(problems),
                           metrics=metrics, critical=status == "fail", **common)
    return CheckResult(status="ok", metrics=metrics, critical=False, **common,
                       summary=f"TLS: chain valid, {facts.get('version')}, certificate good for {days:.0f} more day(s)"
                       if days is not None else "TLS: chain valid")


# -- exposed files --------------------------------------------------------------------------------------
ENV_LINE = re.compile(r"^(APP_(?:NAME|ENV|KEY|DEBUG|URL|PASSWORD)|DB_(?:HOST|PASSWORD|DATABASE)|NEXT_PUBLIC_\w+|"
                      r"MONGODB_URI|STRIPE_SECRET_KEY|DATABASE_URL|SECRET_KEY|AWS_SECRET_ACCESS_KEY)\s*=", re.M)
GIT_CONFIG = re.compile(r"^\s*\[(core|credentials|remote \"[^\"]*\")\]", re.M)
HTML = re.compile(r"<html|<body|<!doctype html", re.I)
ARCHIVES = {b"PK\x03\x04": "zip", b"\x1f\x8b": "gzip", b"7z\xbc\xaf": "7z", b"Rar!": "rar"}

DEFAULT_PATHS: list[tuple[str, str]] = [
    ("/.git/config", "git"), ("/.env", "env"), ("/.env.local", "env"), ("/.env.production", "env"),
    ("/.env.production.local", "env"), ("/api/.env", "env"), ("/backup.zip", "archive"), ("/backup.tar.gz", "archive"),
]


def judge_exposed(path: str, kind: str, status: int, content_type: str, body: bytes,
                  signature: str | None = None) -> str | None:
    """The reason a response is an exposed file, or None. Never the status alone: a single-page
    app or a soft 404 answers 200 to every path."""
    if status != 200 or not body:
        return None
    head = body[:65536]
    text = head.decode("utf-8", "replace")
    if kind == "archive":
        magic = next((name for sig, name in ARCHIVES.items() if head.startswith(sig)), None)
        return f"{magic} archive served" if magic and not content_type.startswith("text/") else None
    if HTML.search(text):
        return None
    if kind == "git":
        match = GIT_CONFIG.search(text)
        return f"git config served (section [{match.group(1).split()[0]}])" if match else None
    if kind == "env":
        names = sorted({m.group(1) for m in ENV_LINE.finditer(text)})
        return f"environment file served (defines {', '.join(names[:5])})" if names else None
    if signature and re.search(signature, text, re.M):
        return "content matches the configured signature"
    return None


def exposed_result(url: str, exposed: list[dict[str, Any]], probed: int, errors: list[str],
                   runbook: str = RUNBOOK) -> CheckResult:
    """exposed: [{path, why}] (no file content: it may hold secrets)."""
    common = dict(check=f"security.exposed_files.{_host(url)}", target=url, group="security", runbook=runbook,
                  metrics={"probed": probed, "exposed": len(exposed)},
                  evidence={"exposed": exposed, "errors": errors[:10]})
    if exposed:
        lines = "; ".join(f"{e['path']}: {e['why']}" for e in exposed)
        return CheckResult(status="fail", reason="exposed_file", summary=f"exposed: {lines} (remove them from the "
                           "deployment and rotate any secret they held)", **common)
    note = f" ({len(errors)} could not be fetched)" if errors else ""
    return CheckResult(status="ok" if not errors else "warn", reason="probe_errors" if errors else None,
                       critical=False, summary=f"none of {probed} sensitive path(s) exposed{note}", **common)


# -- configuration --------------------------------------------------------------------------------------
def atlas_access_list(entries: list[dict[str, Any]], project: str, runbook: str = RUNBOOK) -> CheckResult:
    open_ = [e for e in entries if str(e.get("cidrBlock") or e.get("ipAddress") or "") in ("0.0.0.0/0", "0.0.0.0", "::/0")]
    common = dict(check="security.atlas.access_list", target=f"atlas:{project}", group="security", runbook=runbook,
                  provider="atlas", metrics={"entries": len(entries), "open_to_world": len(open_)},
                  evidence={"entries": [{k: e.get(k) for k in ("cidrBlock", "ipAddress", "comment", "deleteAfterDate")}
                                        for e in entries[:50]]})
    if open_:
        what = ", ".join(f"{e.get('cidrBlock') or e.get('ipAddress')} ({e.get('comment') or 'no comment'})" for e in open_)
        return CheckResult(status="fail", reason="access_list_open", **common,
                           summary=f"the Atlas IP access list allows the whole internet: {what}; remove it and "
                                   "list the app's egress IPs")
    return CheckResult(status="ok", critical=False, **common,
                       summary=f"the Atlas IP access list has {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}, "
                               "none open to the whole internet")


def s3_public_access(bucket: str, block: dict[str, Any] | None, runbook: str = RUNBOOK) -> CheckResult:
    flags = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    off = [f for f in flags if not (block or {}).get(f)]
    common = dict(check=f"security.s3.{bucket}.public_access", target=f"s3://{bucket}", group="security",
                  runbook=runbook, provider="storage", evidence={"public_access_block": block})
    if off:
        what = "no public access block at all" if block is None else f"{', '.join(off)} off"
        return CheckResult(status="fail", reason="public_access", **common,
                           summary=f"s3://{bucket}: public access not blocked ({what})")
    return CheckResult(status="ok", critical=False, summary=f"s3://{bucket}: all four public access blocks on", **common)


def r2_public_access(bucket: str, managed: dict[str, Any], custom: list[dict[str, Any]],
                     runbook: str = RUNBOOK) -> CheckResult:
    """managed: the r2.dev domain ({domain, enabled}); custom: custom domains (intended public access)."""
    common = dict(check=f"security.r2.{bucket}.public_access", target=f"r2://{bucket}", group="security",
                  runbook=runbook, provider="storage",
                  evidence={"r2_dev": managed, "custom_domains": [d.get("domain") for d in custom]})
    if managed.get("enabled"):
        return CheckResult(status="fail", reason="public_access", **common,
                           summary=f"r2://{bucket}: public through {managed.get('domain') or 'its r2.dev URL'}; "
                                   "turn off the r2.dev public URL")
    domains = [str(d.get("domain")) for d in custom if d.get("enabled", True)]
    extra = f"; served on custom domain(s) {', '.join(domains)}" if domains else ""
    return CheckResult(status="ok", critical=False, summary=f"r2://{bucket}: r2.dev public URL off{extra}", **common)
