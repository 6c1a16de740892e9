"""Lock-file parsers, versions, severity, fixed-in, ignore expiry and "only new" judgement."""

from __future__ import annotations

import json
from datetime import date

import pytest

from maintenance.checks.dependencies import (
    Finding, IgnoreRule, LockFileError, Package, behind, findings, fixed_in, judge_outdated, judge_vulnerabilities,
    outdated_candidates, parse_lock_file, parse_package_lock, parse_poetry_lock, parse_requirements,
    scan_vulnerabilities, severity,
)
from osv_server import advisory

LOCK_V3 = {
    "name": "web", "version": "1.0.0", "lockfileVersion": 3, "requires": True,
    "packages": {
        "": {"name": "web", "version": "1.0.0", "workspaces": ["packages/*"],
             "dependencies": {"next": "^15.0.0", "@babel/core": "^7.0.0", "ui": "*"},
             "devDependencies": {"jest": "^29.0.0"}},
        "node_modules/next": {"version": "15.0.1", "resolved": "https://registry.npmjs.org/next/-/next-15.0.1.tgz"},
        "node_modules/@babel/core": {"version": "7.22.0"},
        "node_modules/jest": {"version": "29.7.0", "dev": True},
        "node_modules/next/node_modules/semver": {"version": "6.3.0"},
        "node_modules/semver": {"version": "7.6.0"},
        "node_modules/@babel/core/node_modules/semver": {"version": "6.3.0"},
        "node_modules/ui": {"resolved": "packages/ui", "link": True},
        "packages/ui": {"name": "ui", "version": "0.1.0"},
        "node_modules/string-width-cjs": {"name": "string-width", "version": "4.2.3"},
        "node_modules/from-git": {"version": "git+ssh://git@github.com/acme/x.git#abc"},
    },
}

LOCK_V1 = {
    "name": "old", "version": "1.0.0", "lockfileVersion": 1,
    "dependencies": {
        "lodash": {"version": "4.17.20", "integrity": "sha512-x"},
        "@types/node": {"version": "18.0.0", "dev": True},
        "express": {"version": "4.17.1", "requires": {"qs": "6.7.0"},
                    "dependencies": {"qs": {"version": "6.7.0"}}},
        "my-alias": {"version": "npm:left-pad@1.3.0"},
        "local": {"version": "file:../local"},
    },
}


def keyset(parsed):
    return {(p.name, p.version) for p in parsed.packages}


def test_package_lock_v3_paths_scopes_links_and_nesting():
    parsed = parse_package_lock(json.dumps(LOCK_V3))
    assert keyset(parsed) == {("next", "15.0.1"), ("@babel/core", "7.22.0"), ("jest", "29.7.0"),
                              ("semver", "6.3.0"), ("semver", "7.6.0"), ("string-width", "4.2.3")}
    by = {(p.name, p.version): p for p in parsed.packages}
    assert by[("next", "15.0.1")].direct and by[("@babel/core", "7.22.0")].direct
    assert by[("jest", "29.7.0")].dev and by[("jest", "29.7.0")].direct
    assert by[("semver", "6.3.0")].direct is False          # nested twice, deduplicated once
    assert any("packages/ui" in s for s in parsed.skipped) and any("from-git" in s for s in parsed.skipped)


def test_package_lock_v2_reads_packages_and_v1_walks_the_tree():
    v2 = dict(LOCK_V3, lockfileVersion=2, dependencies={"next": {"version": "15.0.1"}})
    assert keyset(parse_package_lock(json.dumps(v2))) == keyset(parse_package_lock(json.dumps(LOCK_V3)))
    parsed = parse_package_lock(json.dumps(LOCK_V1))
    assert keyset(parsed) == {("lodash", "4.17.20"), ("@types/node", "18.0.0"), ("express", "4.17.1"),
                              ("qs", "6.7.0"), ("left-pad", "1.3.0")}
    assert any("local" in s for s in parsed.skipped)
    by = {p.name: p for p in parsed.packages}
    assert by["qs"].direct is False and by["lodash"].direct is None and by["@types/node"].dev


@pytest.mark.parametrize("text", ["{not json", "[]", '{"name": "x"}'])
def test_malformed_package_lock_is_a_clear_error(text):
    with pytest.raises(LockFileError):
        parse_package_lock(text)


def test_requirements_rules_and_includes():
    files = {"base.txt": "Jinja2==3.1.4  # templating\n-r base.txt\n", "dev.txt": "pytest>=8\n"}
    text = (
        "# comment\n"
        "requests[socks]==2.31.0 ; python_version >= '3.8' \\\n    --hash=sha256:abc\n"
        "Flask_Login===0.6.3\n"
        "urllib3>=1.26,<3\n"
        "-r base.txt\n--requirement=dev.txt\n-r missing.txt\n"
        "${SECRET_PKG}==1.0\n"
        "--index-url https://example.org/simple\n"
        "mypkg @ https://example.org/mypkg.whl\n"
        "-e .\n"
    )
    parsed = parse_requirements(text, read_include=files.get)
    assert keyset(parsed) == {("requests", "2.31.0"), ("flask-login", "0.6.3"), ("urllib3", None),
                              ("jinja2", "3.1.4"), ("pytest", None)}
    reasons = " | ".join(parsed.skipped)
    assert "missing.txt" in reasons and "environment variable" in reasons and "direct URL" in reasons
    assert "urllib3: not pinned" in reasons


def test_poetry_lock_groups_and_sources():
    text = '''
[[package]]
name = "Django"
version = "4.2.1"
groups = ["main"]

[[package]]
name = "pytest"
version = "8.0.0"
groups = ["dev"]

[[package]]
name = "old-style"
version = "1.0"
category = "dev"

[[package]]
name = "mylib"
version = "0.1.0"
[package.source]
type = "git"
url = "https://github.com/acme/mylib.git"
'''
    parsed = parse_poetry_lock(text)
    by = {p.name: p for p in parsed.packages}
    assert set(by) == {"django", "pytest", "old-style"} and not by["django"].dev and by["pytest"].dev
    assert by["old-style"].dev and any("git source" in s for s in parsed.skipped)
    with pytest.raises(LockFileError):
        parse_poetry_lock("[[package]\nname=")


def test_format_is_detected_from_the_name():
    assert keyset(parse_lock_file(json.dumps(LOCK_V1), "auto", location="https://raw/x/package-lock.json"))
    assert keyset(parse_lock_file("a==1\n", "auto", location="reqs/prod.txt")) == {("a", "1")}


def test_severity_from_advisory_then_cvss_then_unknown():
    assert severity(advisory("GHSA-1", "x", "npm", [], severity="MODERATE")) == ("moderate", "advisory")
    v3 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert severity(advisory("PYSEC-1", "x", "PyPI", [], cvss=v3)) == ("critical", "cvss_v3")
    v4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N"
    assert severity(advisory("PYSEC-2", "x", "PyPI", [], cvss=v4))[1] == "cvss_v4"
    broken = advisory("PYSEC-3", "x", "PyPI", [])
    broken["severity"] = [{"type": "CVSS_V3", "score": "CVSS:3.1/garbage"}]
    assert severity(broken) == ("unknown", "none")


def test_fixed_in_picks_the_range_holding_the_installed_version():
    record = advisory("GHSA-2", "jinja2", "PyPI", ["2.0", "3.0.0"])
    record["affected"][0]["ranges"][0]["events"] = [{"introduced": "0"}, {"fixed": "2.11.3"},
                                                    {"introduced": "3.0.0"}, {"fixed": "3.1.3"}]
    assert fixed_in(record, Package("jinja2", "3.0.0", "PyPI")) == "3.1.3"
    assert fixed_in(record, Package("jinja2", "2.0", "PyPI")) == "2.11.3"
    npm = advisory("GHSA-3", "semver", "npm", ["6.3.0"], fixed="6.3.1")
    assert fixed_in(npm, Package("semver", "6.3.0", "npm")) == "6.3.1"
    last = advisory("GHSA-4", "semver", "npm", ["6.3.0"])
    last["affected"][0]["ranges"][0]["events"].append({"last_affected": "6.3.0"})
    assert fixed_in(last, Package("semver", "6.3.0", "npm")) is None


def test_behind_major_minor_patch_with_prereleases():
    assert behind("1.2.3", "2.0.0", "npm") == "major"
    assert behind("1.2.3", "1.3.0", "npm") == "minor"
    assert behind("1.2.3", "1.2.4", "npm") == "patch"
    assert behind("1.2.3", "1.2.3", "npm") is None and behind("2.0.0", "2.0.0-rc.1", "npm") is None
    assert behind("2.0.0-rc.1", "2.0.0", "npm") == "patch"
    assert behind("2.31.0", "2.32.3", "PyPI") == "minor" and behind("1.0", "1.0.post1", "PyPI") == "patch"


def _finding(sev, fix, pkg="next", vid="GHSA-a"):
    return Finding(pkg, "npm", "15.0.1", vid, ["CVE-1"], sev, "advisory", fix, "", "app")


def test_only_new_critical_with_a_fix_fails_and_ignores_expire():
    today = date(2026, 11, 30)
    pkgs = [Package("next", "15.0.1", "npm"), Package("lodash", "4.17.20", "npm")]
    records = {"GHSA-a": advisory("GHSA-a", "next", "npm", ["15.0.1"], fixed="15.0.3", severity="CRITICAL",
                                  aliases=["CVE-2026-1"]),
               "GHSA-b": advisory("GHSA-b", "lodash", "npm", ["4.17.20"], fixed="4.17.21", severity="HIGH")}
    found = findings(pkgs, [["GHSA-a"], ["GHSA-b"]], records, today=today, source="app",
                     ignore=[IgnoreRule("CVE-2026-1", "not reachable", date(2026, 12, 31)),
                             IgnoreRule("GHSA-b", "waiting for upstream", date(2026, 11, 1))])
    first = judge_vulnerabilities("app", "lock", found, None, audited=2, skipped=[])
    assert first.status == "fail" and "lodash 4.17.20: GHSA-b high, fixed in 4.17.21" in first.summary
    assert "ignore expired for GHSA-b (since 2026-11-01)" in first.summary and "(1 ignored)" in first.summary
    assert first.evidence["ignored"][0]["ignored"] == "not reachable"
    assert first.evidence["repage"] is True
    # the next scan: the same finding is still there, so still failing, but nothing to page again
    again = judge_vulnerabilities("app", "lock", found, set(first.evidence["finding_keys"]), audited=2, skipped=[],
                                  paged_before=set(first.evidence["failing_keys"]))
    assert again.status == "fail" and again.reason == "open_vulnerability" and again.evidence["repage"] is False
    assert again.metrics["new"] == 0 and "still open (already alerted)" in again.summary
    # a known critical that gains a fix is new to page for, though it is not a new finding
    no_fix_yet = [_finding("critical", None)]
    before = judge_vulnerabilities("app", "lock", no_fix_yet, None, audited=1, skipped=[])
    fixable = judge_vulnerabilities("app", "lock", [_finding("critical", "15.0.3")], set(before.evidence["finding_keys"]),
                                    audited=1, skipped=[], paged_before=set(before.evidence["failing_keys"]))
    assert fixable.status == "fail" and fixable.reason == "new_vulnerability" and fixable.metrics["new"] == 0
    no_fix = [_finding("critical", None)]
    assert judge_vulnerabilities("app", "lock", no_fix, None, audited=1, skipped=[]).status == "warn"
    low = [_finding("low", "15.0.3")]
    assert judge_vulnerabilities("app", "lock", low, None, audited=1, skipped=[]).status == "warn"
    assert judge_vulnerabilities("app", "lock", [], None, audited=3, skipped=[]).status == "ok"


def test_outdated_direct_first_and_limited():
    pkgs = [Package("a", "1.0.0", "npm", direct=True), Package("b", "1.0.0", "npm", direct=False),
            Package("c", "2.0.0", "npm", direct=True)]
    chosen, cut = outdated_candidates(pkgs, 1)
    assert [p.name for p in chosen] == ["a"] and cut == 1
    result = judge_outdated("app", "t", pkgs[:1] + pkgs[2:], {"a": "3.0.0", "c": "2.0.1"}, {})
    assert result.status == "warn" and result.metrics["major_behind"] == 1 and result.metrics["patch_behind"] == 1
    assert "a 1.0.0 -> 3.0.0" in result.summary


def test_scan_uses_the_cache_for_unchanged_advisories():
    pkgs = [Package("next", "15.0.1", "npm"), Package("x", None, "PyPI")]
    cache: dict = {"GHSA-a": ("2026-01-01T00:00:00Z", {"id": "GHSA-a", "summary": "old"}),
                   "GHSA-b": ("2026-01-01T00:00:00Z", {"id": "GHSA-b", "summary": "cached"})}
    asked: list = []

    def fetch(ids):
        asked.extend(ids)
        return {i: {"id": i, "summary": "new"} for i in ids}, {}

    outcome = scan_vulnerabilities(
        pkgs, vuln_ids=lambda items: [[("GHSA-a", "2026-06-01T00:00:00Z"), ("GHSA-b", "2026-01-01T00:00:00Z")]],
        fetch=fetch, cached=lambda ids: {i: cache[i] for i in ids if i in cache}, save=cache.update)
    assert asked == ["GHSA-a"] and outcome.fetched == 1 and outcome.cached == 1
    assert outcome.records["GHSA-b"]["summary"] == "cached" and cache["GHSA-a"][0] == "2026-06-01T00:00:00Z"
    assert outcome.ids == [["GHSA-a", "GHSA-b"], []]
