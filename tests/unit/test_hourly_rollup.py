"""The last day's hourly roll-ups (issue 16, item 3): with a result every 30 s the status page
counts "today" and "last 24 h" from check_hourly plus the raw remainder, and stays exact."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from maintenance.reports.data import day_start
from maintenance.results import CheckResult, ResultsStore, check_hourly, check_hourly_done

UTC = timezone.utc
NOW = datetime(2026, 12, 6, 14, 7, 30, tzinfo=UTC)   # not on an hour: both windows start inside hours


def results(names: list[str], start: datetime, end: datetime, seed: int = 3) -> list[CheckResult]:
    rng = random.Random(seed)
    found, at = [], start
    while at < end:
        for name in names:
            status = rng.choice(["ok", "ok", "ok", "warn", "fail", "skipped"])
            found.append(CheckResult(check=name, status=status, summary=status, time=at,
                                     metrics={"response_ms": 100.0}))
        at += timedelta(minutes=7)
    return found


def by_hand(store: ResultsStore, names: list[str], since: datetime) -> dict[str, dict[str, int]]:
    """The ACCOUNTING rules over every raw row since a time."""
    found: dict[str, dict[str, int]] = {}
    for name in names:
        counts = {"counted": 0, "up": 0, "down": 0, "maintenance": 0, "skipped": 0}
        for row in store.history(check=name, since=since):
            if row["status"] == "skipped":
                counts["skipped"] += 1
            elif row["in_maintenance"]:
                counts["maintenance"] += 1
            else:
                counts["counted"] += 1
                counts["down" if row["status"] == "fail" else "up"] += 1
        found[name] = counts
    return found


def test_today_and_24h_counts_are_exact_from_hourly_rollups_plus_raw_rows(results_url):
    store = ResultsStore(results_url)
    names = ["api", "home"]
    history = results(names, NOW - timedelta(hours=30), NOW)
    quiet = [r for r in history if NOW - timedelta(hours=5) <= r.time < NOW - timedelta(hours=4)]
    store.record([r for r in history if r not in quiet])
    store.record(quiet, in_maintenance=["api"])          # a maintenance window for one check
    windows = {"today": day_start(NOW.date()), "24h": NOW - timedelta(hours=24)}

    counts = store.live_counts(windows, names, now=NOW)

    for window, since in windows.items():
        assert counts[window] == by_hand(store, names, since), window
    with store.engine.connect() as conn:
        hours = sorted(conn.execute(sa.select(check_hourly_done.c.hour)).scalars())
        rolled = conn.execute(sa.select(sa.func.sum(check_hourly.c.counted))).scalar()
    # every hour from the one the 24 h window starts in (yesterday 14:00) to the last one that ended
    # 10 minutes ago or more (12:00; 13:00 ended 7.5 minutes ago: raw rows still)
    assert len(hours) == 23 and rolled > 0
    # another request reads the same from the roll-ups it made (none made again)
    assert store.roll_up_hours(windows["24h"], NOW) == 0
    assert store.live_counts(windows, names, now=NOW) == counts


def test_a_late_result_reopens_its_rolled_up_hour(results_url):
    store = ResultsStore(results_url)
    store.record(results(["home"], NOW - timedelta(hours=3), NOW))
    windows = {"today": day_start(NOW.date())}
    before = store.live_counts(windows, ["home"], now=NOW)["today"]["home"]
    late = CheckResult(check="home", status="fail", summary="late", time=NOW - timedelta(hours=2, minutes=30))
    store.record([late])                                  # a retry's result, for an hour already rolled up

    after = store.live_counts(windows, ["home"], now=NOW)["today"]["home"]

    assert after["counted"] == before["counted"] + 1 and after["down"] == before["down"] + 1
    assert after == by_hand(store, ["home"], windows["today"])["home"]


def test_old_hourly_rollups_are_deleted(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'results.db'}")
    store.record(results(["home"], NOW - timedelta(days=5), NOW - timedelta(days=4, hours=20)))
    store.roll_up_hours(NOW - timedelta(days=5), NOW - timedelta(days=4))
    store.record(results(["home"], NOW - timedelta(hours=2), NOW))
    store.roll_up_hours(NOW - timedelta(hours=2), NOW)
    with store.engine.connect() as conn:
        oldest = conn.execute(sa.select(sa.func.min(check_hourly_done.c.hour))).scalar()
    assert oldest.replace(tzinfo=UTC) >= NOW - timedelta(days=3, hours=1)


def test_the_newest_incidents_are_the_same_when_read_a_day_at_a_time(results_url):
    """incidents(newest_failures=N) reads the failures newest day first, widening back: the same
    incidents as reading all 14 days, but the oldest one, left out when it may be cut."""
    store = ResultsStore(results_url)
    rng = random.Random(11)
    history, at = [], NOW - timedelta(days=15)
    while at < NOW:
        history.append(CheckResult(check="api", status="fail" if rng.random() < 0.15 else "ok", summary="s",
                                   reason="timeout", time=at))
        at += timedelta(minutes=20)
    store.record(history)
    since = NOW - timedelta(days=14)
    everything = store.incidents(since, ["api"])
    failures = sum(i["failures"] for i in everything)
    assert failures > 100
    for newest in (5, 40, failures - 1, failures, failures + 10):   # 40: four days back, three reads
        got = store.incidents(since, ["api"], newest_failures=newest)
        assert got and got == [i for i in everything if i["start"] >= got[0]["start"]], newest
        assert sum(i["failures"] for i in got) <= newest, newest
        assert (got == everything) == (newest >= failures), newest
