"""The Observatory-style grade, exposed-file signatures, TLS and configuration judgements."""

from __future__ import annotations

import pytest

from maintenance.checks.security import (
    SiteFacts, atlas_access_list, exposed_result, grade_result, judge_exposed, observatory, r2_public_access,
    s3_public_access, tls_result,
)

GOOD = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; frame-ancestors 'none'",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def by_test(facts):
    return {t.name: t for t in observatory(facts)[2]}


def test_a_bare_site_scores_d_and_names_every_fix():
    score, grade, tests = observatory(SiteFacts("https://a.example/", {}, [], ["https://a.example/"], 301))
    assert (score, grade) == (30, "D")
    failed = {t.result: t.fix for t in tests if t.modifier < 0}
    assert set(failed) == {"csp-not-implemented", "hsts-not-implemented", "x-content-type-options-not-implemented",
                           "x-frame-options-not-implemented"}
    assert all(failed.values())


def test_a_hardened_site_scores_a_plus_and_bonuses_need_90_first():
    cookies = ["__Host-sess=1; Path=/; Secure; HttpOnly; SameSite=Lax"]
    assert observatory(SiteFacts("https://a.example/", GOOD, cookies, ["https://a.example/"], 301))[:2] == (135, "A+")
    # one -20 (no redirect to https) leaves 80 < 90: bonuses do not count
    assert observatory(SiteFacts("https://a.example/", GOOD, cookies, [], 200))[:2] == (80, "B+")


def test_cookie_rules_take_the_worst():
    hsts_ok = dict(GOOD)
    facts = SiteFacts("https://a.example/", hsts_ok, ["sessionid=x; Path=/"])
    assert by_test(facts)["cookies"].result == "cookies-session-without-httponly-flag"   # -30 beats -10 (HSTS)
    weak = {"Strict-Transport-Security": "max-age=3600"}
    facts = SiteFacts("https://a.example/", weak, ["sessionid=x; Path=/", "theme=dark; Secure"])
    assert by_test(facts)["cookies"].modifier == -40
    facts = SiteFacts("https://a.example/", GOOD, ["csrftoken=x; Secure"])
    assert by_test(facts)["cookies"].result == "cookies-anticsrf-without-samesite-flag"


def test_csp_redirection_referrer_and_cors_variants():
    unsafe = {"Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'"}
    assert by_test(SiteFacts("https://a/", unsafe))["content-security-policy"].modifier == -20
    hashed = {"Content-Security-Policy": "script-src 'self' 'unsafe-inline' 'nonce-abc'"}
    assert by_test(SiteFacts("https://a/", hashed))["content-security-policy"].modifier == 5
    report = {"Content-Security-Policy-Report-Only": "default-src 'self'"}
    assert by_test(SiteFacts("https://a/", report))["content-security-policy"].modifier == -25
    assert by_test(SiteFacts("https://a/", {}, [], ["http://a/x"]))["redirection"].modifier == -20
    assert by_test(SiteFacts("https://a/", {}, [], ["https://other/"]))["redirection"].modifier == -5
    assert by_test(SiteFacts("https://a/", {"Referrer-Policy": "unsafe-url"}))["referrer-policy"].modifier == -5
    assert by_test(SiteFacts("https://a/", {}, cors_reflected=True))["cross-origin-resource-sharing"].modifier == -50
    assert by_test(SiteFacts("https://a/", {"Cross-Origin-Opener-Policy": "bogus"}))[
        "cross-origin-opener-policy"].modifier == -5


def test_a_grade_drop_fails_once_and_weak_grades_warn():
    facts = SiteFacts("https://a.example/", GOOD, [], ["https://a.example/"], 301)
    assert grade_result(facts, None).status == "ok"
    worse = SiteFacts("https://a.example/", {**GOOD, "X-Content-Type-Options": "bogus"}, [], [], 200)
    dropped = grade_result(worse, "A+")
    assert dropped.status == "fail" and dropped.reason == "grade_dropped" and dropped.summary.startswith(
        "grade dropped A+ -> B (score 75) since the last scan; failed: redirection -20")
    weak = grade_result(SiteFacts("https://a.example/", {"Strict-Transport-Security": "max-age=63072000"},
                                  [], ["https://a.example/"], 301), "C")
    assert weak.status == "warn" and weak.reason == "weak_headers" and weak.evidence["grade"] == "C"


def test_a_grade_at_or_below_page_below_pages():
    bare = SiteFacts("https://a.example/", {})
    assert observatory(bare)[1] == "D"
    low = grade_result(bare, None)          # default page_below: D
    assert low.status == "fail" and low.reason == "grade_too_low" and low.critical
    assert low.summary.startswith("grade D (score 30), at or below D (security_scan.page_below); failed: ")
    same = grade_result(bare, "D")          # no drop, still at D: the incident stays open
    assert same.status == "fail" and same.reason == "grade_too_low"
    assert grade_result(bare, "D", page_below="F").status == "warn"
    dropped_low = grade_result(bare, "A")   # both a drop and too low: one result
    assert dropped_low.status == "fail" and dropped_low.reason == "grade_dropped"
    assert dropped_low.summary.startswith("grade dropped A -> D (score 30) since the last scan, at or below D ")


def test_page_below_is_a_grade(tmp_path):
    from maintenance.config import ConfigError, load_config

    path = tmp_path / "m.yaml"
    path.write_text('site: {name: a, url: "https://a.example"}\nsecurity_scan: {page_below: C-}\n')
    assert load_config(path).security_scan.page_below == "C-"
    path.write_text('site: {name: a, url: "https://a.example"}\nsecurity_scan: {page_below: E}\n')
    with pytest.raises(ConfigError, match="page_below"):
        load_config(path)


def test_exposed_files_need_their_signature_not_a_200():
    spa = b"<!doctype html><html><body><div id=root></div></body></html>"
    assert judge_exposed("/.git/config", "git", 200, "text/html", spa) is None
    assert judge_exposed("/.env", "env", 200, "text/html", spa) is None
    git = b"[core]\n\trepositoryformatversion = 0\n[remote \"origin\"]\n\turl = git@github.com:acme/web.git\n"
    assert judge_exposed("/.git/config", "git", 200, "text/plain", git) == "git config served (section [core])"
    assert judge_exposed("/.git/config", "git", 404, "text/plain", git) is None
    env = b"# prod\nMONGODB_URI=mongodb+srv://u:SECRET@x\nSTRIPE_SECRET_KEY=sk_live_SECRET\n"
    why = judge_exposed("/.env", "env", 200, "application/octet-stream", env)
    assert why == "environment file served (defines MONGODB_URI, STRIPE_SECRET_KEY)" and "SECRET" not in why.replace(
        "STRIPE_SECRET_KEY", "")
    assert judge_exposed("/backup.zip", "archive", 200, "application/zip", b"PK\x03\x04rest") == "zip archive served"
    assert judge_exposed("/backup.zip", "archive", 200, "text/html", b"PK\x03\x04") is None
    assert judge_exposed("/dump.sql", "custom", 200, "text/plain", b"CREATE TABLE users", r"^CREATE TABLE") is not None
    result = exposed_result("https://a/", [{"path": "/.env", "why": "environment file served"}], 8, [])
    assert result.status == "fail" and result.reason == "exposed_file"


def test_tls_findings():
    good = tls_result("https://a/", {"chain_ok": True, "days_left": 80.2, "legacy": [], "version": "TLSv1.3"}, 30)
    assert good.status == "ok" and "80 more day" in good.summary
    legacy = tls_result("https://a/", {"chain_ok": True, "days_left": 80, "legacy": ["TLSv1", "TLSv1.1"]}, 30)
    assert legacy.status == "warn" and "TLSv1 and TLSv1.1 still offered" in legacy.summary
    bad = tls_result("https://a/", {"chain_ok": False, "chain_error": "self-signed certificate", "days_left": 3,
                                    "legacy": []}, 30)
    assert bad.status == "fail" and "does not validate (self-signed" in bad.summary and "3 day" in bad.summary
    down = tls_result("https://a/", {"error": "connection refused", "reason": "refused"}, 30)
    assert down.status == "fail" and down.reason == "refused"


def test_configuration_checks():
    entries = [{"cidrBlock": "203.0.113.0/24", "comment": "office"}, {"cidrBlock": "0.0.0.0/0", "comment": "debug"}]
    opened = atlas_access_list(entries, "p1")
    assert opened.status == "fail" and "0.0.0.0/0 (debug)" in opened.summary
    assert atlas_access_list(entries[:1], "p1").status == "ok"
    assert s3_public_access("b", None).status == "fail"
    partial = s3_public_access("b", {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False,
                                     "RestrictPublicBuckets": True})
    assert partial.status == "fail" and "BlockPublicPolicy off" in partial.summary
    assert r2_public_access("b", {"domain": "pub-b.r2.dev", "enabled": True}, []).status == "fail"
    assert r2_public_access("b", {"enabled": False}, [{"domain": "cdn.example", "enabled": True}]).status == "ok"
