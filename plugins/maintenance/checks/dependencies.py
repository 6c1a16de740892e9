"""Dependency scan: lock-file parsers, versions, OSV findings, outdated packages (plain functions).

Inputs are the text of lock files (package-lock.json v1/v2/v3, requirements.txt, poetry.lock);
vulnerability ids come from OSV querybatch and details from OSV vulns/{id} (hooks/osv.py), the
latest versions from PyPI and npm (hooks/registries.py). Facts: next-anchors.md section 3,
provider-apis.md section 11. No Airflow here.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Iterable
from urllib.parse import urljoin

from maintenance.results import CheckResult

RUNBOOK_WEEKLY = "maintenance_weekly"
SEVERITIES = ("critical", "high", "moderate", "low", "unknown")
PAGING = ("critical", "high")


class LockFileError(ValueError):
    """A lock file that cannot be read: the message says which and why."""


@dataclass(frozen=True)
class Package:
    name: str
    version: str | None            # None: not pinned (a range in requirements.txt): not audited
    ecosystem: str                 # "PyPI" | "npm"
    direct: bool | None = None     # a direct dependency of the project (None: the lock file does not say)
    dev: bool = False

    @property
    def key(self) -> str:
        return f"{self.ecosystem}:{self.name}@{self.version}"


@dataclass
class Parsed:
    packages: list[Package] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # entries not audited, and why


def normalize_pypi(name: str) -> str:
    """PEP 503 normal form: runs of -, _ and . become -, lower case."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _dedupe(packages: Iterable[Package]) -> list[Package]:
    seen: dict[tuple[str, str, str | None], Package] = {}
    for package in packages:
        key = (package.ecosystem, package.name, package.version)
        old = seen.get(key)
        if old is None:
            seen[key] = package
        else:   # the same name@version reached twice: direct and prod win
            seen[key] = Package(package.name, package.version, package.ecosystem,
                                True if (old.direct or package.direct) else (old.direct if old.direct is not None
                                                                             else package.direct),
                                old.dev and package.dev)
    return list(seen.values())


# -- package-lock.json ------------------------------------------------------------------------------
_SEMVER_LIKE = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?$")


def _name_from_path(path: str) -> str:
    """node_modules/a/node_modules/@s/b -> @s/b (the last segment, with its scope)."""
    tail = path.rsplit("node_modules/", 1)[-1]
    parts = tail.split("/")
    return "/".join(parts[:2]) if parts[0].startswith("@") and len(parts) > 1 else parts[0]


def _npm_version(name: str, version: Any) -> tuple[str, str | None, str | None]:
    """(name, version, why skipped): aliases npm:real@1.2.3 resolved; git/file/URL versions skipped."""
    if not isinstance(version, str) or not version:
        return name, None, "no version"
    if version.startswith("npm:"):
        real, _, ver = version[4:].rpartition("@")
        return (real or name), ver, None if _SEMVER_LIKE.match(ver) else f"alias version {ver!r}"
    if not _SEMVER_LIKE.match(version):
        return name, None, f"not a registry version ({version.split(':', 1)[0]})"
    return name, version, None


def decode_lock_file(raw: bytes, where: str) -> str:
    """A lock file's bytes as text: UTF-8 (a BOM dropped), else a LockFileError naming the file."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LockFileError(f"{where} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None


def parse_package_lock(text: str) -> Parsed:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise LockFileError(f"package-lock.json is not valid JSON: {exc}") from None
    except RecursionError:   # the parser recurses per level: a hostile file nests 100,000 deep
        raise LockFileError("package-lock.json nests too deep to parse (is it a lock file?)") from None
    if not isinstance(data, dict):
        raise LockFileError("package-lock.json: expected a JSON object")
    parsed = Parsed()
    found: list[Package] = []
    packages = data.get("packages")
    if isinstance(packages, dict) and packages:           # lockfileVersion 2 and 3
        root = packages.get("") if isinstance(packages.get(""), dict) else {}
        direct = set()
        for key in ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies"):
            if isinstance(root.get(key), dict):
                direct |= set(root[key])
        for path, meta in packages.items():
            if path == "" or not isinstance(meta, dict):
                continue
            if "node_modules/" not in f"/{path}" and not path.startswith("node_modules"):
                parsed.skipped.append(f"{path}: workspace package (local source)")
                continue
            if meta.get("link"):
                continue   # a symlink to a workspace folder: no version; the target is its own entry
            name = meta.get("name") or _name_from_path(path)
            name, version, why = _npm_version(name, meta.get("version"))
            if version is None:
                parsed.skipped.append(f"{name}: {why}")
                continue
            top_level = path == f"node_modules/{_name_from_path(path)}"
            found.append(Package(name, version, "npm", direct=top_level and _name_from_path(path) in direct,
                                 dev=bool(meta.get("dev") or meta.get("devOptional"))))
    elif isinstance(data.get("dependencies"), dict):      # lockfileVersion 1: a nested tree
        def walk(tree: dict[str, Any], depth: int) -> None:
            for name, meta in tree.items():
                if not isinstance(meta, dict):
                    continue
                real, version, why = _npm_version(name, meta.get("version"))
                if version is None:
                    parsed.skipped.append(f"{name}: {why}")
                else:
                    found.append(Package(real, version, "npm", direct=None if depth == 0 else False,
                                         dev=bool(meta.get("dev"))))
                if isinstance(meta.get("dependencies"), dict):
                    walk(meta["dependencies"], depth + 1)
        walk(data["dependencies"], 0)
    elif "lockfileVersion" not in data:
        raise LockFileError("package-lock.json: neither 'packages' nor 'dependencies' (is it a lock file?)")
    parsed.packages = _dedupe(found)
    return parsed


# -- requirements.txt ------------------------------------------------------------------------------
_REQ = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def parse_requirements(text: str, *, read_include: Callable[[str], str | None] | None = None,
                       _seen: set[str] | None = None) -> Parsed:
    """osv-scanner's rules: -r includes followed, comments, extras, markers and hashes stripped,
    ${VAR} lines skipped; == (and ===) pins give the version, a range gives no version."""
    parsed, seen = Parsed(), _seen if _seen is not None else set()
    logical = re.sub(r"\\\r?\n", " ", text)
    for raw in logical.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        if "${" in line:
            parsed.skipped.append(f"{line[:60]}: environment variable")
            continue
        include = re.match(r"^(?:-r|--requirement)(?:\s+|=)(\S+)", line)
        if include:
            target = include.group(1)
            if target in seen:
                continue
            seen.add(target)
            body = read_include(target) if read_include else None
            if body is None:
                parsed.skipped.append(f"-r {target}: include not readable")
                continue
            nested = parse_requirements(body, read_include=read_include, _seen=seen)
            parsed.packages += nested.packages
            parsed.skipped += nested.skipped
            continue
        if line.startswith("-"):
            continue   # -c, -e, --index-url, --hash lines and other options
        line = line.split(";", 1)[0].strip()             # environment markers
        line = re.sub(r"\s--hash[=\s]\S+", "", line).strip()
        match = _REQ.match(line)
        if not match:
            parsed.skipped.append(f"{line[:60]}: not a requirement")
            continue
        name, spec = normalize_pypi(match.group(1)), match.group(3).strip()
        if spec.startswith("@"):
            parsed.skipped.append(f"{name}: direct URL reference")
            continue
        pin = re.fullmatch(r"===?\s*([^\s,*]+)", spec)
        parsed.packages.append(Package(name, pin.group(1) if pin else None, "PyPI", direct=True))
        if not pin:
            parsed.skipped.append(f"{name}: not pinned ({spec or 'any version'}): not audited")
    parsed.packages = _dedupe(parsed.packages)
    return parsed


# -- poetry.lock --------------------------------------------------------------------------------------
def parse_poetry_lock(text: str) -> Parsed:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LockFileError(f"poetry.lock is not valid TOML: {exc}") from None
    except RecursionError:   # tomllib recurses per nested array or inline table
        raise LockFileError("poetry.lock nests too deep to parse (is it a lock file?)") from None
    parsed = Parsed()
    for entry in data.get("package") if isinstance(data.get("package"), list) else []:
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        name, version = normalize_pypi(str(entry["name"])), entry.get("version")
        source = entry.get("source") if isinstance(entry.get("source"), dict) else {}
        if source.get("type") in ("git", "directory", "file", "url"):
            parsed.skipped.append(f"{name}: {source['type']} source, not from a registry")
            continue
        if not isinstance(version, str) or not version:
            parsed.skipped.append(f"{name}: no version")
            continue
        groups = entry.get("groups")
        dev = ("main" not in groups) if isinstance(groups, list) and groups else entry.get("category") == "dev"
        parsed.packages.append(Package(name, version, "PyPI", direct=None, dev=dev))
    parsed.packages = _dedupe(parsed.packages)
    return parsed


def detect_format(name: str) -> str:
    base = name.rsplit("/", 1)[-1].split("?", 1)[0].lower()
    if base in ("package-lock.json", "npm-shrinkwrap.json") or base.endswith(".json"):
        return "package-lock"
    if base == "poetry.lock":
        return "poetry"
    return "requirements"


def parse_lock_file(text: str, fmt: str, *, location: str = "",
                    read_include: Callable[[str], str | None] | None = None) -> Parsed:
    fmt = detect_format(location) if fmt == "auto" else fmt
    if fmt == "package-lock":
        return parse_package_lock(text)
    if fmt == "poetry":
        return parse_poetry_lock(text)
    return parse_requirements(text, read_include=read_include)


def include_resolver(location: str, read: Callable[[str], str | None]) -> Callable[[str], str | None]:
    """-r includes are relative to the including file (a path or a URL)."""
    def resolve(target: str) -> str | None:
        if "://" in location:
            return read(urljoin(location, target))
        from pathlib import Path
        return read(str(Path(location).parent / target))
    return resolve


# -- versions -----------------------------------------------------------------------------------------
def _semver_key(version: str) -> tuple[Any, ...] | None:
    match = re.match(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+.*)?$", version.strip())
    if not match:
        return None
    major, minor, patch, pre = match.groups()
    release = (int(major), int(minor or 0), int(patch or 0))
    if pre is None:
        return (*release, 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (*release, 0, ids)


def version_key(version: str, ecosystem: str) -> Any:
    """A sortable key, or None when the version is not understood."""
    if ecosystem == "PyPI":
        from packaging.version import InvalidVersion, Version
        try:
            return Version(version)
        except InvalidVersion:
            return None
    return _semver_key(version)


def release_parts(version: str, ecosystem: str) -> tuple[int, int, int] | None:
    key = version_key(version, ecosystem)
    if key is None:
        return None
    if ecosystem == "PyPI":
        parts = (*key.release, 0, 0)
        return parts[0], parts[1], parts[2]
    return key[0], key[1], key[2]


def _lt(a: str, b: str, ecosystem: str) -> bool | None:
    ka, kb = version_key(a, ecosystem), version_key(b, ecosystem)
    if ka is None or kb is None:
        return None
    return ka < kb


# -- vulnerabilities ------------------------------------------------------------------------------------
_GHSA = {"LOW": "low", "MODERATE": "moderate", "MEDIUM": "moderate", "HIGH": "high", "CRITICAL": "critical"}


def _from_score(score: float) -> str:
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "moderate"
    return "low"


def severity(record: dict[str, Any]) -> tuple[str, str]:
    """(severity, source): GHSA's database_specific.severity, else computed from the CVSS
    vector (the maintained `cvss` library), else "unknown"."""
    for where in [record.get("database_specific")] + [a.get("database_specific") for a in record.get("affected") or []
                                                      if isinstance(a, dict)]:
        value = where.get("severity") if isinstance(where, dict) else None
        if isinstance(value, str) and value.upper() in _GHSA:
            return _GHSA[value.upper()], "advisory"
    for item in record.get("severity") or []:
        if not isinstance(item, dict) or not isinstance(item.get("score"), str):
            continue
        vector, kind = item["score"].strip(), str(item.get("type", "")).upper()
        try:
            import cvss
            if kind == "CVSS_V4" or vector.startswith("CVSS:4"):
                return _from_score(float(cvss.CVSS4(vector).base_score)), "cvss_v4"
            if kind == "CVSS_V3" or vector.startswith("CVSS:3"):
                return _from_score(float(cvss.CVSS3(vector).base_score)), "cvss_v3"
            if kind == "CVSS_V2":
                return _from_score(float(cvss.CVSS2(vector).base_score)), "cvss_v2"
        except Exception:  # noqa: BLE001 - cvss raises its own errors for malformed vectors
            continue
    return "unknown", "none"


def fixed_in(record: dict[str, Any], package: Package) -> str | None:
    """The first fixed version of the affected range holding the installed version (None: no fix)."""
    candidates: list[str] = []
    for affected in record.get("affected") or []:
        if not isinstance(affected, dict):
            continue
        pkg = affected.get("package") or {}
        name = str(pkg.get("name", ""))
        same = normalize_pypi(name) == package.name if package.ecosystem == "PyPI" else name == package.name
        if not same or str(pkg.get("ecosystem", package.ecosystem)) != package.ecosystem:
            continue
        for rng in affected.get("ranges") or []:
            if not isinstance(rng, dict) or rng.get("type") == "GIT":
                continue
            introduced: str | None = None
            for event in rng.get("events") or []:
                if not isinstance(event, dict):
                    continue
                if "introduced" in event:
                    introduced = str(event["introduced"])
                elif "fixed" in event and introduced is not None:
                    fix = str(event["fixed"])
                    # introduced <= installed < fixed
                    after = introduced == "0" or _lt(package.version or "", introduced, package.ecosystem) is False
                    if after and _lt(package.version or "", fix, package.ecosystem):
                        return fix
                    candidates.append(fix)
                    introduced = None
                elif "last_affected" in event:
                    introduced = None
    later = [c for c in candidates if _lt(package.version or "", c, package.ecosystem)]
    if later:
        return min(later, key=lambda v: version_key(v, package.ecosystem))
    return None


@dataclass
class IgnoreRule:
    id: str
    reason: str
    until: date | None = None


@dataclass
class Finding:
    package: str
    ecosystem: str
    version: str
    advisory: str
    aliases: list[str]
    severity: str
    severity_source: str
    fixed_in: str | None
    summary: str
    source: str = ""
    dev: bool = False
    ignored: str | None = None          # the reason, while an ignore rule is in force
    ignore_expired: str | None = None   # the date an ignore rule ran out

    @property
    def key(self) -> str:
        return f"{self.ecosystem}:{self.package}@{self.version}:{self.advisory}"

    def line(self) -> str:
        fix = f"fixed in {self.fixed_in}" if self.fixed_in else "no fix yet"
        also = f" ({', '.join(self.aliases[:2])})" if self.aliases else ""
        return f"{self.package} {self.version}: {self.advisory}{also} {self.severity}, {fix}"

    def to_dict(self) -> dict[str, Any]:
        return {"package": self.package, "ecosystem": self.ecosystem, "installed": self.version,
                "fixed_in": self.fixed_in, "severity": self.severity, "severity_source": self.severity_source,
                "advisory": self.advisory, "aliases": self.aliases, "summary": self.summary, "dev": self.dev,
                "ignored": self.ignored, "ignore_expired": self.ignore_expired}


def _ignore_for(ids: set[str], rules: list[IgnoreRule]) -> IgnoreRule | None:
    return next((r for r in rules if r.id in ids), None)


def findings(packages: list[Package], ids_per_package: list[list[str]], records: dict[str, dict[str, Any]],
             *, ignore: list[IgnoreRule] = (), today: date, source: str = "") -> list[Finding]:
    """One finding per (package, advisory). ids_per_package[i] belongs to packages[i]."""
    out: list[Finding] = []
    for package, ids in zip(packages, ids_per_package):
        for vid in dict.fromkeys(ids):
            record = records.get(vid) or {"id": vid}
            aliases = [a for a in record.get("aliases") or [] if isinstance(a, str)]
            level, how = severity(record)
            finding = Finding(package.name, package.ecosystem, package.version or "", vid, aliases, level, how,
                              fixed_in(record, package), str(record.get("summary") or "")[:200], source, package.dev)
            rule = _ignore_for({vid, *aliases}, list(ignore))
            if rule is not None:
                if rule.until is not None and rule.until < today:
                    finding.ignore_expired = rule.until.isoformat()
                else:
                    finding.ignored = rule.reason
            out.append(finding)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(out, key=lambda f: (order.get(f.severity, 9), f.package, f.advisory))


def judge_vulnerabilities(source: str, target: str, found: list[Finding], previous: set[str] | None,
                          *, audited: int, skipped: list[str], runbook: str = RUNBOOK_WEEKLY,
                          paged_before: set[str] | None = None) -> CheckResult:
    """Fail while a critical/high vulnerability with a fix is in the lock file; page only for new ones.

    `previous`: the finding keys of the last scan (None: this is the first scan, all is new).
    `paged_before`: the keys the last scan failed for (None: taken as `previous`).
    A failing finding stays failing, and so its incident open, until the lock file no longer has
    it (or an ignore rule covers it); `evidence["repage"]` says whether this scan found one the
    last did not fail for, the only reason to page again (operators/dependencies.py).
    Everything else (no fix, lower severity, ignored) is a warn for the digest.
    """
    open_ = [f for f in found if f.ignored is None]
    ignored = [f for f in found if f.ignored is not None]
    seen = previous or set()
    paged = seen if paged_before is None else paged_before
    new = [f for f in open_ if f.key not in seen]
    failing = [f for f in open_ if f.severity in PAGING and f.fixed_in]
    repage = [f for f in failing if f.key not in paged]
    counts = {s: sum(1 for f in open_ if f.severity == s) for s in SEVERITIES}
    metrics = {"packages": audited, "vulnerabilities": len(open_), "new": len(new), "ignored": len(ignored),
               "failing": len(failing), "not_audited": len(skipped), **{f"sev_{s}": n for s, n in counts.items()}}
    evidence = {"findings": [f.to_dict() for f in open_], "ignored": [f.to_dict() for f in ignored],
                "new": [f.key for f in new], "finding_keys": sorted(f.key for f in open_),
                "failing_keys": sorted(f.key for f in failing), "repage": bool(repage),
                "not_audited": skipped[:100]}
    common = dict(check=f"dependencies.vulnerabilities.{source}", target=target, group="dependencies",
                  runbook=runbook, metrics=metrics, evidence=evidence)
    expired = [f for f in open_ if f.ignore_expired]
    tail = f" ({len(ignored)} ignored)" if ignored else ""
    if expired:
        tail += "; ignore expired for " + ", ".join(f"{f.advisory} (since {f.ignore_expired})" for f in expired[:5])
    if repage:
        lines = "; ".join(f.line() for f in repage[:5])
        known = len(failing) - len(repage)
        also = f" ({known} known one(s) still open)" if known else ""
        return CheckResult(status="fail", reason="new_vulnerability", critical=True, **common,
                           summary=f"{source}: {len(repage)} new critical/high vulnerabilit"
                                   f"{'y' if len(repage) == 1 else 'ies'} with a fix{also}: {lines}{tail}")
    if failing:
        lines = "; ".join(f.line() for f in failing[:5])
        return CheckResult(status="fail", reason="open_vulnerability", critical=True, **common,
                           summary=f"{source}: {len(failing)} critical/high vulnerabilit"
                                   f"{'y' if len(failing) == 1 else 'ies'} with a fix still open "
                                   f"(already alerted): {lines}{tail}")
    if open_:
        level = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        lines = "; ".join(f.line() for f in (new or open_)[:5])
        return CheckResult(status="warn", reason="vulnerabilities", critical=False, **common,
                           summary=f"{source}: {len(open_)} open vulnerabilit{'y' if len(open_) == 1 else 'ies'} "
                                   f"({level}; {len(new)} new): {lines}{tail}")
    return CheckResult(status="ok", critical=False, **common,
                       summary=f"{source}: no known vulnerabilities in {audited} package(s){tail}")


# -- outdated ------------------------------------------------------------------------------------------------
def behind(installed: str, latest: str, ecosystem: str) -> str | None:
    """"major" | "minor" | "patch" | None (up to date or not comparable)."""
    if _lt(installed, latest, ecosystem) is not True:
        return None
    a, b = release_parts(installed, ecosystem), release_parts(latest, ecosystem)
    if a is None or b is None:
        return None
    if b[0] > a[0]:
        return "major"
    if b[1] > a[1]:
        return "minor"
    return "patch"


def outdated_candidates(packages: list[Package], limit: int) -> tuple[list[Package], int]:
    """The packages whose latest version is looked up: direct ones where the lock file says,
    else all; at most `limit` (returns the cut count too)."""
    pinned = [p for p in packages if p.version]
    known = [p for p in pinned if p.direct is not None]
    chosen = [p for p in pinned if p.direct] if known else pinned
    return chosen[:limit], max(0, len(chosen) - limit)


def judge_outdated(source: str, target: str, packages: list[Package], latest: dict[str, str | None],
                   errors: dict[str, str], *, cut: int = 0, runbook: str = RUNBOOK_WEEKLY) -> CheckResult:
    """latest: package name -> latest version (None: unknown); errors: name -> reason."""
    rows = []
    for package in packages:
        newest = latest.get(package.name)
        level = behind(package.version or "", newest, package.ecosystem) if newest else None
        if level:
            rows.append({"package": package.name, "installed": package.version, "latest": newest, "behind": level,
                         "ecosystem": package.ecosystem, "dev": package.dev})
    order = {"major": 0, "minor": 1, "patch": 2}
    rows.sort(key=lambda r: (order[r["behind"]], r["package"]))
    counts = {k: sum(1 for r in rows if r["behind"] == k) for k in order}
    metrics = {"checked": len(packages), "outdated": len(rows), **{f"{k}_behind": v for k, v in counts.items()},
               "lookup_errors": len(errors)}
    evidence = {"outdated": rows, "lookup_errors": dict(list(errors.items())[:50]), "not_looked_up": cut}
    common = dict(check=f"dependencies.outdated.{source}", target=target, group="dependencies", runbook=runbook,
                  critical=False, metrics=metrics, evidence=evidence)
    notes = []
    if errors:
        notes.append(f"{len(errors)} lookup(s) failed")
    if cut:
        notes.append(f"{cut} not looked up (limit)")
    note = f" ({'; '.join(notes)})" if notes else ""
    if not rows:
        status = "warn" if errors and len(errors) == len(packages) else "ok"
        return CheckResult(status=status, reason="lookup_failed" if status == "warn" else None, **common,
                           summary=f"{source}: {len(packages)} package(s) up to date{note}")
    listed = ", ".join(f"{r['package']} {r['installed']} -> {r['latest']}" for r in rows[:6])
    return CheckResult(status="warn", reason="outdated", **common,
                       summary=f"{source}: {len(rows)} of {len(packages)} behind ({counts['major']} major, "
                               f"{counts['minor']} minor, {counts['patch']} patch): {listed}{note}")


def input_failed(source: str, target: str, reason: str, message: str, runbook: str = RUNBOOK_WEEKLY) -> CheckResult:
    return CheckResult(check=f"dependencies.vulnerabilities.{source}", target=target, group="dependencies",
                       status="fail", reason=reason, summary=f"{source}: {message}", runbook=runbook)


# -- the scan ----------------------------------------------------------------------------------------------
@dataclass
class VulnScan:
    ids: list[list[str]]                          # per package, its advisory ids
    records: dict[str, dict[str, Any]]            # id -> OSV record
    errors: dict[str, str]                        # id -> why its details are missing
    fetched: int = 0                              # details fetched now
    cached: int = 0                               # details served from the cache


def scan_vulnerabilities(packages: list[Package], *,
                         vuln_ids: Callable[[list[tuple[str, str, str]]], list[list[tuple[str, str]]]],
                         fetch: Callable[[list[str]], tuple[dict[str, dict[str, Any]], dict[str, str]]],
                         cached: Callable[[list[str]], dict[str, tuple[str, dict[str, Any]]]],
                         save: Callable[[dict[str, tuple[str, dict[str, Any]]]], None]) -> VulnScan:
    """Ids for every pinned package in as few batch queries as the transport allows, then the
    details of the advisories not cached yet (or modified since): an unchanged advisory is
    never fetched twice."""
    pinned = [(p.ecosystem, p.name, p.version) for p in packages if p.version]
    answers = iter(vuln_ids(pinned) if pinned else [])
    per_package: list[list[tuple[str, str]]] = [next(answers) if p.version else [] for p in packages]
    modified: dict[str, str] = {}
    for refs in per_package:
        for vid, mod in refs:
            modified[vid] = mod
    known = cached(list(modified))
    records = {vid: record for vid, (mod, record) in known.items() if vid in modified and mod == modified[vid]}
    missing = [vid for vid in modified if vid not in records]
    fresh, errors = fetch(missing) if missing else ({}, {})
    save({vid: (str(modified.get(vid) or record.get("modified") or ""), record) for vid, record in fresh.items()})
    for vid, (mod, record) in known.items():   # a refresh that failed: the stale record is better than none
        if vid not in records and vid not in fresh:
            records[vid] = record
    records.update(fresh)
    return VulnScan([[vid for vid, _ in refs] for refs in per_package], records, errors,
                    fetched=len(fresh), cached=len(modified) - len(missing))
