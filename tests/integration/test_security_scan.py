"""The monthly security scan against local HTTPS sites (trustme CA), the local Atlas API, the
local Cloudflare API and moto's S3 server."""

from __future__ import annotations

import json
import ssl
import textwrap
from datetime import datetime, timedelta, timezone

import pytest
import trustme

from atlas_server import AtlasServer, CloudflareServer
from integration.test_storage import s3  # noqa: F401 - fixture: a client and connection to moto's S3
from maintenance.config import load_config
from maintenance.operators.security import atlas_access, bucket_access, site_checks
from figures import report
from servers import LocalServer, free_port

GIT_CONFIG = "[core]\n\trepositoryformatversion = 0\n\tbare = false\n[remote \"origin\"]\n\turl = git@github.com:acme/web.git\n"
INDEX = "<!doctype html><html><head><title>app</title></head><body><div id=root></div></body></html>"


def weak_site(request):
    if request.path == "/.git/config":
        return 200, {"Content-Type": "text/plain"}, GIT_CONFIG
    if request.path == "/":
        headers = {"Content-Type": "text/html", "Set-Cookie": "sessionid=abc123; Path=/",
                   "Strict-Transport-Security": "max-age=3600", "X-Frame-Options": "SAMEORIGIN"}
        if "Origin" in request.headers:
            headers.update({"Access-Control-Allow-Origin": request.headers["Origin"],
                            "Access-Control-Allow-Credentials": "true"})
        return 200, headers, INDEX
    return 404, {"Content-Type": "text/html"}, "<html><body>not found</body></html>"


def spa(request):
    """A single-page app: 200 and the same index.html for every path, hardened headers."""
    return 200, {"Content-Type": "text/html", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                 "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
                 "Strict-Transport-Security": "max-age=31536000",
                 "Set-Cookie": "sess=1; Path=/; Secure; HttpOnly; SameSite=Lax"}, INDEX


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def tls_context(ca, *, legacy=False, days=400):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", not_after=datetime.now(timezone.utc) + timedelta(days=days)).configure_cert(context)
    if legacy:
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def config_for(tmp_path, ca, sites, extra="", deadline=None):
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent(f"""
        site: {{name: test.example, url: "https://test.example"}}
        results: {{conn_id: test_results}}
        security_scan:
          ca_file: {ca_file}
          sites: {json.dumps(sites)}
    """) + (f"  site_deadline: {deadline}\n" if deadline else "") + textwrap.dedent(extra))
    return load_config(path)


@pytest.fixture
def store_env(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_TEST_RESULTS", json.dumps(
        {"conn_type": "sqlite", "extra": {"sqlalchemy_url": f"sqlite:///{tmp_path / 'r.db'}"}}))


def by_check(results):
    return {r.check.split(".")[1]: r for r in results}


def test_weak_site_exposed_git_config_legacy_tls_and_a_grade_drop_next_month(ca, tmp_path, store_env):
    with LocalServer(weak_site, ssl_context=tls_context(ca, legacy=True, days=20)) as site:
        def redirect(request):
            return 301, {"Location": f"{site.url}{request.path}"}, ""
        with LocalServer(redirect) as http:
            config = config_for(tmp_path, ca, [{"url": site.url + "/", "http_url": http.url + "/"}])
            results = by_check(site_checks(config.security_scan.sites[0], config, runbook="maintenance_monthly",
                                           run_id="m1"))
    grade = results["headers"]
    # CSP -25, session cookie without Secure -40, CORS reflected -50, HSTS short -10, nosniff -5 -> 0
    # F is at or below security_scan.page_below (default D): it pages, not a digest line (issue 17 item 5)
    assert grade.evidence["grade"] == "F" and grade.metrics["score"] == 0
    assert grade.status == "fail" and grade.reason == "grade_too_low" and grade.critical
    failed = {t["result"] for t in grade.evidence["tests"] if t["modifier"] < 0}
    assert {"csp-not-implemented", "cookies-session-without-secure-flag", "cors-implemented-with-universal-access",
            "hsts-implemented-max-age-less-than-six-months", "x-content-type-options-not-implemented"} == failed
    assert "redirection-to-https" in {t["result"] for t in grade.evidence["tests"]}
    exposed = results["exposed_files"]
    assert exposed.status == "fail" and exposed.evidence["exposed"] == [
        {"path": "/.git/config", "why": "git config served (section [core])", "status": 200}]
    assert "git@github.com" not in json.dumps(exposed.to_dict())
    tls = results["tls"]
    assert tls.status == "warn" and "TLSv1 and TLSv1.1 still offered" in tls.summary
    assert "expires in 19 day(s)" in tls.summary or "expires in 20 day(s)" in tls.summary

    # the grade is stored; next month a better-configured site that got worse again alerts on the drop
    from maintenance.alerting import assess
    from maintenance.hooks.results_db import results_store
    previous = grade.__class__(**{**grade.__dict__})
    previous.evidence = {**grade.evidence, "grade": "A"}
    assess(results_store("test_results"), config, [previous], run_id="m0")
    with LocalServer(weak_site, ssl_context=tls_context(ca)) as site:
        config = config_for(tmp_path, ca, [{"url": site.url + "/", "http_url": f"http://127.0.0.1:{free_port()}/"}])
        check = f"security.headers.127.0.0.1:{site.port}"
        previous.check = check
        assess(results_store("test_results"), config, [previous], run_id="m0")
        again = by_check(site_checks(config.security_scan.sites[0], config, runbook="maintenance_monthly",
                                     run_id="m2"))
    assert again["headers"].status == "fail" and again["headers"].reason == "grade_dropped"
    assert again["headers"].summary.startswith("grade dropped A -> F (score 0) since the last scan, at or below D")
    assert again["tls"].status == "ok" and not again["tls"].evidence["legacy"]


def test_single_page_app_answering_200_everywhere_is_not_exposed(ca, tmp_path, store_env):
    with LocalServer(spa, ssl_context=tls_context(ca)) as site:
        config = config_for(tmp_path, ca, [{"url": site.url + "/", "http_url": f"http://127.0.0.1:{free_port()}/"}])
        results = by_check(site_checks(config.security_scan.sites[0], config, runbook="maintenance_monthly",
                                       run_id="m1"))
        probed = [r.path for r in site.requests if r.path != "/"]
    assert results["exposed_files"].status == "ok" and "/.git/config" in probed and "/.env" in probed
    assert results["headers"].status == "ok" and results["headers"].evidence["grade"] in ("A", "A+")
    assert results["tls"].status == "ok"


def test_untrusted_certificate_and_an_unreachable_site(tmp_path, store_env):
    other = trustme.CA()
    with LocalServer(spa, ssl_context=tls_context(other)) as site:
        config = config_for(tmp_path, trustme.CA(), [{"url": site.url + "/"}])
        results = by_check(site_checks(config.security_scan.sites[0], config, runbook="maintenance_monthly",
                                       run_id="m1"))
    assert results["tls"].status == "fail" and "does not validate" in results["tls"].summary
    assert results["headers"].status == "fail" and results["headers"].reason == "tls"
    config = config_for(tmp_path, trustme.CA(), [{"url": f"https://127.0.0.1:{free_port()}/"}])
    down = by_check(site_checks(config.security_scan.sites[0], config, runbook="maintenance_monthly", run_id="m1"))
    assert down["tls"].reason == "refused" and down["headers"].reason == "refused"
    assert down["exposed_files"].status == "warn" and "site unreachable" in down["exposed_files"].summary


def test_atlas_open_access_list_public_r2_and_s3_without_block(ca, tmp_path, store_env, s3, monkeypatch):  # noqa: F811
    s3.create_bucket(Bucket="open-bucket")
    s3.create_bucket(Bucket="closed-bucket")
    s3.put_public_access_block(Bucket="closed-bucket", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    with AtlasServer() as atlas, CloudflareServer() as cloudflare:
        atlas.access_list.append({"cidrBlock": "0.0.0.0/0", "comment": "temporary debug", "links": []})
        cloudflare.public_r2_dev.add("uploads")
        monkeypatch.setenv("AIRFLOW_CONN_ATLAS_API", atlas.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_API", cloudflare.connection_json())
        config = config_for(tmp_path, ca, [], extra="""
            atlas: {conn_id: atlas_api}
            storage:
              buckets:
                - {name: uploads, kind: r2, conn_id: r2_missing}
                - {name: open-bucket, conn_id: s3_test}
                - {name: closed-bucket, conn_id: s3_test}
                - {name: elsewhere, conn_id: aws_nowhere}
        """)
        access = atlas_access(config, "maintenance_monthly")
        buckets = {r.check: r for r in bucket_access(config, "maintenance_monthly")}
    assert access.status == "fail" and "0.0.0.0/0 (temporary debug)" in access.summary
    assert buckets["security.r2.uploads.public_access"].status == "fail"
    assert "pub-uploads.r2.dev" in buckets["security.r2.uploads.public_access"].summary
    assert buckets["security.s3.open-bucket.public_access"].status == "fail"
    assert buckets["security.s3.closed-bucket.public_access"].status == "ok"
    assert buckets["security.s3.elsewhere.public_access"].status == "skipped"


# -- issue 18 item 6: a site that drips or sends gigabytes never holds the scan --------------------
def hostile_scan_site(answer):
    """Raw HTTPS: the home page's headers at once (then `answer` writes the body), every probed path too."""
    from hostile_site import head

    def handler(method, path, headers, sock):
        answer(sock) if path in ("/", "/.git/config") else sock.sendall(head("404 Not Found", "text/html", 0))
    return handler


def test_a_site_dripping_a_byte_every_two_seconds_is_cut_at_its_deadline(ca, tmp_path, store_env):
    import time

    from hostile_site import RawServer, drip

    with RawServer(hostile_scan_site(lambda sock: drip(sock, interval=2.0, seconds=60)),
                   ssl_context=tls_context(ca)) as site:
        config = config_for(tmp_path, ca, [{"url": site.url + "/", "http_url": f"http://127.0.0.1:{free_port()}/"}],
                            deadline="6s")
        started = time.monotonic()
        results = by_check(site_checks(config.security_scan.sites[0], config, runbook="maintenance_monthly",
                                       run_id="m1"))
        took = time.monotonic() - started
    report(f"security scan of a site dripping its body a byte every 2 s: {took:.1f} s (deadline 6 s)")
    assert took < 20, f"the scan took {took:.0f} s against a deadline of 6 s"
    assert results["headers"].evidence["grade"], results["headers"].summary    # headers need no body
    exposed = results["exposed_files"]
    assert exposed.status == "warn" and exposed.reason == "probe_errors", exposed.summary
    assert any("the scan's deadline of 6 s passed" in e or "still arriving at the deadline" in e
               for e in exposed.evidence["errors"]), exposed.evidence["errors"]


def test_a_site_dripping_its_headers_is_cut_at_its_deadline(ca, tmp_path, store_env):
    import time

    from hostile_site import RawServer, drip_headers

    with RawServer(lambda method, path, headers, sock: drip_headers(sock, interval=2.0, seconds=60),
                   ssl_context=tls_context(ca)) as site:
        config = config_for(tmp_path, ca, [{"url": site.url + "/", "http_url": f"http://127.0.0.1:{free_port()}/"}],
                            deadline="6s")
        started = time.monotonic()
        results = by_check(site_checks(config.security_scan.sites[0], config, runbook="maintenance_monthly",
                                       run_id="m1"))
        took = time.monotonic() - started
    report(f"security scan of a site dripping its headers a byte every 2 s: {took:.1f} s (deadline 6 s)")
    assert took < 20, f"the scan took {took:.0f} s against a deadline of 6 s"
    headers = results["headers"]
    assert (headers.status, headers.reason) == ("fail", "timeout"), headers.summary
    assert "the scan's deadline of 6 s passed waiting for the answer to GET" in headers.summary
    assert results["exposed_files"].status == "warn" and "not probed" in results["exposed_files"].summary


def test_a_huge_home_page_and_probed_path_are_never_read_whole(ca, tmp_path, store_env):
    import tracemalloc

    from hostile_site import RawServer, huge_answer

    size = 256 * 1024 * 1024
    with RawServer(hostile_scan_site(lambda sock: huge_answer(sock, size)), ssl_context=tls_context(ca)) as site:
        config = config_for(tmp_path, ca, [{"url": site.url + "/", "http_url": f"http://127.0.0.1:{free_port()}/"}])
        tracemalloc.start()
        try:
            results = by_check(site_checks(config.security_scan.sites[0], config, runbook="maintenance_monthly",
                                           run_id="m1"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    report(f"security scan of a site whose home page and /.git/config are {size >> 20} MB each: "
           f"peak {peak / 2**20:.1f} MB of Python memory")
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.0f} MB of Python memory for a {size >> 20} MB page"
    # the headers were graded (a grade at or below security_scan.page_below is a fail by design)
    assert results["headers"].evidence.get("grade"), results["headers"].summary
    assert results["exposed_files"].status != "fail", results["exposed_files"].summary


def test_the_security_scan_task_has_an_execution_timeout():
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    dags = Path(__file__).resolve().parents[2] / "dags"
    dag = DagBag(dag_folder=str(dags / "maintenance_monthly.py")).dags["maintenance_monthly"]
    assert dag.get_task("security_scan").execution_timeout == timedelta(hours=1)
