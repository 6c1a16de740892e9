"""CheckResult, and the results store that keeps every result of every run.

The store is plain SQLAlchemy Core on any URL: SQLite under AIRFLOW_HOME by default,
Postgres when the `maintenance_db` connection is set (see hooks/results_db.py).
It also keeps each check's alert state and the Slack outbox (alerting.py).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Iterator, Literal

import sqlalchemy as sa

Status = Literal["ok", "warn", "fail", "skipped"]
STATUSES = ("ok", "warn", "fail", "skipped")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class CheckResult:
    """The outcome of one check of one target, at one time."""

    check: str                      # stable name, e.g. "homepage" or "atlas.snapshot_age"
    status: Status
    summary: str                    # one line a human reads in Slack
    target: str = ""                # URL, bucket, cluster...
    group: str = ""                 # homepage, api, admin, payments, backups...
    reason: str | None = None       # failure class: timeout, refused, http_5xx, condition...
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    runbook: str | None = None      # DAG id of the runbook to follow
    provider: str | None = None     # key of `contacts` for whom to call
    critical: bool = True           # critical results page at once; others go into the digest
    time: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["time"] = self.time.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CheckResult":
        data = dict(data)
        data["time"] = datetime.fromisoformat(data["time"]) if data.get("time") else utcnow()
        return cls(**data)


def not_implemented(check: str, group: str, issue: str, runbook: str | None = None) -> CheckResult:
    """The visible placeholder of a capability that is not built yet."""
    return CheckResult(
        check=check, group=group, status="skipped", runbook=runbook,
        summary=f"skipped: not implemented ({issue})", reason="not_implemented",
    )


def not_configured(check: str, group: str, how: str) -> CheckResult:
    """A provider the deployment does not use: skipped, saying how to turn it on."""
    return CheckResult(check=check, group=group, status="skipped", reason="not_configured",
                       summary=f"skipped: not configured ({how})")


# The schema as of the newest migration (plugins/maintenance/migrations/versions/). A change
# here needs a migration there: existing databases only change through Alembic.
metadata = sa.MetaData()

check_results = sa.Table(
    "check_results", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("check_name", sa.String(200), nullable=False, index=True),
    sa.Column("target", sa.Text, nullable=False, default=""),
    sa.Column("check_group", sa.String(100), nullable=False, default=""),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("reason", sa.String(100)),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("runbook", sa.String(200)),
    sa.Column("provider", sa.String(100)),
    sa.Column("critical", sa.Boolean, nullable=False, default=True),
    sa.Column("in_maintenance", sa.Boolean, nullable=False, default=False),
    sa.Column("dag_id", sa.String(250)),
    sa.Column("run_id", sa.String(250)),
    sa.Column("task_id", sa.String(250)),
    sa.Column("try_number", sa.Integer),
)

alert_state = sa.Table(
    "alert_state", metadata,
    sa.Column("check_name", sa.String(200), primary_key=True),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, default=0),
    sa.Column("consecutive_successes", sa.Integer, nullable=False, default=0),
    sa.Column("alerting", sa.Boolean, nullable=False, default=False),  # an incident is open
    sa.Column("failing_since", sa.DateTime(timezone=True)),
    sa.Column("last_alert_at", sa.DateTime(timezone=True)),
    sa.Column("last_outbox_id", sa.Integer),                           # the open incident's alert
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    sa.Column("owner", sa.String(500)),                 # "dag_id.task_id" that assesses this check
    sa.Column("last_failed_run_id", sa.String(250)),    # a run's retries count as one failure
)

alert_outbox = sa.Table(
    "alert_outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),   # alert, reminder, recovered, crash, late, report
    sa.Column("check_name", sa.String(200)),
    sa.Column("channel", sa.String(20), nullable=False, default="now"),  # now | digest | report
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("dag_id", sa.String(250)),
    sa.Column("run_id", sa.String(250)),
    sa.Column("task_id", sa.String(250)),
    sa.Column("claim_token", sa.String(40)),
    sa.Column("claimed_at", sa.DateTime(timezone=True)),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.Column("cancelled_at", sa.DateTime(timezone=True)),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    # copies Slack may have shown: sends that got no answer, or a 200 without "ok" (at most two in all)
    sa.Column("uncertain", sa.Integer, nullable=False, default=0),
    sa.Column("dead_at", sa.DateTime(timezone=True)),                # given up: kept, counted, reported
)

# When the Slack webhook may next be called (Retry-After), shared by every sender.
delivery_gate = sa.Table(
    "delivery_gate", metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("since", sa.DateTime(timezone=True)),   # first closed, kept while re-closed; cleared on delivery
)

_STATE_DEFAULTS = {"consecutive_failures": 0, "consecutive_successes": 0, "alerting": False,
                   "failing_since": None, "last_alert_at": None, "last_outbox_id": None,
                   "updated_at": None, "owner": None, "last_failed_run_id": None}
_PENDING = sa.and_(alert_outbox.c.delivered_at.is_(None), alert_outbox.c.cancelled_at.is_(None),
                   alert_outbox.c.dead_at.is_(None))


# -- reviews (issue 9): the OSV advisory cache ---------------------------------------------------
# One row per advisory, keyed by id: an advisory whose `modified` is unchanged is not fetched again.
osv_vulns = sa.Table(
    "osv_vulns", metadata,
    sa.Column("vuln_id", sa.String(200), primary_key=True),
    sa.Column("modified", sa.String(64), nullable=False, default=""),
    sa.Column("record", sa.JSON, nullable=False),
    sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
)


# -- runbooks (issue 10): automatic starts of the runbook DAGs (the circuit breaker's memory) ----
runbook_starts = sa.Table(
    "runbook_starts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("runbook", sa.String(250), nullable=False, index=True),   # DAG id of the runbook
    sa.Column("run_id", sa.String(250)),                                # the diagnosis run
    sa.Column("outcome", sa.String(20), nullable=False),                # claimed | started | exists | suppressed | error
    sa.Column("checks", sa.JSON, nullable=False),                       # the checks whose incident started it
    sa.Column("detail", sa.Text),
    sa.Column("dag_id", sa.String(250)),                                # the task that started it
    sa.Column("source_run_id", sa.String(250)),
    sa.Column("task_id", sa.String(250)),
)
COUNTED_STARTS = ("claimed", "started", "exists")   # outcomes the circuit breaker counts
# -- end runbooks --------------------------------------------------------------------------------


# -- reports and status page (issue 12): indexes and daily rollups --------------------------------
# The status page reads 90 days x every check; raw results are ~288 a day per 5-minute check.
# (check_name, checked_at) serves per-check time ranges; (check_name, status, checked_at) finds
# a check's failures (incidents) and its last success or failure without scanning the rest. check_daily holds one row per check and UTC day,
# rolled up once the day is over (check_daily_done marks the days rolled up, empty ones too).
ix_results_check_time = sa.Index("ix_check_results_check_time", check_results.c.check_name,
                                 check_results.c.checked_at)
ix_results_group_time = sa.Index("ix_check_results_group_time", check_results.c.check_group,
                                 check_results.c.checked_at)   # the reports' non-uptime families
ix_results_check_status_time = sa.Index("ix_check_results_check_status_time", check_results.c.check_name,
                                        check_results.c.status, check_results.c.checked_at,
                                        check_results.c.in_maintenance)   # covering for counts and failures

check_daily = sa.Table(
    "check_daily", metadata,
    sa.Column("check_name", sa.String(200), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("check_group", sa.String(100), nullable=False, default=""),
    sa.Column("critical", sa.Boolean, nullable=False, default=True),
    sa.Column("counted", sa.Integer, nullable=False, default=0),      # not skipped, not in maintenance
    sa.Column("up", sa.Integer, nullable=False, default=0),           # ok + warn
    sa.Column("warned", sa.Integer, nullable=False, default=0),
    sa.Column("down", sa.Integer, nullable=False, default=0),         # fail
    sa.Column("maintenance", sa.Integer, nullable=False, default=0),  # stored during a window
    sa.Column("skipped", sa.Integer, nullable=False, default=0),
    sa.Column("p50_ms", sa.Float),
    sa.Column("p95_ms", sa.Float),
    sa.Column("max_ms", sa.Float),
    sa.Column("metrics", sa.JSON),                                    # the day's last metrics (non-uptime checks)
)

# The newest result of every check and since when it is up or down (kept by record()), so the
# status page reads one small table instead of looking up 50 histories.
check_latest = sa.Table(
    "check_latest", metadata,
    sa.Column("check_name", sa.String(200), primary_key=True),
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("reason", sa.String(100)),
    sa.Column("target", sa.Text, nullable=False, default=""),
    sa.Column("check_group", sa.String(100), nullable=False, default=""),
    sa.Column("critical", sa.Boolean, nullable=False, default=True),
    sa.Column("in_maintenance", sa.Boolean, nullable=False, default=False),
    sa.Column("response_ms", sa.Float),
    sa.Column("state", sa.String(10)),                       # up | down (counted results only)
    sa.Column("state_since", sa.DateTime(timezone=True)),    # the first result of the current state
)

check_daily_done = sa.Table(
    "check_daily_done", metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("rolled_at", sa.DateTime(timezone=True), nullable=False),
)

# The last day's counts per check and UTC hour (migration 0007): with a result every 30 s, the
# status page's "today" and "last 24 h" would count up to 144,000 raw rows per request; it counts
# the finished hours from here and only the raw remainder (the hour under way, the hour a window
# starts in). Rolled up on read (`roll_up_hours`); check_hourly_done marks the hours rolled up,
# empty ones too, and record() re-opens an hour that gets a result after all.
check_hourly = sa.Table(
    "check_hourly", metadata,
    sa.Column("check_name", sa.String(200), primary_key=True),
    sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("counted", sa.Integer, nullable=False, default=0),      # not skipped, not in maintenance
    sa.Column("up", sa.Integer, nullable=False, default=0),           # ok + warn
    sa.Column("down", sa.Integer, nullable=False, default=0),         # fail
    sa.Column("maintenance", sa.Integer, nullable=False, default=0),
    sa.Column("skipped", sa.Integer, nullable=False, default=0),
)

check_hourly_done = sa.Table(
    "check_hourly_done", metadata,
    sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("rolled_at", sa.DateTime(timezone=True), nullable=False),
)
HOUR = timedelta(hours=1)
HOUR_SETTLE = timedelta(minutes=10)   # an hour is rolled up this long after it ends (late writes)
HOURLY_KEEP = timedelta(days=3)       # hourly rows older than this are deleted when hours are rolled up


def json_safe(value: Any) -> Any:
    """`value` as JSON can hold it and read it back: NaN and +-Infinity (which json.dumps writes
    as bare tokens that Postgres refuses and SQLite's JSON functions call malformed) become
    None; a lone surrogate in a string (JSON's "\\ud800", which Postgres refuses) becomes "?";
    what JSON has no type for becomes its str()."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
        return value
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, dict):
        return {json_safe(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return str(value)


_ESCAPED_SURROGATE = re.compile(r"\\ud[89a-f]", re.IGNORECASE)


def dump_json(value: Any) -> str:
    """The results store's JSON serializer: strict (allow_nan=False); a value that is not strict
    JSON, or holds a surrogate escape, goes through json_safe first (the rare, slower path)."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (ValueError, TypeError):
        return json.dumps(json_safe(value), allow_nan=False)
    if _ESCAPED_SURROGATE.search(text) is None:
        return text
    return json.dumps(json_safe(value), allow_nan=False)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes; everything here is UTC.
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


def _state(row: Any) -> dict[str, Any]:
    state = dict(row._mapping)
    for key in ("failing_since", "last_alert_at", "updated_at"):
        state[key] = _aware(state[key])
    return state


class ResultsStore:
    """History of check results, alert state and the alert outbox, on one database URL.

    Only this class touches these tables. Writers that must not interleave (alert state
    updates) use `transaction()`: SQLite takes its write lock at BEGIN (IMMEDIATE), Postgres
    locks the state rows (`lock_alert_states`), so concurrent workers never lose an update.
    """

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        # Every JSON column goes through dump_json: the store never writes what it cannot read back.
        kwargs: dict[str, Any] = {"future": True, "json_serializer": dump_json}
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            # Parallel tasks share the file: wait for locks instead of failing at once.
            kwargs["connect_args"] = {"timeout": 30}
        self.url = url
        self.engine = sa.create_engine(url, **kwargs)
        if self.sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_connect)
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        if migrate:
            from maintenance.migrations import upgrade

            upgrade(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A write transaction that serialises with every other writer of alert state."""
        with self.engine.connect() as conn:
            conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                yield conn

    # -- results -------------------------------------------------------------------
    def record(self, results: Iterable[CheckResult], *, dag_id: str | None = None, run_id: str | None = None,
               task_id: str | None = None, try_number: int | None = None,
               in_maintenance: Iterable[str] = (), conn: sa.Connection | None = None) -> int:
        maintenance = set(in_maintenance)
        rows = [
            {
                "checked_at": r.time, "check_name": r.check, "target": r.target, "check_group": r.group,
                "status": r.status, "summary": r.summary, "reason": r.reason,
                "metrics": r.metrics, "evidence": json.loads(json.dumps(r.evidence, default=str)),
                "runbook": r.runbook, "provider": r.provider, "critical": r.critical,
                "in_maintenance": r.check in maintenance,
                "dag_id": dag_id, "run_id": run_id, "task_id": task_id, "try_number": try_number,
            }
            for r in results
        ]
        if rows:
            today = utcnow().date()
            late = {d for d in {_utc_day(r["checked_at"]) for r in rows} if d < today}
            hours = sorted({_hour(r["checked_at"]) for r in rows})

            def write(target: sa.Connection) -> None:
                target.execute(check_results.insert(), rows)
                self._keep_latest(target, rows)       # issue 12: the status page's latest state
                if late:   # a result for a day already rolled up: roll that day up again
                    target.execute(check_daily_done.delete().where(check_daily_done.c.day.in_(late)))
                # an hour already rolled up that gets a result: roll it up again (one indexed delete;
                # every batch, since the reader's clock decides which hours are rolled up)
                target.execute(check_hourly_done.delete().where(check_hourly_done.c.hour.in_(hours)))

            if conn is not None:
                write(conn)
            else:
                with self.engine.begin() as own:
                    write(own)
        return len(rows)

    def history(self, check: str | None = None, since: datetime | None = None,
                run_id: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(check_results).order_by(check_results.c.checked_at, check_results.c.id)
        if check is not None:
            query = query.where(check_results.c.check_name == check)
        if since is not None:
            query = query.where(check_results.c.checked_at >= since)
        if run_id is not None:
            query = query.where(check_results.c.run_id == run_id)
        with self.engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
        for row in rows:
            row["checked_at"] = _aware(row["checked_at"])
        return rows

    def latest(self, check: str, statuses: tuple[str, ...] = STATUSES) -> dict[str, Any] | None:
        """The newest stored result of a check with one of these statuses."""
        query = (sa.select(check_results).where(check_results.c.check_name == check,
                                                check_results.c.status.in_(statuses))
                 .order_by(check_results.c.checked_at.desc(), check_results.c.id.desc()).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row else None

    def prune(self, older_than: timedelta, now: datetime | None = None) -> int:
        cutoff = (now or utcnow()) - older_than
        with self.engine.begin() as conn:
            done = conn.execute(check_results.delete().where(check_results.c.checked_at < cutoff)).rowcount
            conn.execute(check_daily.delete().where(check_daily.c.day < cutoff.date()))
            conn.execute(check_daily_done.delete().where(check_daily_done.c.day < cutoff.date()))
            conn.execute(alert_outbox.delete().where(
                alert_outbox.c.created_at < cutoff,
                sa.or_(alert_outbox.c.delivered_at.is_not(None), alert_outbox.c.cancelled_at.is_not(None),
                       alert_outbox.c.dead_at.is_not(None)),
            ))
        return done

    # -- alert state -------------------------------------------------------------------
    def alert_states(self, checks: Iterable[str] | None = None, *, alerting: bool | None = None,
                     ) -> dict[str, dict[str, Any]]:
        query = sa.select(alert_state).order_by(alert_state.c.check_name)
        if checks is not None:
            query = query.where(alert_state.c.check_name.in_(list(checks)))
        if alerting is not None:
            query = query.where(alert_state.c.alerting.is_(alerting))
        with self.engine.connect() as conn:
            return {state["check_name"]: state for state in map(_state, conn.execute(query))}

    def lock_alert_states(self, conn: sa.Connection, checks: Iterable[str], *,
                          owner: str | None = None) -> dict[str, dict[str, Any]]:
        """Inside `transaction()`: the states of these checks, created if new, locked until commit;
        with `owner`, every state that task owns too (owned_states() then waits for nothing).

        Take these locks before any other row lock of the transaction: all of them at once, in
        check-name order, is the one order every worker follows (no deadlocks)."""
        names = sorted(set(checks))
        if not names and owner is None:
            return {}
        if names:
            insert = (_dialect_insert(conn))(alert_state).values(
                [{"check_name": n, **_STATE_DEFAULTS} for n in names]).on_conflict_do_nothing(
                index_elements=["check_name"])
            conn.execute(insert)
        wanted = alert_state.c.check_name.in_(names)
        if owner is not None:
            wanted = sa.or_(wanted, alert_state.c.owner == owner)
        # FOR UPDATE with ORDER BY locks the rows in that order (LockRows runs above the sort).
        query = sa.select(alert_state).where(wanted).order_by(alert_state.c.check_name)
        if not self.sqlite:
            query = query.with_for_update()
        return {state["check_name"]: state for state in map(_state, conn.execute(query))}

    def owned_states(self, conn: sa.Connection, owner: str) -> dict[str, dict[str, Any]]:
        """Inside `transaction()`: every state a task owns (to find checks removed from the config)."""
        query = sa.select(alert_state).where(alert_state.c.owner == owner).order_by(alert_state.c.check_name)
        if not self.sqlite:
            query = query.with_for_update()
        return {state["check_name"]: state for state in map(_state, conn.execute(query))}

    def save_alert_states(self, states: Iterable[dict[str, Any]], conn: sa.Connection) -> None:
        """Write back states read with lock_alert_states (the rows exist)."""
        for state in states:
            values = {k: v for k, v in state.items() if k != "check_name"}
            conn.execute(alert_state.update().where(alert_state.c.check_name == state["check_name"]).values(**values))

    def forget_states(self, conn: sa.Connection, checks: Iterable[str]) -> None:
        conn.execute(alert_state.delete().where(alert_state.c.check_name.in_(list(checks))))

    # -- outbox ---------------------------------------------------------------------------
    def enqueue(self, conn: sa.Connection, *, kind: str, payload: dict[str, Any], check: str | None = None,
                channel: str = "now", dag_id: str | None = None, run_id: str | None = None,
                task_id: str | None = None, now: datetime | None = None) -> int:
        result = conn.execute(alert_outbox.insert().values(
            created_at=now or utcnow(), kind=kind, check_name=check, channel=channel,
            payload=json.loads(json.dumps(payload, default=str)), dag_id=dag_id, run_id=run_id,
            task_id=task_id, attempts=0, uncertain=0,
        ))
        return int(result.inserted_primary_key[0])

    def has_message(self, conn: sa.Connection, *, kind: str, dag_id: str, run_id: str) -> bool:
        return conn.execute(sa.select(alert_outbox.c.id).where(
            alert_outbox.c.kind == kind, alert_outbox.c.dag_id == dag_id,
            alert_outbox.c.run_id == run_id)).first() is not None

    def cancel(self, conn: sa.Connection, outbox_id: int, now: datetime | None = None) -> bool:
        """Cancel an alert nobody has received: it was never delivered and is not being sent now.

        A send that Slack may have received (it hung, `uncertain`) is not cancelled: the
        recovery that follows explains it.
        """
        now = now or utcnow()
        done = conn.execute(alert_outbox.update().where(
            alert_outbox.c.id == outbox_id, _PENDING, alert_outbox.c.uncertain == 0,
            sa.or_(alert_outbox.c.claim_token.is_(None), alert_outbox.c.claimed_at < now - CLAIM_STALE_AFTER),
        ).values(cancelled_at=now)).rowcount
        return bool(done)

    def claim(self, channel: str = "now", *, task: tuple[str, str, str] | None = None,
              now: datetime | None = None) -> tuple[str, list[dict[str, Any]]]:
        """Claim the undelivered messages of a channel, so two senders never send one twice.

        With `task` = (dag_id, run_id, task_id), alerts that another task instance enqueued in
        the last half hour are left to it (it delivers them itself, seconds later). Everything
        else is taken: this task's own alerts, recoveries, crashes, and anything an earlier
        delivery failed to send.
        """
        now = now or utcnow()
        token = uuid.uuid4().hex
        pending = sa.and_(
            alert_outbox.c.channel == channel, _PENDING,
            sa.or_(alert_outbox.c.claim_token.is_(None), alert_outbox.c.claimed_at < now - CLAIM_STALE_AFTER),
        )
        if task is not None:
            dag_id, run_id, task_id = task
            pending = sa.and_(pending, sa.or_(
                alert_outbox.c.kind.in_(("recovered", "crash")),
                alert_outbox.c.attempts > 0,
                alert_outbox.c.created_at < now - timedelta(minutes=30),
                alert_outbox.c.run_id.like("watcher__%"),   # issue 16: the watcher sends nothing itself
                sa.and_(alert_outbox.c.dag_id == dag_id, alert_outbox.c.run_id == run_id,
                        alert_outbox.c.task_id == task_id),
            ))
        with self.transaction() as conn:
            # Skip the rows another transaction holds (a sender claiming, an assessment cancelling
            # an alert): a claim never waits on a row lock, so it is part of no deadlock.
            ids = conn.execute(sa.select(alert_outbox.c.id).where(pending).order_by(alert_outbox.c.id)
                               .with_for_update(skip_locked=True)).scalars().all()
            if ids:
                conn.execute(alert_outbox.update().where(alert_outbox.c.id.in_(ids))
                             .values(claim_token=token, claimed_at=now))
            rows = conn.execute(sa.select(alert_outbox).where(alert_outbox.c.claim_token == token)
                                .order_by(alert_outbox.c.id)).all()
        return token, [dict(r._mapping) for r in rows]

    def settle(self, token: str, delivered: bool, error: str | None = None, now: datetime | None = None,
               *, uncertain: bool = False) -> None:
        """After a send: mark the claimed messages delivered, or release them for the next sender.

        `uncertain`: the send may have reached Slack (no answer, or a 200 without "ok").
        Counted, so no message is ever sent more than twice (see dead_letter).
        """
        values: dict[str, Any] = {"attempts": alert_outbox.c.attempts + 1}
        if delivered:
            values["delivered_at"] = now or utcnow()
        else:
            values.update(claim_token=None, claimed_at=None, last_error=error)
            if uncertain:
                values["uncertain"] = alert_outbox.c.uncertain + 1
        with self.engine.begin() as conn:
            conn.execute(alert_outbox.update().where(alert_outbox.c.claim_token == token).values(**values))

    def dead_letter(self, *, max_age: timedelta, max_uncertain: int, now: datetime | None = None) -> int:
        """Give up on messages older than max_age, or sent max_uncertain times without a clear
        answer. A claim whose sender died (stale) does not keep a message alive."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            return conn.execute(alert_outbox.update().where(
                _PENDING,
                sa.or_(alert_outbox.c.claim_token.is_(None), alert_outbox.c.claimed_at < now - CLAIM_STALE_AFTER),
                sa.or_(alert_outbox.c.created_at < now - max_age, alert_outbox.c.uncertain >= max_uncertain),
            ).values(dead_at=now)).rowcount

    def dead_letters(self, since: datetime | None = None) -> list[dict[str, Any]]:
        query = sa.select(alert_outbox).where(alert_outbox.c.dead_at.is_not(None)).order_by(alert_outbox.c.id)
        if since is not None:
            query = query.where(alert_outbox.c.dead_at >= since)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def undelivered(self) -> int:
        """Messages still waiting for Slack (neither delivered, cancelled nor given up)."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(alert_outbox).where(_PENDING)).scalar())

    def outbox(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(alert_outbox).order_by(alert_outbox.c.id))]

    # -- delivery gate (Retry-After) ---------------------------------------------------------
    def gate(self, name: str) -> dict[str, Any] | None:
        """The gate's row ({not_before, since, reason}), or None when it is open."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(delivery_gate).where(delivery_gate.c.name == name)).first()
        if row is None:
            return None
        return {"not_before": _aware(row.not_before), "since": _aware(row.since), "reason": row.reason}

    def close_gate(self, name: str, until: datetime, reason: str, now: datetime | None = None) -> None:
        """Close (or re-close) the gate until `until`; `since` stays that of its first closing."""
        with self.transaction() as conn:
            since = conn.execute(sa.select(delivery_gate.c.since).where(delivery_gate.c.name == name)).scalar()
            conn.execute(delivery_gate.delete().where(delivery_gate.c.name == name))
            conn.execute(delivery_gate.insert().values(name=name, not_before=until, reason=reason,
                                                       since=since or now or utcnow()))

    def open_gate(self, name: str) -> None:
        with self.transaction() as conn:
            conn.execute(delivery_gate.delete().where(delivery_gate.c.name == name))

    # -- reviews (issue 9) ----------------------------------------------------------------------
    def previous(self, check: str, *, not_run: str | None, statuses: tuple[str, ...] = ("ok", "warn", "fail"),
                 ) -> dict[str, Any] | None:
        """The newest result of a check from another run than `not_run` (retries of a run
        re-check; "new since the last scan" means since the last *run*)."""
        query = sa.select(check_results).where(check_results.c.check_name == check,
                                               check_results.c.status.in_(statuses))
        if not_run is not None:
            query = query.where(sa.or_(check_results.c.run_id.is_(None), check_results.c.run_id != not_run))
        query = query.order_by(check_results.c.checked_at.desc(), check_results.c.id.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row else None

    def report_enqueued(self, check: str, *, channel: str, dag_id: str | None, run_id: str | None,
                        task_id: str | None) -> bool:
        """Whether this task of this run already put a report of this check on a channel (retries)."""
        query = sa.select(alert_outbox.c.id).where(
            alert_outbox.c.kind == "report", alert_outbox.c.check_name == check, alert_outbox.c.channel == channel,
            alert_outbox.c.dag_id == dag_id, alert_outbox.c.run_id == run_id, alert_outbox.c.task_id == task_id,
        ).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    # -- reviews (issue 9): the monthly audit reads the month's record -----------------------------
    def period(self, since: datetime, until: datetime | None = None, *, checks: Iterable[str] | None = None,
               prefixes: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Results stored in [since, until) of the named checks and of the checks under these
        name prefixes (both empty: every check), oldest first."""
        query = sa.select(check_results).where(check_results.c.checked_at >= since)
        if until is not None:
            query = query.where(check_results.c.checked_at < until)
        names, starts = list(checks or ()), list(prefixes)
        if names or starts:
            query = query.where(sa.or_(*([check_results.c.check_name.in_(names)] if names else []),
                                       *(check_results.c.check_name.startswith(p, autoescape=True) for p in starts)))
        query = query.order_by(check_results.c.checked_at, check_results.c.id)
        with self.engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
        for row in rows:
            row["checked_at"] = _aware(row["checked_at"])
        return rows

    def first_result_at(self) -> datetime | None:
        """When the oldest stored result was checked: the project's first day, as far as the
        store remembers (a period that began before it has no complete record). Raw results
        past results.raw_retention_days are pruned once rolled up, so the roll-ups count too."""
        with self.engine.connect() as conn:
            first = _as_datetime(conn.execute(sa.select(sa.func.min(check_results.c.checked_at))).scalar())
            first_day = conn.execute(sa.select(sa.func.min(check_daily.c.day))).scalar()
        candidates = [_aware(first)] if first is not None else []
        if first_day is not None:
            candidates.append(_day_start(first_day))
        return min(candidates, default=None)

    def first_seen(self, checks: Iterable[str]) -> dict[str, datetime]:
        """Per named check, when it was first checked as far as the store remembers: its oldest raw
        result, or the start of its oldest rolled-up day once raw rows are pruned (never stored: absent)."""
        names = list(checks)
        found = self.first_checked(names)
        if names:
            query = sa.select(check_daily.c.check_name, sa.func.min(check_daily.c.day)) \
                .where(check_daily.c.check_name.in_(names)).group_by(check_daily.c.check_name)
            with self.engine.connect() as conn:
                for name, day in conn.execute(query):
                    start = _day_start(day)
                    found[name] = min(found.get(name, start), start)
        return found

    def latest_per_check(self, since: datetime | None = None, until: datetime | None = None, *,
                         prefixes: Iterable[str] = ()) -> list[dict[str, Any]]:
        """The newest result of every check stored in [since, until) (optionally only checks under
        these prefixes), by check name."""
        ranked = sa.select(check_results, sa.func.row_number().over(
            partition_by=check_results.c.check_name,
            order_by=(check_results.c.checked_at.desc(), check_results.c.id.desc())).label("rank"))
        if since is not None:
            ranked = ranked.where(check_results.c.checked_at >= since)
        if until is not None:
            ranked = ranked.where(check_results.c.checked_at < until)
        starts = list(prefixes)
        if starts:
            ranked = ranked.where(sa.or_(*(check_results.c.check_name.startswith(p, autoescape=True) for p in starts)))
        inner = ranked.subquery()
        query = sa.select(*(inner.c[c.name] for c in check_results.columns)).where(inner.c.rank == 1) \
            .order_by(inner.c.check_name)
        with self.engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
        for row in rows:
            row["checked_at"] = _aware(row["checked_at"])
        return rows

    def cached_vulns(self, ids: Iterable[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """vuln id -> (modified, record) of the advisories already fetched."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                rows = conn.execute(sa.select(osv_vulns).where(osv_vulns.c.vuln_id.in_(wanted[start:start + 500])))
                for row in rows:
                    found[row.vuln_id] = (row.modified, row.record)
        return found

    def cache_vulns(self, records: dict[str, tuple[str, dict[str, Any]]], now: datetime | None = None) -> None:
        """Insert or replace advisories: id -> (modified, record)."""
        if not records:
            return
        now = now or utcnow()
        with self.engine.begin() as conn:
            conn.execute(osv_vulns.delete().where(osv_vulns.c.vuln_id.in_(list(records))))
            conn.execute(osv_vulns.insert(), [
                {"vuln_id": vid, "modified": modified, "record": json.loads(json.dumps(record, default=str)),
                 "fetched_at": now} for vid, (modified, record) in records.items()])


    # -- runbooks (issue 10) ---------------------------------------------------------------------
    def run_results(self, dag_id: str, run_id: str) -> dict[str, list[CheckResult]]:
        """The results a run stored, per task: each check's result of the task's latest try."""
        query = (sa.select(check_results).where(check_results.c.dag_id == dag_id, check_results.c.run_id == run_id)
                 .order_by(check_results.c.id))
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        last_try: dict[str, int] = {}
        for row in rows:
            last_try[row["task_id"]] = max(last_try.get(row["task_id"], 0), row["try_number"] or 0)
        by_task: dict[str, dict[str, CheckResult]] = {}
        for row in rows:
            if (row["try_number"] or 0) != last_try[row["task_id"]]:
                continue
            by_task.setdefault(row["task_id"], {})[row["check_name"]] = CheckResult(
                check=row["check_name"], status=row["status"], summary=row["summary"], target=row["target"] or "",
                group=row["check_group"] or "", reason=row["reason"], metrics=row["metrics"] or {},
                evidence=row["evidence"] or {}, runbook=row["runbook"], provider=row["provider"],
                critical=bool(row["critical"]), time=_aware(row["checked_at"]))
        return {task: list(checks.values()) for task, checks in by_task.items()}

    def record_runbook_start(self, *, runbook: str, run_id: str | None, outcome: str, checks: list[str],
                             detail: str | None = None, dag_id: str | None = None, source_run_id: str | None = None,
                             task_id: str | None = None, now: datetime | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(runbook_starts.insert().values(
                started_at=now or utcnow(), runbook=runbook, run_id=run_id, outcome=outcome, checks=checks,
                detail=detail, dag_id=dag_id, source_run_id=source_run_id, task_id=task_id))

    def claim_runbook_start(self, *, runbook: str, run_id: str, limit: int, window: timedelta, checks: list[str],
                            dag_id: str | None = None, source_run_id: str | None = None,
                            task_id: str | None = None, now: datetime | None = None,
                            ) -> tuple[int | None, list[dict[str, Any]]]:
        """The circuit breaker, atomically: claim one of `limit` starts of a runbook per `window`.

        Returns (claim id, []) when the start may go ahead: its row (outcome `claimed`) already
        counts against the limit; settle_runbook_start() records what the trigger did. Else
        (None, the runs that fill the window, oldest first). A run counts once however many tasks
        asked for it, and not against another start of itself (a retry of the incident's task). Claims of one runbook
        serialise: SQLite's write lock (BEGIN IMMEDIATE), a transaction-level advisory lock on
        Postgres. A claimer that dies before settling keeps its claim for the window: the
        breaker errs towards fewer runs.
        """
        now = now or utcnow()
        c = runbook_starts.c
        with self.transaction() as conn:
            if not self.sqlite:
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_advisory_key("runbook_starts", runbook))))
            recent = conn.execute(sa.select(c.run_id, c.started_at).where(
                c.runbook == runbook, c.started_at >= now - window, c.outcome.in_(COUNTED_STARTS),
                sa.or_(c.run_id.is_(None), c.run_id != run_id)).order_by(c.started_at, c.id)).all()
            runs = {r.run_id: _aware(r.started_at) for r in reversed(recent)}   # a run counts once, from its first start
            if len(runs) >= limit:
                return None, sorted(({"run_id": k, "started_at": v} for k, v in runs.items()),
                                    key=lambda r: r["started_at"])
            claim = conn.execute(runbook_starts.insert().values(
                started_at=now, runbook=runbook, run_id=run_id, outcome="claimed", checks=checks,
                dag_id=dag_id, source_run_id=source_run_id, task_id=task_id)).inserted_primary_key[0]
        return int(claim), []

    def settle_runbook_start(self, claim: int, outcome: str, detail: str | None = None) -> None:
        """What the trigger of a claimed start did: started | exists (counted) | error (released)."""
        with self.transaction() as conn:
            conn.execute(runbook_starts.update().where(runbook_starts.c.id == claim)
                         .values(outcome=outcome, detail=detail))

    def runbook_starts(self, runbook: str | None = None, since: datetime | None = None) -> list[dict[str, Any]]:
        query = sa.select(runbook_starts).order_by(runbook_starts.c.started_at, runbook_starts.c.id)
        if runbook is not None:
            query = query.where(runbook_starts.c.runbook == runbook)
        if since is not None:
            query = query.where(runbook_starts.c.started_at >= since)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for row in rows:
            row["started_at"] = _aware(row["started_at"])
        return rows

    def extend_payload(self, outbox_id: int, extra: dict[str, Any]) -> None:
        """Add keys to an undelivered message (e.g. the link to the diagnosis run an alert started)."""
        with self.transaction() as conn:
            row = conn.execute(sa.select(alert_outbox.c.payload).where(alert_outbox.c.id == outbox_id)).first()
            if row is not None:
                payload = {**(row.payload or {}), **json.loads(json.dumps(extra, default=str))}
                conn.execute(alert_outbox.update().where(alert_outbox.c.id == outbox_id).values(payload=payload))
    # -- end runbooks ------------------------------------------------------------------------------

    # -- reports and status page (issue 12) ---------------------------------------------------------
    def roll_up(self, since: date, now: datetime | None = None) -> int:
        """Roll up every finished UTC day from `since` that is not rolled up yet; returns days done."""
        today = (now or utcnow()).date()
        with self.engine.connect() as conn:
            done = {_as_date(d) for d in conn.execute(
                sa.select(check_daily_done.c.day).where(check_daily_done.c.day >= since)).scalars()}
        todo = [since + timedelta(days=i) for i in range((today - since).days)]
        todo = [d for d in todo if d not in done]
        for day in todo:
            self._roll_up_day(day)
        return len(todo)

    def rollup_marker(self, since: date) -> tuple[int, Any]:
        """(days rolled up since `since`, the latest roll-up time): changes whenever check_daily does."""
        with self.engine.connect() as conn:
            count, last = conn.execute(sa.select(sa.func.count(), sa.func.max(check_daily_done.c.rolled_at))
                                       .where(check_daily_done.c.day >= since)).one()
        return int(count), last

    def _roll_up_day(self, day: date) -> None:
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        c = check_results.c
        query = (sa.select(c.check_name, c.check_group, c.critical, c.status, c.in_maintenance,
                           c.metrics["response_ms"].as_float().label("response_ms"), c.id)
                 .where(c.checked_at >= start, c.checked_at < start + timedelta(days=1))
                 .order_by(c.checked_at, c.id))
        days: dict[str, dict[str, Any]] = {}
        times: dict[str, list[float]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                entry = days.get(row.check_name)
                if entry is None:
                    entry = days[row.check_name] = {
                        "check_name": row.check_name, "day": day, "counted": 0, "up": 0, "warned": 0, "down": 0,
                        "maintenance": 0, "skipped": 0, "last_id": None}
                    times[row.check_name] = []
                entry["check_group"], entry["critical"], entry["last_id"] = row.check_group, row.critical, row.id
                if row.status == "skipped":
                    entry["skipped"] += 1
                    continue
                if row.in_maintenance:
                    entry["maintenance"] += 1
                    continue
                entry["counted"] += 1
                if row.status == "fail":
                    entry["down"] += 1
                else:
                    entry["up"] += 1
                    entry["warned"] += row.status == "warn"
                if row.response_ms is not None:
                    times[row.check_name].append(float(row.response_ms))
            last_ids = [e.pop("last_id") for e in days.values()]
            last_metrics = dict(conn.execute(sa.select(c.check_name, c.metrics).where(c.id.in_(last_ids))).all()) \
                if last_ids else {}
        for name, entry in days.items():
            values = sorted(times[name])
            entry.update(p50_ms=_quantile(values, 0.50), p95_ms=_quantile(values, 0.95),
                         max_ms=values[-1] if values else None,
                         metrics=last_metrics.get(name) if not values else None)
        with self.engine.begin() as conn:
            conn.execute(check_daily.delete().where(check_daily.c.day == day))
            if days:
                conn.execute(check_daily.insert(), list(days.values()))
            conn.execute(check_daily_done.delete().where(check_daily_done.c.day == day))
            conn.execute(check_daily_done.insert().values(day=day, rolled_at=utcnow()))

    def _keep_latest(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        newest: dict[str, dict[str, Any]] = {}
        for row in sorted(rows, key=lambda r: r["check_name"]):   # row locks in name order: no deadlocks
            seen = newest.get(row["check_name"])
            if seen is None or row["checked_at"] >= seen["checked_at"]:
                newest[row["check_name"]] = row
        known = {r.check_name: r for r in conn.execute(
            sa.select(check_latest.c.check_name, check_latest.c.checked_at, check_latest.c.state)
            .where(check_latest.c.check_name.in_(list(newest))))}
        for name, row in newest.items():
            counted = row["status"] != "skipped" and not row["in_maintenance"]
            state = ("down" if row["status"] == "fail" else "up") if counted else None
            values = {k: row[k] for k in ("checked_at", "status", "summary", "reason", "target", "check_group",
                                          "critical", "in_maintenance")}
            values["response_ms"] = (row["metrics"] or {}).get("response_ms")
            old = known.get(name)
            if old is None:
                # First time seen here; older history (from before this table) says since when.
                values.update(check_name=name, state=state, state_since=self._state_since(conn, name, state))
                conn.execute(_dialect_insert(conn)(check_latest).on_conflict_do_nothing(), [values])
                continue
            if _aware(old.checked_at) > _aware(row["checked_at"]):
                continue   # a late result: the newer one stays
            if state is not None and state != old.state:
                values.update(state=state, state_since=row["checked_at"])
            conn.execute(check_latest.update().where(check_latest.c.check_name == name).values(**values))

    @staticmethod
    def _state_since(conn: sa.Connection, name: str, state: str | None) -> datetime | None:
        if state is None:
            return None
        c = check_results.c
        same, other = (("fail",), ("ok", "warn")) if state == "down" else (("ok", "warn"), ("fail",))
        counted = c.in_maintenance.is_(False)
        last_other = conn.execute(sa.select(sa.func.max(c.checked_at)).where(
            c.check_name == name, c.status.in_(other), counted)).scalar()
        first = sa.select(sa.func.min(c.checked_at)).where(c.check_name == name, c.status.in_(same), counted)
        if last_other is not None:
            first = first.where(c.checked_at > last_other)
        return _as_datetime(conn.execute(first).scalar())

    def current_states(self, checks: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The newest result of each check and since when it is up or down (from check_latest)."""
        names = list(checks)
        with self.engine.connect() as conn:
            result = conn.execute(sa.select(check_latest).where(check_latest.c.check_name.in_(names)))
            keys = list(result.keys())
            found = {row[0]: dict(zip(keys, row)) for row in result}
            missing = [n for n in names if n not in found]
            if missing:   # history recorded before check_latest existed
                found.update(self._latest_from_history(conn, missing))
        for row in found.values():
            row["checked_at"], row["state_since"] = _aware(row["checked_at"]), _aware(_as_datetime(row["state_since"]))
        return found

    def _latest_from_history(self, conn: sa.Connection, names: list[str]) -> dict[str, dict[str, Any]]:
        c = check_results.c
        found = {}
        for name in names:
            row = conn.execute(sa.select(c.check_name, c.checked_at, c.status, c.summary, c.reason, c.target,
                                         c.check_group, c.critical, c.in_maintenance,
                                         c.metrics["response_ms"].as_float().label("response_ms"))
                               .where(c.check_name == name).order_by(c.checked_at.desc(), c.id.desc()).limit(1)).first()
            if row is None:
                continue
            entry = dict(row._mapping)
            counted = entry["status"] != "skipped" and not entry["in_maintenance"]
            entry["state"] = ("down" if entry["status"] == "fail" else "up") if counted else None
            entry["state_since"] = self._state_since(conn, name, entry["state"])
            found[name] = entry
        return found

    def daily(self, since: date, checks: Iterable[str] | None = None, with_metrics: bool = False,
              columns: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Rolled-up days (call roll_up first), ordered by check and day; `columns` picks fewer."""
        wanted = list(columns) if columns is not None else \
            [col.name for col in check_daily.c if with_metrics or col.name != "metrics"]
        for key in ("check_name", "day"):
            if key not in wanted:
                wanted.insert(0, key)
        query = sa.select(*[check_daily.c[name] for name in wanted]).where(check_daily.c.day >= since) \
            .order_by(check_daily.c.check_name, check_daily.c.day)
        if checks is not None:
            query = query.where(check_daily.c.check_name.in_(list(checks)))
        day_at = wanted.index("day")
        rows = []
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                entry = dict(zip(wanted, row))
                entry["day"] = _as_date(row[day_at])
                rows.append(entry)
        return rows

    def live_counts(self, windows: dict[str, datetime], checks: Iterable[str] | None = None,
                    now: datetime | None = None) -> dict[str, dict[str, dict[str, int]]]:
        """Counted results since each of a few times (windows: {name: start}) -> {window: {check:
        {counted, up, down, maintenance, skipped}}}. For the current day and the last 24 h.

        Exact: the finished hours of the last day come from check_hourly (rolled up here first,
        up to `now`), the rest from the raw rows: the hour under way and the hour a window starts
        in (a window's first, partial hour). The database only counts rows per (check, status,
        maintenance flag, windows entered); the few groups are summed here.
        """
        earliest = min(windows.values())
        self.roll_up_hours(earliest, now)
        names = list(checks) if checks is not None else None
        starts = list(windows.values())
        # Rolled-up hours no window starts inside: wholly in or wholly out of every window.
        whole = [h for h in self._rolled_hours(earliest) if all(h >= w or h + HOUR <= w for w in starts)]
        empty = {"counted": 0, "up": 0, "down": 0, "maintenance": 0, "skipped": 0}
        found: dict[str, dict[str, dict[str, int]]] = {w: {} for w in windows}
        spans: list[tuple[datetime, datetime | None]] = []   # the raw remainder, [start, end)
        cursor = earliest
        for hour in whole:
            if hour > cursor:
                spans.append((cursor, hour))
            cursor = max(cursor, hour + HOUR)
        spans.append((cursor, None))
        c = check_results.c
        flags = [sa.case((c.checked_at >= start, 1), else_=0).label(f"w{i}") for i, start in enumerate(starts)]
        with self.engine.connect() as conn:
            if whole:   # summed in the database: one row per check, columns per window and count
                h = check_hourly.c
                keys = list(empty)
                sums = [sa.func.sum(sa.case((h.hour >= start, h[key]), else_=0)) for start in starts for key in keys]
                query = sa.select(h.check_name, *sums).where(h.hour.in_(whole)).group_by(h.check_name)
                if names is not None:
                    query = query.where(h.check_name.in_(names))
                for row in conn.execute(query):
                    for index, window in enumerate(windows):
                        values = row[1 + index * len(keys):1 + (index + 1) * len(keys)]
                        if any(values):
                            counts = found[window].setdefault(row[0], dict(empty))
                            for key, value in zip(keys, values):
                                counts[key] += int(value)
            for first, last in spans:
                # status IN (all four): lets the (check_name, status, checked_at, in_maintenance)
                # index answer from the index alone, one range per check and status.
                query = (sa.select(c.check_name, c.status, c.in_maintenance, *flags, sa.func.count())
                         .where(c.checked_at >= first, c.status.in_(STATUSES))
                         .group_by(c.check_name, c.status, c.in_maintenance, *flags))
                if last is not None:
                    query = query.where(c.checked_at < last)
                if names is not None:
                    query = query.where(c.check_name.in_(names))
                for row in conn.execute(query):
                    name, status, quiet, count = row[0], row[1], row[2], row[-1]
                    for index, window in enumerate(windows):
                        if not row[3 + index]:
                            continue
                        _add_counts(found[window].setdefault(name, dict(empty)), status, quiet, count)
        return found

    def roll_up_hours(self, since: datetime, now: datetime | None = None) -> int:
        """Roll up every UTC hour from the one `since` falls in that ended HOUR_SETTLE before `now`
        and is not rolled up yet (check_hourly); returns hours done. Hourly rows older than
        HOURLY_KEEP are deleted on the way (only the last day is read)."""
        now = now or utcnow()
        first, stop = _hour(since), _hour(now - HOUR_SETTLE)
        done = set(self._rolled_hours(first, stop))
        todo = [first + HOUR * i for i in range(int((stop - first) / HOUR))]
        todo = [hour for hour in todo if hour not in done]
        for hour in todo:
            self._roll_up_hour(hour)
        if todo:
            with self.engine.begin() as conn:
                old = _hour(now - HOURLY_KEEP)
                conn.execute(check_hourly.delete().where(check_hourly.c.hour < old))
                conn.execute(check_hourly_done.delete().where(check_hourly_done.c.hour < old))
        return len(todo)

    def _rolled_hours(self, since: datetime, until: datetime | None = None) -> list[datetime]:
        query = sa.select(check_hourly_done.c.hour).where(check_hourly_done.c.hour >= _hour(since))
        if until is not None:
            query = query.where(check_hourly_done.c.hour < until)
        with self.engine.connect() as conn:
            return sorted(_aware(_as_datetime(h)) for h in conn.execute(query).scalars())

    def _roll_up_hour(self, hour: datetime) -> None:
        c = check_results.c
        query = (sa.select(c.check_name, c.status, c.in_maintenance, sa.func.count())
                 .where(c.checked_at >= hour, c.checked_at < hour + HOUR)
                 .group_by(c.check_name, c.status, c.in_maintenance))
        rows: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for name, status, quiet, count in conn.execute(query):
                entry = rows.setdefault(name, {"check_name": name, "hour": hour, "counted": 0, "up": 0, "down": 0,
                                               "maintenance": 0, "skipped": 0})
                _add_counts(entry, status, quiet, count)
        with self.engine.begin() as conn:
            insert = _dialect_insert(conn)
            conn.execute(check_hourly.delete().where(check_hourly.c.hour == hour))
            if rows:   # upserts: two readers rolling the same hour at once both succeed
                upsert = insert(check_hourly)
                conn.execute(upsert.on_conflict_do_update(
                    index_elements=["check_name", "hour"],
                    set_={k: upsert.excluded[k] for k in ("counted", "up", "down", "maintenance", "skipped")}),
                    list(rows.values()))
            marker = insert(check_hourly_done)
            conn.execute(marker.on_conflict_do_update(index_elements=["hour"], set_={"rolled_at": marker.excluded.rolled_at}),
                         [{"hour": hour, "rolled_at": utcnow()}])

    def live_samples(self, after: datetime, checks: Iterable[str]) -> list[tuple[str, datetime, float | None, float | None]]:
        """(check, time, response_ms, tls_days_left) of the results made after a time, oldest first:
        the status page's today. response_ms is None for results that do not count (skipped, in a
        maintenance window). One indexed range per check."""
        c = check_results.c
        counted = sa.and_(c.status != "skipped", c.in_maintenance.is_(False))
        query = (sa.select(c.check_name, c.checked_at,
                           sa.case((counted, c.metrics["response_ms"].as_float()), else_=None),
                           c.metrics["tls_days_left"].as_float())
                 .where(c.check_name.in_(list(checks)), c.checked_at > after).order_by(c.checked_at))
        with self.engine.connect() as conn:
            return [(name, _aware(at), ms, days_left) for name, at, ms, days_left in conn.execute(query)]

    def first_checked(self, checks: Iterable[str]) -> dict[str, datetime]:
        """When each check's first stored result was made (one index seek per check)."""
        c = check_results.c
        found = {}
        with self.engine.connect() as conn:
            for name in checks:
                first = conn.execute(sa.select(sa.func.min(c.checked_at)).where(c.check_name == name)).scalar()
                if first is not None:
                    found[name] = _aware(_as_datetime(first))
        return found

    def response_times(self, check: str, since: datetime) -> list[tuple[datetime, float | None, str]]:
        """(time, response_ms, status) of one check since a time: the raw series of a drill-down chart."""
        c = check_results.c
        query = (sa.select(c.checked_at, c.metrics["response_ms"].as_float(), c.status)
                 .where(c.check_name == check, c.checked_at >= since).order_by(c.checked_at, c.id))
        with self.engine.connect() as conn:
            return [(_aware(t), ms, status) for t, ms, status in conn.execute(query)]

    def incidents(self, since: datetime, checks: Iterable[str] | None = None,
                  until: datetime | None = None, newest_failures: int | None = None) -> list[dict[str, Any]]:
        """Runs of consecutive failures after `since` (maintenance and skipped results neither
        open nor end one): check, start, end (None while ongoing), failed checks, reason.

        Found from the failures only: for each failure, the first later success of the same
        check (an indexed look-up); failures sharing that success are one incident. With
        newest_failures, only that many of the newest failures are read (the status page's
        recent incidents) and the oldest incident, possibly cut, is left out.
        """
        c = check_results.c
        where = [c.status == "fail", c.in_maintenance.is_(False), c.checked_at >= since]
        if until is not None:
            where.append(c.checked_at < until)
        if checks is not None:
            where.append(c.check_name.in_(list(checks)))
        if newest_failures is not None:
            # The newest failures' ids first (index only), then the incident query over those:
            # an ORDER BY time ... LIMIT would walk the time index through every success. Read
            # newest first, a day, then twice as far back each time, until more than
            # newest_failures are found or `since` is reached: with a sample every 30 s, 14 days
            # hold thousands of failures, the newest few hundred are in the last day or two.
            # The times are only sorted: left as the driver returns them (SQLite's text sorts as
            # the time does), not parsed into datetimes.
            found_ids: list[Any] = []
            upper, span = None, timedelta(days=1)
            lower = max(since, (until or utcnow()) - span)
            with self.engine.connect() as conn:
                while True:
                    chunk = [*where, c.checked_at >= lower] + ([c.checked_at < upper] if upper is not None else [])
                    found_ids += conn.execute(sa.select(c.id, sa.type_coerce(c.checked_at, sa.String)).where(*chunk)).all()
                    if len(found_ids) > newest_failures or lower <= since:
                        break
                    upper, span = lower, span * 2
                    lower = max(since, lower - span)
            found_ids.sort(key=lambda r: r[1], reverse=True)
            where = [c.id.in_([r[0] for r in found_ids[:newest_failures]])]
        failures = sa.select(c.check_name, c.checked_at, c.reason, c.summary).where(*where).subquery("failures")
        f, later = failures.c, check_results.alias("later")
        # The next passing result, per passing status (ok, warn): each one seek into the
        # (check_name, status, checked_at, in_maintenance) index, the first row in time order.
        # The earlier of the two is taken here (a status IN would read and sort every later success).
        def first_after(status: str) -> Any:
            return (sa.select(later.c.checked_at)
                    .where(later.c.check_name == f.check_name, later.c.status == status,
                           later.c.checked_at > f.checked_at, later.c.in_maintenance.is_(False))
                    .order_by(later.c.checked_at).limit(1).scalar_subquery())

        query = sa.select(f.check_name, f.checked_at, f.reason, f.summary, first_after("ok").label("ended_ok"),
                          first_after("warn").label("ended_warn")).order_by(f.check_name, f.checked_at)
        found: dict[tuple[str, Any], dict[str, Any]] = {}
        count, oldest = 0, None
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                count += 1
                ends = [_as_datetime(e) for e in (row.ended_ok, row.ended_warn) if e is not None]
                ended = min(ends) if ends else None
                key = (row.check_name, ended)
                if oldest is None or row.checked_at < oldest[1]:
                    oldest = (key, row.checked_at)
                incident = found.get(key)
                if incident is None:
                    found[key] = {"check": row.check_name, "start": _aware(_as_datetime(row.checked_at)),
                                  "end": _aware(ended), "reason": row.reason,
                                  "summary": row.summary, "failures": 1}
                else:
                    incident["failures"] += 1
        if newest_failures is not None and len(found_ids) > newest_failures and oldest is not None:
            found.pop(oldest[0], None)   # may have started before the newest failures read
        return sorted(found.values(), key=lambda i: i["start"])

    def open_alerts(self) -> list[dict[str, Any]]:
        """Checks with an open incident (alert_state.alerting), with the critical flag of their last result."""
        c = check_results.c
        with self.engine.connect() as conn:
            states = [dict(r._mapping) for r in conn.execute(
                sa.select(alert_state).where(alert_state.c.alerting.is_(True)).order_by(alert_state.c.check_name))]
            for state in states:
                state["failing_since"] = _aware(state["failing_since"])
                last = conn.execute(sa.select(c.critical, c.summary, c.reason).where(c.check_name == state["check_name"])
                                    .order_by(c.checked_at.desc(), c.id.desc()).limit(1)).first()
                state["critical"] = bool(last.critical) if last else True
                state["summary"] = last.summary if last else ""
                state["reason"] = last.reason if last else None
        return states

    def group_results(self, groups: Iterable[str], since: datetime, until: datetime | None = None,
                      prefixes: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Results of non-uptime check families (backups, errors, performance...) in a period:
        those of the groups, plus checks whose name starts with a prefix (each an index range)."""
        c = check_results.c
        wanted = []
        groups = list(groups)
        if groups:
            wanted.append(c.check_group.in_(groups))
        rows: dict[int, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            names: list[str] = []
            for prefix in prefixes:   # the names first (an index range), then their rows by name and time
                names += conn.execute(sa.select(c.check_name).distinct().where(
                    c.check_name >= prefix, c.check_name < prefix[:-1] + chr(ord(prefix[-1]) + 1))).scalars().all()
            if names:
                wanted.append(c.check_name.in_(names))
            for condition in wanted:   # one query each: an OR would stop either index from being used
                query = sa.select(check_results).where(condition, c.checked_at >= since)
                if until is not None:
                    query = query.where(c.checked_at < until)
                for row in conn.execute(query):
                    rows[row.id] = dict(row._mapping)
        found = sorted(rows.values(), key=lambda r: (_aware(r["checked_at"]), r["id"]))
        for row in found:
            row["checked_at"] = _aware(row["checked_at"])
        return found
    # -- end reports and status page ------------------------------------------------------

    # -- the uptime watcher (issue 16) -----------------------------------------------------------
    def pending_among(self, outbox_ids: Iterable[int]) -> set[int]:
        """Which of these messages are still waiting for delivery (not delivered, cancelled or dead)."""
        ids = [int(i) for i in outbox_ids]
        if not ids:
            return set()
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(alert_outbox.c.id).where(alert_outbox.c.id.in_(ids), _PENDING))
                       .scalars())

    def newest_sample(self, checks: Iterable[str], since: datetime, run_prefix: str) -> datetime | None:
        """The newest result of these checks since `since` stored by runs whose id starts with
        run_prefix (the watcher's sweeps), or None. Index (check_name, checked_at): a few rows."""
        c = check_results.c
        names = list(checks)
        if not names:
            return None
        with self.engine.connect() as conn:
            newest = conn.execute(sa.select(sa.func.max(c.checked_at)).where(
                c.check_name.in_(names), c.checked_at >= since, c.run_id.like(f"{run_prefix}%"))).scalar()
        return _aware(_as_datetime(newest))

    def prune_raw(self, older_than: timedelta, now: datetime | None = None) -> int:
        """Delete raw results older than `older_than` whose UTC day is rolled up (check_daily keeps
        it); a day not rolled up yet keeps its rows until it is."""
        cutoff = (now or utcnow()) - older_than
        c = check_results.c
        with self.engine.connect() as conn:
            oldest = _as_datetime(conn.execute(sa.select(sa.func.min(c.checked_at))).scalar())
            if oldest is None or _aware(oldest) >= cutoff:
                return 0
            days = sorted(_as_date(d) for d in conn.execute(sa.select(check_daily_done.c.day).where(
                check_daily_done.c.day >= _utc_day(oldest), check_daily_done.c.day <= cutoff.date())).scalars())
        deleted = 0
        for day in days:   # one day per transaction: a long delete would hold SQLite's write lock
            start = _day_start(day)
            end = min(start + timedelta(days=1), cutoff)
            with self.engine.begin() as conn:
                deleted += conn.execute(check_results.delete().where(c.checked_at >= start, c.checked_at < end)
                                        ).rowcount or 0
        return deleted
    # -- end uptime watcher ----------------------------------------------------------------------


def _utc_day(value: datetime) -> date:
    return (value.astimezone(timezone.utc) if value.tzinfo else value).date()


def _day_start(value: Any) -> datetime:
    day = _as_date(value)
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _as_date(value: Any) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _as_datetime(value: Any) -> datetime | None:
    # A scalar subquery's datetime comes back from SQLite as text.
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _quantile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank quantile of a sorted list (the same rank rule as checks.uptime_report.percentile)."""
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))
    return ordered[index]


def _add_counts(counts: dict[str, int], status: str, in_maintenance: bool, count: int) -> None:
    """Add `count` results of one status to {counted, up, down, maintenance, skipped} (ACCOUNTING)."""
    if status == "skipped":
        counts["skipped"] += count
    elif in_maintenance:
        counts["maintenance"] += count
    else:
        counts["counted"] += count
        counts["down" if status == "fail" else "up"] += count


def _hour(value: datetime) -> datetime:
    """The start of the UTC hour a time falls in (aware)."""
    value = value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return value.replace(minute=0, second=0, microsecond=0)


CLAIM_STALE_AFTER = timedelta(minutes=10)   # a sender that died mid-send releases its claim


def _dialect_insert(conn: sa.Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - only SQLite and Postgres are supported
        raise NotImplementedError(f"results store on {conn.dialect.name} is not supported")
    return insert


def _advisory_key(namespace: str, name: str) -> int:
    """A Postgres advisory lock id (signed 64-bit) for one named thing, the same in every process."""
    digest = hashlib.blake2b(f"{namespace}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling would defer BEGIN; SQLAlchemy's "begin" event
    # (below) issues it instead, IMMEDIATE for writers that must serialise.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("sqlite_immediate") else "BEGIN")
