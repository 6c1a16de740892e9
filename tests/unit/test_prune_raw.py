"""ResultsStore.prune_raw (issue 16): raw results past the retention go only once their day is rolled up."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from maintenance.results import CheckResult, ResultsStore


def test_raw_results_are_pruned_only_after_their_day_is_rolled_up(tmp_path):
    store = ResultsStore(f"sqlite:///{tmp_path / 'results.db'}")
    now = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
    days = [now - timedelta(days=n) for n in (50, 40, 10)]
    store.record([CheckResult(check="home", status=status, summary="s", time=day + timedelta(minutes=m),
                              metrics={"response_ms": 100.0})
                  for day in days for m, status in ((0, "ok"), (30, "fail"), (60, "ok"))])
    store.roll_up(days[1].date(), now)          # day 40 (and later) rolled up; day 50 is not
    deleted = store.prune_raw(timedelta(days=35), now)

    assert deleted == 3
    kept = sorted({r["checked_at"].date() for r in store.history(check="home")})
    assert kept == [days[0].date(), days[2].date()], "the day never rolled up keeps its raw rows"
    daily = {row["day"]: row for row in store.daily(days[1].date(), ["home"])}
    assert daily[days[1].date()]["counted"] == 3 and daily[days[1].date()]["down"] == 1, "the roll-up stays"
    assert store.prune_raw(timedelta(days=35), now) == 0


def test_what_the_store_remembers_as_first_outlives_the_raw_rows(tmp_path):
    """Reports skip a period that began before the first stored result, and the audit says "no
    results" only of checks that existed all month: once raw rows are pruned, the roll-ups still
    date the first result, or every monthly report after day 35 would be skipped."""
    store = ResultsStore(f"sqlite:///{tmp_path / 'results.db'}")
    now = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
    first = now - timedelta(days=60)
    store.record([CheckResult(check="home", status="ok", summary="s", time=first + timedelta(days=n, hours=1),
                              metrics={"response_ms": 100.0}) for n in range(0, 61, 5)])
    store.roll_up(first.date(), now)
    assert store.prune_raw(timedelta(days=35), now) > 0
    assert min(r["checked_at"] for r in store.history(check="home")) > now - timedelta(days=36)

    day_one = datetime(first.year, first.month, first.day, tzinfo=timezone.utc)
    assert store.first_result_at() == day_one
    assert store.first_seen(["home", "never"]) == {"home": day_one}
