"""Benchmark of the status page's "today" figures (issue 17): today's p95 and TLS days left per
check, read by reports/data.today_details().

A program, not a test:  .venv/bin/python benchmarks/status_page_today.py [--checks 50]

For 5-minute results and for 30-second samples, one day of results (to 23:55 UTC, the day's
largest) is loaded into SQLite; then the first request of a process (reads the whole day) and
the following requests a minute apart (read only what is new, less 10 minutes for late
writes) are timed. Prints the ratio; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "tests")]

from maintenance.reports.data import today_details  # noqa: E402
from maintenance.results import ResultsStore  # noqa: E402
from report_fixtures import load, stamp_for, uptime_rows  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=50)
    args = parser.parse_args()
    names = [f"check-{i}" for i in range(args.checks)]
    now = datetime.now(timezone.utc).replace(hour=23, minute=55, second=0, microsecond=0)
    out = {}
    for label, interval in (("5min", 5), ("30s", 0.5)):
        with tempfile.TemporaryDirectory() as folder:
            store = ResultsStore(f"sqlite:///{folder}/results.db")
            load(store, uptime_rows(names, days=1, now=now, interval_min=interval, stamp=stamp_for(store)))
            started = time.perf_counter()
            found = today_details(store, names, now)
            first = (time.perf_counter() - started) * 1000
            times = []
            for minute in range(1, 11):
                started = time.perf_counter()
                today_details(store, names, now + timedelta(minutes=minute))
                times.append((time.perf_counter() - started) * 1000)
            samples = sum(f["samples"] for f in found.values())
            nxt = statistics.median(times)
            print(f"{label:5} {samples:>8,} results today  first request {first:7.1f} ms  next requests "
                  f"median {nxt:6.1f} ms  ({first / max(nxt, 0.01):.0f}x less)")
            out.update({f"{label}_results": samples, f"{label}_first_ms": round(first, 1),
                        f"{label}_next_ms": round(nxt, 1), f"{label}_ratio": round(first / max(nxt, 0.01), 1)})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
