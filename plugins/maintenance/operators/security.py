"""maintenance_monthly's security_scan: headers grade, TLS and exposed files per site; the Atlas
IP access list and the buckets' public access."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from maintenance.operators.base import connection_or_none
from maintenance.operators.review import ReviewOperator

if TYPE_CHECKING:   # what runs imports its modules inside execute(): DAG parsing stays cheap
    from maintenance.config import MaintenanceConfig, ScanSite
    from maintenance.results import CheckResult

HOW = "add a security_scan: section to the maintenance config (sites default to site.url)"


class SecurityScanOperator(ReviewOperator):
    def run_checks(self, config: MaintenanceConfig, context: Any) -> list[CheckResult]:
        from maintenance.config import ScanSite
        from maintenance.results import not_configured

        scan = config.security_scan
        if scan is None or not scan.enabled:
            return [not_configured("security.scan", "security", HOW)]
        runbook, run_id = context["dag"].dag_id, context["ti"].run_id
        sites = scan.sites or ([ScanSite(url=config.site.url)] if config.site.url.startswith("https://") else [])
        results: list[CheckResult] = []
        for site in sites:
            results += site_checks(site, config, runbook=runbook, run_id=run_id)
        if scan.check_atlas_access_list:
            results.append(atlas_access(config, runbook))
        if scan.check_buckets:
            results += bucket_access(config, runbook)
        return results


def site_checks(site: ScanSite, config: MaintenanceConfig, *, runbook: str, run_id: str | None) -> list[CheckResult]:
    from maintenance.checks.security import (
        DEFAULT_PATHS, SiteFacts, exposed_result, grade_result, judge_exposed, tls_result,
    )
    from maintenance.hooks.http_policy import ProviderError
    from maintenance.hooks.results_db import results_store
    from maintenance.hooks.site import SiteHook, probe_tls
    from maintenance.results import CheckResult

    scan = config.security_scan
    assert scan is not None
    hook = SiteHook(site.url, ca_file=scan.ca_file, deadline=scan.site_deadline.total_seconds(),
                    body_limit=config.uptime.body_limit)
    host = urlsplit(site.url).netloc
    results: list[CheckResult] = []
    unreachable: str | None = None
    check = f"security.headers.{host}"
    try:
        page = hook.page()
        chain, first = hook.http_redirects(site.http_url or f"http://{urlsplit(site.url).hostname}/")
        facts = SiteFacts(site.url, page["headers"], page["cookies"], chain, first, hook.cors_reflected())
        before = results_store(config.results.conn_id).previous(check, not_run=run_id)
        results.append(grade_result(facts, (before or {}).get("evidence", {}).get("grade"), runbook,
                                    page_below=scan.page_below))
    except ProviderError as exc:
        results.append(CheckResult(check=check, target=site.url, group="security", status="fail", reason=exc.reason,
                                   summary=f"the site could not be scanned: {exc}", runbook=runbook))
        if exc.reason in ("refused", "timeout", "dns", "tls"):
            unreachable = exc.reason
    results.append(tls_result(site.url, probe_tls(site.url, ca_file=scan.ca_file), scan.tls_warn_days, runbook))
    if site.exposed_files and unreachable:
        results.append(CheckResult(check=f"security.exposed_files.{host}", target=site.url, group="security",
                                   status="warn", reason=unreachable, critical=False, runbook=runbook,
                                   summary=f"sensitive paths not probed: site unreachable ({unreachable})"))
    elif site.exposed_files:
        paths = [(p, kind, None) for p, kind in DEFAULT_PATHS] + [(e.path, "custom", e.signature)
                                                                  for e in scan.exposed_paths]
        exposed, errors = [], []
        for index, (path, kind, signature) in enumerate(paths):
            try:
                hook.remaining()
            except ProviderError as exc:
                errors.append(f"{len(paths) - index} path(s) not probed: {exc}")
                break
            try:
                status, content_type, body = hook.probe(path)
            except ProviderError as exc:
                errors.append(f"{path}: {exc.reason}")
                continue
            why = judge_exposed(path, kind, status, content_type, body, signature)
            if why:
                exposed.append({"path": path, "why": why, "status": status})
        results.append(exposed_result(site.url, exposed, len(paths), errors, runbook))
    return results


def atlas_access(config: MaintenanceConfig, runbook: str) -> CheckResult:
    from maintenance.results import CheckResult, not_configured

    from maintenance.checks.security import atlas_access_list
    from maintenance.hooks.atlas import AtlasHook
    from maintenance.hooks.http_policy import ProviderError

    check = "security.atlas.access_list"
    if config.atlas is None or not config.atlas.enabled or connection_or_none(config.atlas.conn_id) is None:
        conn = config.atlas.conn_id if config.atlas else "atlas_api"
        return not_configured(check, "security", f"add an atlas: section and the Airflow connection '{conn}'")
    hook = AtlasHook(config.atlas.conn_id)
    try:
        return atlas_access_list(hook.access_list(), hook.project_id, runbook)
    except ProviderError as exc:
        return CheckResult(check=check, group="security", status="fail", reason=exc.reason, provider="atlas",
                           summary=f"the Atlas IP access list could not be read: {exc}", runbook=runbook)


def bucket_access(config: MaintenanceConfig, runbook: str) -> list[CheckResult]:
    from maintenance.results import CheckResult, not_configured

    from maintenance.checks.security import r2_public_access, s3_public_access
    from maintenance.hooks.cloudflare import CloudflareHook
    from maintenance.hooks.http_policy import ProviderError
    from maintenance.hooks.storage import client_error, s3_client

    if config.storage is None or not config.storage.buckets:
        return [not_configured("security.buckets", "security", "add storage: buckets: with their connections")]
    results = []
    for bucket in config.storage.buckets:
        if bucket.kind == "r2":
            check = f"security.r2.{bucket.name}.public_access"
            if connection_or_none(bucket.cloudflare_conn_id) is None:
                results.append(not_configured(check, "security", f"set Airflow connection '{bucket.cloudflare_conn_id}' "
                                              "(http: password = API token with R2 read; extra: account_id)"))
                continue
            hook = CloudflareHook(bucket.cloudflare_conn_id)
            try:
                results.append(r2_public_access(bucket.name, hook.managed_domain(bucket.name),
                                                hook.custom_domains(bucket.name), runbook))
            except ProviderError as exc:
                results.append(CheckResult(check=check, target=f"r2://{bucket.name}", group="security", status="fail",
                                           reason=exc.reason, provider="storage", runbook=runbook,
                                           summary=f"R2 public access could not be read: {exc}"))
            continue
        check = f"security.s3.{bucket.name}.public_access"
        if connection_or_none(bucket.conn_id) is None:
            results.append(not_configured(check, "security", f"set Airflow connection '{bucket.conn_id}' (aws)"))
            continue
        try:
            client = s3_client(bucket.conn_id)
            try:
                block = client.get_public_access_block(Bucket=bucket.name).get("PublicAccessBlockConfiguration")
            except Exception as exc:  # noqa: BLE001 - "no block configured" is an answer, not an error
                if getattr(exc, "response", {}).get("Error", {}).get("Code") != "NoSuchPublicAccessBlockConfiguration":
                    raise
                block = None
            results.append(s3_public_access(bucket.name, block, runbook))
        except Exception as exc:  # noqa: BLE001 - botocore errors become a classified result
            reason, message = client_error(exc)
            results.append(CheckResult(check=check, target=f"s3://{bucket.name}", group="security", status="fail",
                                       reason=reason, provider="storage", runbook=runbook,
                                       summary=f"the public access block could not be read: {message}"))
    return results
