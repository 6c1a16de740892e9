"""Benchmark of the dependency scan (a program, not a test).

A 5,000-package package-lock.json (v3, scoped names and nested node_modules included) is
scanned against a local OSV server (its own process) that adds 30 ms to every request: the
scan (querybatch of at most 1,000 queries, page tokens followed, advisory details fetched a
few at a time and cached in a results store) against the naive loop, one POST /v1/query per
package, over the same transport and server in the same run. The naive loop is timed over
--naive-sample packages (default 500) and scaled to the whole file; --naive-all times it all.

    .venv/bin/python benchmarks/dependency_scan.py [--naive-all]

The last line is one JSON object: packages, wall_s, naive_s, speedup, requests (querybatch
requests of the scan), vuln_fetches, findings. Targets: speedup >= 50, requests <= 10.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "tests")]
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))

PACKAGES, DELAY, VULNERABLE = 5000, 0.030, 60


def lock_file() -> dict:
    packages = {"": {"name": "big", "dependencies": {}}}
    for i in range(PACKAGES):
        if i % 10 == 0:
            path, name = f"node_modules/@scope{i % 7}/pkg-{i}", f"@scope{i % 7}/pkg-{i}"
        elif i % 10 == 1:
            path, name = f"node_modules/pkg-{i - 1}/node_modules/pkg-{i}", f"pkg-{i}"
        else:
            path, name = f"node_modules/pkg-{i}", f"pkg-{i}"
        packages[path] = {"version": f"1.{i % 13}.{i % 5}"}
        if path.count("node_modules/") == 1:
            packages[""]["dependencies"][name] = "*"
    return {"name": "big", "lockfileVersion": 3, "packages": packages}


def records(lock: dict) -> list[dict]:
    from osv_server import advisory

    entries = [(p, m) for p, m in lock["packages"].items() if p][:: PACKAGES // VULNERABLE]
    found = []
    for n, (path, meta) in enumerate(entries):
        name = path.rsplit("node_modules/", 1)[-1]
        for k in range(5 if n == 0 else 1):     # the first has 5 advisories: more than one page
            found.append(advisory(f"GHSA-bench-{n}-{k}", name, "npm", [meta["version"]], fixed="9.9.9",
                                  severity=("CRITICAL", "HIGH", "MODERATE", "LOW")[n % 4]))
    return found


def serve(recs: list[dict], port_queue) -> None:
    from osv_server import OsvServer

    server = OsvServer(recs, page_size=3, delay=DELAY)
    server.server.thread.start()
    port_queue.put(server.server.port)
    while True:
        time.sleep(3600)


def main() -> None:
    from maintenance.checks.dependencies import findings, judge_vulnerabilities, parse_lock_file, scan_vulnerabilities
    from maintenance.hooks.osv import OsvHook
    from maintenance.results import ResultsStore

    naive_all = "--naive-all" in sys.argv
    sample = PACKAGES if naive_all else int(next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--naive-sample=")), 500))
    lock = lock_file()
    text = json.dumps(lock)
    recs = records(lock)
    queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(recs, queue), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{queue.get(timeout=30)}"
    tmp = tempfile.mkdtemp(prefix="bench-deps-")
    try:
        OsvHook(base).query_one("npm", "warm-up", "1.0.0")        # imports, connection

        store = ResultsStore(f"sqlite:///{tmp}/results.db")
        hook = OsvHook(base)
        started = time.perf_counter()
        parsed = parse_lock_file(text, "package-lock")
        outcome = scan_vulnerabilities(parsed.packages, vuln_ids=hook.vuln_ids, fetch=hook.vulns,
                                       cached=store.cached_vulns, save=store.cache_vulns)
        found = findings(parsed.packages, outcome.ids, outcome.records, today=date.today())
        result = judge_vulnerabilities("bench", "lock", found, None, audited=len(parsed.packages), skipped=parsed.skipped)
        wall = time.perf_counter() - started
        assert len(parsed.packages) == PACKAGES, len(parsed.packages)
        assert len(found) == len(recs), (len(found), len(recs))
        requests_made = hook.batch_requests

        # cached re-scan: no advisory fetched again
        hook2 = OsvHook(base)
        started = time.perf_counter()
        again = scan_vulnerabilities(parsed.packages, vuln_ids=hook2.vuln_ids, fetch=hook2.vulns,
                                     cached=store.cached_vulns, save=store.cache_vulns)
        rescan = time.perf_counter() - started
        assert again.fetched == 0 and again.cached == len(recs)

        naive = OsvHook(base)
        started = time.perf_counter()
        naive_found = 0
        for package in parsed.packages[:sample]:
            naive_found += len(naive.query_one(package.ecosystem, package.name, package.version))
        naive_measured = time.perf_counter() - started
        naive_s = naive_measured * PACKAGES / sample
    finally:
        server.terminate()
        server.join(5)

    speedup = naive_s / wall
    print(f"scan of {PACKAGES} packages with {DELAY * 1000:.0f} ms per request: {wall:.2f} s, "
          f"{requests_made} querybatch request(s), {outcome.fetched} advisory detail(s) fetched; "
          f"{len(found)} finding(s), status {result.status}")
    print(f"re-scan with the advisory cache: {rescan:.2f} s, {again.fetched} detail(s) fetched")
    print(f"naive loop (one POST /v1/query per package): {naive_measured:.2f} s for {sample} package(s)"
          + ("" if sample == PACKAGES else f", scaled to {PACKAGES}: {naive_s:.1f} s") + f"; speedup {speedup:.1f}x")
    print(json.dumps({"packages": PACKAGES, "wall_s": round(wall, 3), "naive_s": round(naive_s, 2),
                      "speedup": round(speedup, 1), "requests": requests_made, "vuln_fetches": outcome.fetched,
                      "findings": len(found), "rescan_s": round(rescan, 3), "naive_sampled": sample}))


if __name__ == "__main__":
    main()
