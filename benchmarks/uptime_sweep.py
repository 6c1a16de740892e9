"""Benchmark of the uptime sweep (a program, not a test).

A local aiohttp server (its own process, so it does not share our CPU time slice) serves
500 endpoints that answer after 200 ms. We sweep them at concurrency 50 and compare with
the floor (500 / 50 x 0.2 s = 2.0 s), with a sequential `requests` loop (50 endpoints,
scaled to 500) and count our checks per second against zero-latency endpoints.

    .venv/bin/python benchmarks/uptime_sweep.py

Zero latency, against a baseline: absolute rates move with the machine's load, so our rate is
compared with a bare aiohttp loop run in this same process (same concurrency, same connector
limit, each body read; no conditions, no results). Method, for a noisy shared machine: PAIRS
paired rounds over the same 2,500 endpoints, each run as bare, bare-gc, sweep, sweep, bare-gc,
bare (the next one as sweep, bare-gc, bare, bare, bare-gc, sweep), so a load that rises or
falls during the pair weighs on both sides alike and neither side always runs first. Each pair
gives one ratio (the bare loop's two wall times over the sweep's two, measured within the same
second or two), and `ratio_to_bare_aiohttp` is the median of those ratios: a burst of load
from another process spoils a pair or two, not the figure. The best-of figures are kept beside it
(`zero_latency_checks_per_s` and `bare_aiohttp_requests_per_s` are each side's best round,
`ratio_of_best` their ratio), with every pair's ratio and the median ratio of CPU time
(`cpu_ratio_to_bare_aiohttp`, this process's CPU seconds: a check of the wall-time figure,
noisy too, as CPU caches and cores are shared). The sweep raises the garbage collector's
gen-0 threshold while it runs (checks/uptime.py says why); the bare loop runs with Python's
default, as any aiohttp loop would. So that the figure does not rest on that alone, each pair
also runs the bare loop under the sweep's collector setting (bare-gc, run beside each bare
round), and `ratio_to_bare_aiohttp_same_gc` is the median ratio against that loop.

The last line is one JSON object: wall_s, floor_s, ratio_to_floor, sequential_s,
speedup_vs_sequential, zero_latency_checks_per_s, bare_aiohttp_requests_per_s,
ratio_to_bare_aiohttp and the figures above. Targets: ratio_to_floor <= 1.10,
zero_latency_checks_per_s >= 3000, ratio_to_bare_aiohttp >= 0.85.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

ENDPOINTS, CONCURRENCY, DELAY = 500, 50, 0.2
ZERO_LATENCY_CHECKS = 2500   # per round: short rounds, so both sides of a pair see the same load
PAIRS = 9    # paired rounds, bare-sweep-sweep-bare and the like (odd: the median is one pair's ratio)


def serve(port: int, ready) -> None:
    import asyncio

    from aiohttp import web

    async def slow(request):
        await asyncio.sleep(DELAY)
        return web.Response(text='{"status": "ok"}', content_type="application/json")

    async def fast(request):
        return web.Response(text='{"status": "ok"}', content_type="application/json")

    app = web.Application()
    app.add_routes([web.get("/slow/{i}", slow), web.get("/fast/{i}", fast)])
    ready.set()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=1024)


async def bare_aiohttp_loop(urls: list[str]) -> None:
    """The baseline: aiohttp alone, same concurrency, no conditions, no results."""
    import asyncio

    import aiohttp

    limit = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:
        async def one(url: str) -> None:
            async with limit, session.get(url) as response:
                await response.read()
        await asyncio.gather(*(one(u) for u in urls))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    import requests

    from maintenance.checks.uptime import _SWEEP_GC_THRESHOLD, sweep
    from maintenance.config import Endpoint

    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(port, ready), daemon=True)
    server.start()
    ready.wait(10)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):  # until the socket accepts
        try:
            requests.get(f"{base}/fast/0", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.05)

    conditions = ["[STATUS] == 200", "[RESPONSE_TIME] < 5000", "[BODY].status == ok"]
    slow = [Endpoint(name=f"slow-{i}", url=f"{base}/slow/{i}", conditions=conditions) for i in range(ENDPOINTS)]
    fast = [Endpoint(name=f"fast-{i}", url=f"{base}/fast/{i}", conditions=conditions)
            for i in range(ZERO_LATENCY_CHECKS)]
    try:
        sweep(fast[:200], concurrency=CONCURRENCY)            # warm-up: imports, connection pool

        started = time.perf_counter()
        results = sweep(slow, concurrency=CONCURRENCY)
        wall = time.perf_counter() - started
        assert all(r.status == "ok" for r in results), [r.summary for r in results if r.status != "ok"][:3]
        floor = ENDPOINTS / CONCURRENCY * DELAY

        session = requests.Session()
        started = time.perf_counter()
        for endpoint in slow[:50]:
            assert session.get(endpoint.url, timeout=5).status_code == 200
        sequential = (time.perf_counter() - started) * ENDPOINTS / 50

        import asyncio

        urls = [e.url for e in fast]
        asyncio.run(bare_aiohttp_loop(urls[:200]))             # the baseline's warm-up

        def timed(run) -> tuple[float, float]:
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            return time.perf_counter() - wall, time.process_time() - cpu

        def bare() -> None:
            asyncio.run(bare_aiohttp_loop(urls))

        def bare_gc() -> None:   # the bare loop under the collector setting the sweep uses
            saved = gc.get_threshold()
            gc.set_threshold(_SWEEP_GC_THRESHOLD, *saved[1:])
            try:
                asyncio.run(bare_aiohttp_loop(urls))
            finally:
                gc.set_threshold(*saved)

        def ours() -> None:
            assert all(r.status == "ok" for r in sweep(fast, concurrency=CONCURRENCY))

        rounds = []   # per pair and side: [(wall, cpu), (wall, cpu)]
        for index in range(PAIRS):
            order = (bare, bare_gc, ours, ours, bare_gc, bare) if index % 2 == 0 else \
                (ours, bare_gc, bare, bare, bare_gc, ours)
            times = [(run, timed(run)) for run in order]
            rounds.append({side: [t for run, t in times if run is side] for side in (bare, bare_gc, ours)})
    finally:
        server.terminate()
        server.join(5)

    print(f"sweep of {ENDPOINTS} endpoints answering in {DELAY * 1000:.0f} ms at concurrency {CONCURRENCY}: "
          f"{wall:.2f} s (floor {floor:.2f} s, ratio {wall / floor:.3f})")
    print(f"sequential requests loop, 50 endpoints scaled to {ENDPOINTS}: {sequential:.1f} s "
          f"(sweep is {sequential / wall:.1f}x faster)")

    def median_ratio(side, measure: int) -> float:   # measure 0: wall time, 1: CPU time
        return statistics.median(sum(t[measure] for t in r[side]) / sum(t[measure] for t in r[ours])
                                 for r in rounds)

    ratios = [sum(w for w, _ in r[bare]) / sum(w for w, _ in r[ours]) for r in rounds]
    ratio, cpu_ratio, same_gc = median_ratio(bare, 0), median_ratio(bare, 1), median_ratio(bare_gc, 0)
    bare_wall = min(w for r in rounds for w, _ in r[bare])
    zero_wall = min(w for r in rounds for w, _ in r[ours])
    print(f"zero-latency: {ZERO_LATENCY_CHECKS} checks with 3 conditions, best of {2 * PAIRS} in {zero_wall:.2f} s "
          f"= {ZERO_LATENCY_CHECKS / zero_wall:.0f} checks/s; a bare aiohttp loop in this process made "
          f"{ZERO_LATENCY_CHECKS / bare_wall:.0f} requests/s at best; paired ratios "
          f"{' '.join(f'{r:.2f}' for r in ratios)}, median {ratio:.3f} (CPU time {cpu_ratio:.3f}; "
          f"against the bare loop under the sweep's collector setting {same_gc:.3f})")
    print(json.dumps({
        "wall_s": round(wall, 3), "floor_s": floor, "ratio_to_floor": round(wall / floor, 3),
        "sequential_s": round(sequential, 2), "speedup_vs_sequential": round(sequential / wall, 1),
        "zero_latency_checks_per_s": round(ZERO_LATENCY_CHECKS / zero_wall),
        "bare_aiohttp_requests_per_s": round(ZERO_LATENCY_CHECKS / bare_wall),
        "ratio_to_bare_aiohttp": round(ratio, 3),
        "ratio_of_best": round(bare_wall / zero_wall, 3),
        "cpu_ratio_to_bare_aiohttp": round(cpu_ratio, 3),
        "ratio_to_bare_aiohttp_same_gc": round(same_gc, 3),
        "pair_ratios": [round(r, 3) for r in ratios],
    }))


if __name__ == "__main__":
    main()
