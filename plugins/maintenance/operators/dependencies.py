"""maintenance_weekly's check_dependency_updates and maintenance_monthly's dependency_updates:
vulnerabilities (OSV) and outdated packages (PyPI, npm) of the orchestrator and the app."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from maintenance.operators.review import ReviewOperator

if TYPE_CHECKING:   # what runs imports its modules inside execute(): DAG parsing stays cheap
    from maintenance.config import Dependencies, MaintenanceConfig
    from maintenance.results import CheckResult

HOW = ("add a dependencies: section to the maintenance config (lock_files: path or url; "
       "osv_url, pypi_url, npm_url default to the public services)")


def _read_path(path: str) -> str:
    from maintenance.checks.dependencies import decode_lock_file
    from maintenance.config import PROJECT_ROOT

    full = Path(path) if Path(path).is_absolute() else PROJECT_ROOT / path
    return decode_lock_file(full.read_bytes(), str(full))


class DependencyScanOperator(ReviewOperator):
    def renotify(self, results: list[CheckResult]) -> dict[str, bool]:
        """A vulnerability still in the lock file keeps its incident open without paging again;
        only a scan that finds one the last did not fail for pages (again)."""
        return {r.check: bool(r.evidence.get("repage")) for r in results
                if r.check.startswith("dependencies.vulnerabilities.") and "repage" in r.evidence}

    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        from maintenance.results import not_configured

        deps = config.dependencies
        if deps is None or not deps.enabled:
            return [not_configured("dependencies.scan", "dependencies", HOW)]
        return scan(deps, config, runbook=context["dag"].dag_id, run_id=context["ti"].run_id)


def _sources(deps: Dependencies) -> list[dict[str, Any]]:
    from maintenance.config import PROJECT_ROOT

    sources = []
    if deps.own_requirements:
        sources.append({"name": "orchestrator", "path": str(PROJECT_ROOT / "requirements.txt"), "url": None,
                        "conn_id": None, "format": "requirements"})
    sources += [lf.model_dump() for lf in deps.lock_files]
    return sources


def scan(deps: Dependencies, config: MaintenanceConfig, *, runbook: str, run_id: str | None) -> list[CheckResult]:
    from maintenance.results import utcnow

    from maintenance.checks.dependencies import (
        IgnoreRule, LockFileError, decode_lock_file, findings, include_resolver, input_failed, judge_outdated,
        judge_vulnerabilities, outdated_candidates, parse_lock_file, scan_vulnerabilities,
    )
    from maintenance.hooks.http_policy import ProviderError
    from maintenance.hooks.osv import OsvHook
    from maintenance.hooks.registries import FileFetchHook, NpmHook, PyPIHook, latest_versions
    from maintenance.hooks.results_db import results_store

    store = results_store(config.results.conn_id)
    results: list[CheckResult] = []
    parsed_sources = []
    for source in _sources(deps):
        target = source["path"] or source["url"]
        try:
            if source["url"]:
                fetcher = FileFetchHook(source["conn_id"])

                def read(url: str, fetcher: Any = fetcher) -> str | None:
                    try:
                        return decode_lock_file(fetcher.content(url), url)
                    except (ProviderError, LockFileError):
                        return None
                text = decode_lock_file(fetcher.content(source["url"]), source["url"])
            else:
                def read(path: str) -> str | None:
                    try:
                        return _read_path(path)
                    except (OSError, LockFileError):
                        return None
                text = _read_path(source["path"])
            parsed = parse_lock_file(text, source["format"], location=target,
                                     read_include=include_resolver(target, read))
        except ProviderError as exc:
            results.append(input_failed(source["name"], target, exc.reason, f"cannot read the lock file: {exc}", runbook))
            continue
        except OSError as exc:
            results.append(input_failed(source["name"], target, "unreadable",
                                        f"cannot read the lock file: {exc.strerror or exc}", runbook))
            continue
        except LockFileError as exc:
            where = "" if target in str(exc) else f"{target}: "
            results.append(input_failed(source["name"], target, "malformed_lock_file", f"{where}{exc}", runbook))
            continue
        parsed_sources.append((source, target, parsed))

    # One OSV pass over every package of every source: fewest requests, one cache.
    everything = list({p.key: p for _, _, parsed in parsed_sources for p in parsed.packages}.values())
    osv = OsvHook(deps.osv_url)
    try:
        outcome = scan_vulnerabilities(
            everything, vuln_ids=lambda items: osv.vuln_ids(items, deps.batch_size), fetch=osv.vulns,
            cached=store.cached_vulns, save=store.cache_vulns)
    except ProviderError as exc:
        for source, target, _ in parsed_sources:
            results.append(input_failed(source["name"], target, exc.reason, f"OSV could not be asked: {exc}", runbook))
        return results
    ids_of = {p.key: ids for p, ids in zip(everything, outcome.ids)}
    ignore = [IgnoreRule(i.id, i.reason, i.until) for i in deps.ignore]
    today = utcnow().date()
    for source, target, parsed in parsed_sources:
        found = findings(parsed.packages, [ids_of[p.key] for p in parsed.packages], outcome.records,
                         ignore=ignore, today=today, source=source["name"])
        check = f"dependencies.vulnerabilities.{source['name']}"
        before = store.previous(check, not_run=run_id)
        evidence = before["evidence"] if before else {}
        previous = set(evidence["finding_keys"]) if "finding_keys" in evidence else None
        paged_before = set(evidence["failing_keys"]) if "failing_keys" in evidence else None
        result = judge_vulnerabilities(source["name"], target, found, previous,
                                       audited=sum(1 for p in parsed.packages if p.version),
                                       skipped=parsed.skipped, runbook=runbook, paged_before=paged_before)
        result.metrics.update(osv_batch_requests=osv.batch_requests, details_fetched=outcome.fetched,
                              details_cached=outcome.cached)
        if outcome.errors:
            result.evidence["detail_errors"] = dict(list(outcome.errors.items())[:20])
        results.append(result)
        if deps.check_outdated and deps.max_outdated_lookups:
            chosen, cut = outdated_candidates(parsed.packages, deps.max_outdated_lookups)
            latest: dict[str, str | None] = {}
            errors: dict[str, str] = {}
            for ecosystem, hook in (("PyPI", PyPIHook(deps.pypi_url)), ("npm", NpmHook(deps.npm_url))):
                names = [p.name for p in chosen if p.ecosystem == ecosystem]
                if names:
                    got, failed = latest_versions(hook.latest, names)
                    latest.update(got)
                    errors.update(failed)
            results.append(judge_outdated(source["name"], target, chosen, latest, errors, cut=cut, runbook=runbook))
    return results
