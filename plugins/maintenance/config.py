"""The typed model of include/config/maintenance.yaml and its loader.

Every error names the file, the key path and what is wrong, e.g.
    include/config/maintenance.yaml: endpoints[1].conditions[0]: unknown placeholder '[STATSU]' ...
Conditions are parsed here, at load time, so a typo never waits for 3 a.m. to show up.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections import Counter
from contextvars import ContextVar
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

from maintenance.conditions import Condition, ConditionError, parse_condition
from maintenance.durations import format_duration, parse_duration
from maintenance.parse_settings import DEFAULT_CONFIG_PATH, PROJECT_ROOT, config_path, file_key  # noqa: F401
from maintenance import parse_settings

log = logging.getLogger(__name__)



_SECRET_KEY = re.compile(r"(?i)key|token|secret|password|passwd|sig|auth")


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names file and key."""


def _duration(value: Any) -> timedelta:
    return parse_duration(value)


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def _positive(value: timedelta) -> timedelta:
    if value.total_seconds() <= 0:
        raise ValueError("must be a positive duration")
    return value


PositiveDuration = Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_positive)]


def at_most(longest: timedelta) -> AfterValidator:
    """A duration's upper bound (issue #18, item 14): the longest the code that uses it makes sense of."""
    def check(value: timedelta) -> timedelta:
        if value > longest:
            raise ValueError(f"at most {format_duration(longest.total_seconds())}, got "
                             f"{format_duration(value.total_seconds())}")
        return value
    return AfterValidator(check)


def _no_watcher_or_at_least_10s(value: timedelta) -> timedelta:
    if timedelta(0) < value < timedelta(seconds=10):
        raise ValueError("must be 0 (no watcher) or between 10s and 1h: below 10 s a slow site's sweeps overlap")
    return value


def _not_negative(value: timedelta) -> timedelta:
    if value.total_seconds() < 0:
        raise ValueError("must not be negative")
    return value


# A watcher's interval in the triggerer (uptime, Vercel deployments): 0 turns it off.
WatchInterval = Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_not_negative),
                          AfterValidator(_no_watcher_or_at_least_10s), at_most(timedelta(hours=1))]


# Numbers of days kept: a century at most (more overflows `now - timedelta(days=...)`).
MAX_RETENTION_DAYS = 36500
MANY = 1_000_000_000   # the bound of counts and thresholds that have no natural one


# -- a file of a million bad items (issue #18, item 14): stop after the first hundred errors -------
# pydantic collects every error of a list before it returns; a million bad items took 1.6 GB.
# load_config() validates every list and mapping of the file a chunk at a time instead, counting
# the errors, and stops checking once MAX_ERRORS are found.
MAX_ERRORS = 100
_CHUNK = 100                 # items validated between two looks at the count
_error_count: ContextVar[list[int] | None] = ContextVar("config_error_count", default=None)


def _count_errors_in_containers(schema: Any) -> Any:
    """A copy of a model's core schema with each list and dict validated by _validate_in_chunks."""
    if isinstance(schema, list):
        return [_count_errors_in_containers(item) for item in schema]
    function = schema.get("function") if isinstance(schema, dict) else None
    if not isinstance(schema, dict) or isinstance(function, dict) and function.get("function") is _validate_in_chunks:
        return schema   # not a schema, or a nested model's container, done by its own class
    copy = {key: _count_errors_in_containers(value) for key, value in schema.items()}
    if copy.get("type") in ("list", "dict"):
        return core_schema.no_info_wrap_validator_function(_validate_in_chunks, copy)
    return copy


def _validate_in_chunks(value: Any, handler: Any) -> Any:
    count = _error_count.get()
    if count is None or not isinstance(value, (list, dict)):   # not load_config's, or a type error
        return handler(value)
    mapping = isinstance(value, dict)
    items = list(value.items()) if mapping else value
    done: list[Any] = []
    errors: list[InitErrorDetails] = []
    for start in range(0, max(len(items), 1), _CHUNK):
        chunk = items[start:start + _CHUNK]
        if count[0] >= MAX_ERRORS:
            where = (chunk[0][0] if mapping else start,) if chunk else ()
            errors.append(InitErrorDetails(type=PydanticCustomError(
                "not_checked", "not checked: stopped after the first {limit} errors", {"limit": MAX_ERRORS}),
                loc=where, input=None))
            break
        before = count[0]
        try:
            part = handler(dict(chunk) if mapping else chunk)
        except ValidationError as exc:
            count[0] = before + exc.error_count()   # those the containers inside counted are among these
            for error in exc.errors(include_url=False):
                loc = error["loc"]
                if not mapping and loc and isinstance(loc[0], int):
                    loc = (loc[0] + start, *loc[1:])   # the chunk's index -> the list's
                errors.append(InitErrorDetails(
                    type=PydanticCustomError(error["type"], "{message}", {"message": error["msg"]}),
                    loc=loc, input=error.get("input")))
        else:
            done.extend(part.items() if mapping else part)
    if errors:
        raise ValidationError.from_exception_data("MaintenanceConfig", errors)
    return dict(done) if mapping else done


class Strict(BaseModel):
    # defer_build: the validators are built on first use, not at import (every DAG parse imports this)
    # allow_inf_nan=False: `.inf` and `.nan` are no number any key can use.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, allow_inf_nan=False)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        return _count_errors_in_containers(handler(source))   # see MAX_ERRORS


class Site(Strict):
    name: str
    url: str
    environment: str = "production"


class LoginFlow(Strict):
    """Admin login as a flow: GET the form, POST credentials, assert the outcome."""

    url: str | None = None                      # POST target; default: the endpoint URL
    conn_id: str = "admin_login"                # login = username, password = password
    username_field: str = "username"
    password_field: str = "password"
    extra_fields: dict[str, str] = {}
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] = [200, 302, 303]
    expect_redirect: str | None = None          # glob on the Location header
    expect_cookie: str | None = None            # name of the session cookie
    expect_body: str | None = None              # glob on the response body


class Endpoint(Strict):
    name: str = Field(min_length=1)
    url: str
    # database, email and storage: endpoints whose failure starts that runbook (runbooks.auto_start)
    group: Literal["homepage", "api", "admin", "payments", "database", "email", "storage", "other"] = "other"
    critical: bool = False
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = {}
    body: str | None = None
    timeout: Annotated[PositiveDuration, at_most(timedelta(minutes=10))] = timedelta(seconds=10)
    follow_redirects: bool = True
    insecure: bool = False                      # explicit opt-out of TLS verification
    conditions: list[str] = Field(min_length=1)
    login: LoginFlow | None = None
    # Whose contact the alert names (a key of `contacts`); default: the group's provider, if
    # it has one (database: atlas, storage: storage), else nobody: a failing page of our own
    # site is not a provider's incident until someone says it is.
    provider: str | None = None
    runbook: str | None = None                  # DAG id of the runbook; default by group

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        try:
            host = urlsplit(value).hostname or ""
            host.encode("idna")
        except (ValueError, UnicodeError) as exc:   # e.g. a label over 63 characters
            raise ValueError(f"not a valid host name: {exc}") from None
        if not host:
            raise ValueError("has no host name")
        return value

    @model_validator(mode="after")
    def _one_authorization(self) -> "Endpoint":
        # aiohttp refuses a request with both, at probe time: say so at load, naming the endpoint.
        if "@" in self.url and urlsplit(self.url).username is not None \
                and any(k.lower() == "authorization" for k in self.headers):
            raise ValueError(f"endpoint {self.name!r}: the URL carries user:password@ and the headers set "
                             "Authorization; keep one of them")
        return self

    @functools.cached_property
    def secrets(self) -> tuple[str, ...]:
        """What this endpoint sends that must never come back out: URL user-info, key-like
        query values, configured header values (redacted from everything a response gives)."""
        parts = urlsplit(self.url)
        found: list[str] = []
        if parts.password:
            found += [unquote(parts.password), f"{unquote(parts.username or '')}:{unquote(parts.password)}"]
        found += [value for key, value in parse_qsl(parts.query) if _SECRET_KEY.search(key) and value]
        for value in self.headers.values():
            found.append(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.lower() in ("bearer", "basic", "token", "apikey"):
                found.append(token)
        return tuple(s for s in found if len(s) >= 3)

    @field_validator("conditions")
    @classmethod
    def _conditions(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for index, text in enumerate(value):
            try:
                parse_condition(text)
            except ConditionError as exc:
                name = info.data.get("name", "?")
                raise ValueError(f"endpoint {name!r}, condition {index} ({text!r}): {exc}") from None
        return value

    @functools.cached_property
    def parsed_conditions(self) -> list[Condition]:
        return [parse_condition(text) for text in self.conditions]

    @functools.cached_property
    def needs_body(self) -> bool:
        return any(c.placeholder == "BODY" for c in self.parsed_conditions)

    @property
    def runbook_id(self) -> str:
        return self.runbook or RUNBOOK_BY_GROUP.get(self.group, "uptime_monitor")

    @property
    def provider_id(self) -> str | None:
        """The provider whose contact an alert of this endpoint names, or None."""
        return self.provider or PROVIDER_BY_GROUP.get(self.group)


class Uptime(Strict):
    concurrency: int = Field(20, ge=1, le=1000)
    user_agent: str = "maintenance-uptime/1.0"
    ca_file: str | None = None                  # extra CA bundle (PEM) for sites on a private CA
    target_percent: float = Field(99.5, gt=0, le=100)   # daily uptime below this is reported
    # Bytes of a response body read for [BODY] conditions and login checks (the whole body when
    # smaller), within the endpoint's timeout; the rest is not downloaded.
    body_limit: int = Field(2 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # issue 16: how often the watcher in the triggerer sweeps the endpoints (0: no watcher; the
    # 5-minute uptime_monitor run is then the only sweep). Below 10 s a slow site's sweeps overlap.
    watch_interval: WatchInterval = timedelta(seconds=30)


class Alerting(Strict):
    slack_conn_id: str = "slack_alerts"
    failure_threshold: int = Field(2, ge=1, le=1000)
    success_threshold: int = Field(1, ge=1, le=1000)
    renotify_after: Annotated[PositiveDuration, at_most(timedelta(days=3650))] = timedelta(hours=4)   # long: never
    send_on_resolved: bool = True
    # An undelivered Slack message is given up (dead-lettered, kept and reported) after this.
    outbox_max_age: Annotated[PositiveDuration, at_most(timedelta(days=31))] = timedelta(hours=24)
    slack_timeout: Annotated[PositiveDuration, at_most(timedelta(minutes=5))] = timedelta(seconds=10)   # per POST
    # Where the Airflow UI lives, for log links in messages (default: [api] base_url).
    ui_base_url: str | None = None


class Tasks(Strict):
    """How every DAG's tasks run. `retries` re-runs a task that crashed; a check that fails is not
    retried (the next scheduled run is its re-check, counted by alerting.failure_threshold)."""

    owner: str = "site-ops"
    retries: int = Field(2, ge=2, le=10)
    retry_delay: Annotated[Duration, AfterValidator(_not_negative), at_most(timedelta(days=1))] = timedelta(minutes=2)


class MaintenanceWindow(Strict):
    start: datetime
    duration: Annotated[PositiveDuration, at_most(timedelta(days=3650))]
    endpoints: list[str] = []                   # empty: every check
    reason: str = ""

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    @model_validator(mode="after")
    def _ends(self) -> "MaintenanceWindow":
        try:
            self.start + self.duration
        except OverflowError:
            raise ValueError("the window ends after the year 9999") from None
        return self

    def covers(self, check: str, at: datetime) -> bool:
        return self.start <= at < self.start + self.duration and (not self.endpoints or check in self.endpoints)


class Contact(Strict):
    name: str
    how: str                                    # phone, e-mail or support URL
    status_page: str | None = None


DEFAULT_LATE_AFTER = {
    "uptime_monitor": timedelta(minutes=10),
    "maintenance_daily": timedelta(hours=1),
    "maintenance_weekly": timedelta(hours=2),
    "maintenance_monthly": timedelta(hours=3),
    "airflow_db_cleanup": timedelta(hours=2),
}


class Heartbeat(Strict):
    """Self-watch of the scheduled DAGs (heartbeat.py, deadlines.py).

    Pings: `<connection host>[/<slug>]` on success, `.../start` when a run starts and
    `.../fail` when it fails (healthchecks.io style). No connection: no pings.
    Deadlines: a Slack alert when a run is still not done `late_after[dag_id]` after it was
    queued; a DAG missing from late_after has no deadline.
    """

    conn_id: str = "heartbeat"                  # http; host = the ping URL base
    slugs: dict[str, str] = {}                  # dag_id -> path under the base (one check per DAG)
    late_after: dict[str, Annotated[PositiveDuration, at_most(timedelta(days=31))]] = DEFAULT_LATE_AFTER


class Results(Strict):
    conn_id: str = "maintenance_db"             # unset connection: SQLite under AIRFLOW_HOME
    retention_days: int = Field(400, ge=1, le=MAX_RETENTION_DAYS)
    # issue 16: raw results older than this are deleted once their day is rolled up (the status
    # page and reports read the daily roll-ups past it); the watcher stores 2,880 a day per endpoint.
    raw_retention_days: int = Field(35, ge=15, le=MAX_RETENTION_DAYS)


class ProviderSection(Strict):
    """Common shape of a provider section; the provider issues add their keys."""

    enabled: bool = True
    conn_id: str


class RestoreTarget(Strict):
    """Where the monthly restore test may write: a scratch MongoDB, never the live one."""

    conn_id: str = "mongo_restore_scratch"     # mongo connection of the scratch database
    scratch: bool = False                      # must be set to true, deliberately
    live_conn_id: str = "mongo_default"        # the live database the counts are compared with
    count_tolerance: float = Field(0.05, ge=0, le=1)   # allowed relative difference per collection


class Atlas(ProviderSection):
    conn_id: str = "atlas_api"
    max_snapshot_age_hours: float = Field(26, gt=0, le=366 * 24)
    min_retention_days: int = Field(30, ge=1, le=MAX_RETENTION_DAYS)
    require_pitr: bool = True
    poll_seconds: float = Field(30, gt=0, le=600)   # how often a waiting snapshot or restore job is polled
    # Monthly restore test: a download restore job of the newest snapshot, streamed and verified.
    restore_test: bool = True
    restore_wait_minutes: int = Field(60, ge=1, le=24 * 60)
    expected_collections: list[str] = []       # "db.collection" names every archive must contain
    max_archive_gb: float = Field(50, gt=0, le=100_000)   # a larger archive is not downloaded (disk guard)
    restore_target: RestoreTarget | None = None

    @field_validator("restore_target")
    @classmethod
    def _scratch_only(cls, value: RestoreTarget | None) -> RestoreTarget | None:
        if value is not None and not value.scratch:
            raise ValueError(
                f"automated restore refused: connection '{value.conn_id}' is not marked scratch: true "
                "(a restore overwrites its target; point it only at a scratch database)")
        if value is not None and value.conn_id == value.live_conn_id:
            raise ValueError(f"automated restore refused: the scratch connection '{value.conn_id}' "
                             "is the live database connection")
        return value


class Bucket(Strict):
    name: str
    conn_id: str = "aws_default"
    kind: Literal["s3", "r2"] = "s3"
    require_replication: bool = False
    require_lifecycle: bool = True
    cloudflare_conn_id: str = "cloudflare_api"   # R2 only: lock rules and lifecycle via Cloudflare's REST API
    verify_prefixes: list[str] = []
    verify_newest: int | None = Field(None, ge=1, le=1_000_000)  # per prefix: the newest N objects; default all up to verify_limit
    verify_limit: int = Field(1000, ge=1, le=1_000_000)          # objects listed per prefix at most
    verify_concurrency: int = Field(16, ge=1, le=128)
    restore_test: bool = True                    # S3: write a canary, overwrite it, restore the previous version
    canary_prefix: str = "maintenance-canary/"


class Storage(Strict):
    buckets: list[Bucket] = []


class Sentry(ProviderSection):
    conn_id: str = "sentry_api"
    max_new_issues_per_day: int = Field(10, ge=0, le=MANY)
    error_spike_factor: float = Field(3.0, gt=1, le=1000)   # last hour above this x the median hour: alert
    min_errors_per_hour: int = Field(20, ge=0, le=MANY)     # ...and above this floor (quiet sites are spiky)


class Stripe(ProviderSection):
    conn_id: str = "stripe_default"


class Mpesa(ProviderSection):
    conn_id: str = "mpesa_daraja"


class Email(Strict):
    provider: Literal["mailgun", "sendgrid"] = "mailgun"
    conn_id: str | None = None                  # default: mailgun_default / sendgrid_default
    domain: str | None = None


class Vercel(ProviderSection):
    conn_id: str = "vercel_api"                 # http: password = token; extra: team_id, project_id,
                                                # protection_bypass (the project's bypass secret)
    # issue 19: how often the deployments watcher in the triggerer asks Vercel for new production
    # deployments (0: no watcher; post_deploy_verification then runs only by hand)
    watch_interval: WatchInterval = timedelta(seconds=60)
    # also sweep the critical endpoints against the deployment's own URL (x-vercel-protection-bypass
    # from the connection's extra.protection_bypass when the deployment is protected)
    check_deployment_url: bool = False


class PostDeploy(Strict):
    """Issue 19: every production deployment verified (post_deploy_verification)."""

    observe_for: Annotated[PositiveDuration, at_most(timedelta(days=1))] = timedelta(minutes=15)   # Sentry is read this long after the deploy
    # Sentry's release of a deployment, from its commit SHA: {sha} (40 hex) or {short_sha} (7)
    release: str = "{sha}"
    endpoints: list[str] = []                   # swept after a deploy; empty: every critical endpoint
    recheck_after: Annotated[Duration, at_most(timedelta(minutes=10))] = timedelta(seconds=10)   # a failing endpoint is probed once more after this
    max_new_issues: int = Field(0, ge=0, le=100_000)        # more issues first seen in the release: regressed
    error_rate_factor: float = Field(2.0, gt=1, le=1_000_000)     # errors after the deploy above this x before ...
    min_errors: int = Field(10, ge=0, le=100_000_000)           # ... and above this count in the window: regressed
    auto_rollback: bool = False                 # roll back to the last deployment verified healthy

    @field_validator("release")
    @classmethod
    def _release(cls, value: str) -> str:
        try:
            value.format(sha="0" * 40, short_sha="0" * 7)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"{value!r}: only {{sha}} and {{short_sha}} may be used ({exc})") from None
        return value


class ExternalMonitor(ProviderSection):
    pass


class UptimeRobot(ExternalMonitor):
    conn_id: str = "uptimerobot_api"


class Pingdom(ExternalMonitor):
    conn_id: str = "pingdom_api"


# -- analytics, reports and the status page (issue 12) ----------------------------------------------
class Plausible(ProviderSection):
    """Plausible Stats API v2 (connection: http, host = https://plausible.io or your own, password = Stats API key)."""

    conn_id: str = "plausible_api"
    site_id: str = Field(min_length=1)          # the site's domain as registered in Plausible
    top: int = Field(10, ge=1, le=100)          # top pages / sources / goals listed


class GA4(ProviderSection):
    """GA4 Data API runReport (connection: http, host = https://analyticsdata.googleapis.com;
    password = the service account's JSON key, or extra.access_token)."""

    conn_id: str = "ga4_api"
    property_id: str = Field(pattern=r"^[0-9]+$")
    top: int = Field(10, ge=1, le=100)


class AppCollection(Strict):
    """One collection of the app's database and the field holding each document's time."""

    collection: str = Field(min_length=1)
    time_field: str = "created_at"


class Donations(AppCollection):
    amount_field: str = "amount"
    currency_field: str = "currency"
    status_field: str | None = "status"         # documents whose status is a refund status are refunds
    refund_statuses: list[str] = ["refunded"]
    amount_divisor: float = Field(1, gt=0, le=1_000_000)   # 100 when amounts are stored in cents


class Registrations(AppCollection):
    event_field: str = "event"


class AdminActions(AppCollection):
    action_field: str = "action"
    user_field: str = "user"


class AppAnalytics(Strict):
    """Counts from the app's MongoDB, aggregated in the database (connection: mongo)."""

    conn_id: str = "mongo_default"
    database: str = Field(min_length=1)
    signups: AppCollection | None = None
    donations: Donations | None = None
    registrations: Registrations | None = None
    admin_actions: AdminActions | None = None
    # A figure this many times lower or higher than the period before is an anomaly (digest):
    # 5 flags signups down 80 % or up 400 %.
    anomaly_factor: float = Field(5.0, gt=1, le=1000)
    anomaly_min_count: int = Field(10, ge=0, le=MANY)    # ...when either period has at least this many


class Analytics(Strict):
    plausible: Plausible | None = None
    ga4: GA4 | None = None                      # used when plausible is not configured
    app: AppAnalytics | None = None


class Reports(Strict):
    """Weekly and monthly HTML reports: written to `folder`, or uploaded to `bucket` (S3Hook)."""

    folder: str | None = None                   # default: $AIRFLOW_HOME/reports
    bucket: str | None = None                   # set: uploaded through connection conn_id
    conn_id: str = "aws_default"
    prefix: str = "maintenance-reports/"
    link_base: str | None = None                # URL where the folder or bucket prefix is served (Slack link)
    retention_days: int = Field(400, ge=1, le=MAX_RETENTION_DAYS)   # older reports are deleted
    status_page_days: int = Field(90, ge=7, le=400)


class PublicStatusPage(Strict):
    """A static status page for the public (issue 17): written after each uptime_monitor run, only the
    listed checks, no targets, reasons or evidence; it never links to or exposes the Airflow UI."""

    publish_to: str = Field(min_length=1)       # a folder path, or s3://bucket/prefix
    checks: list[str] = Field(min_length=1)     # endpoint names shown (others stay private)
    title: str | None = None                    # default: site.name
    conn_id: str | None = None                  # s3://: default the storage bucket's connection, else aws_default

    @field_validator("publish_to")
    @classmethod
    def _target(cls, value: str) -> str:
        if value.startswith("s3://") and not value.removeprefix("s3://").split("/", 1)[0]:
            raise ValueError(f"{value!r}: expected s3://bucket/prefix")
        if "://" in value and not value.startswith("s3://"):
            raise ValueError(f"{value!r}: expected a folder path or s3://bucket/prefix")
        return value


class StatusPage(Strict):
    public: PublicStatusPage | None = None      # absent: no public page (the default)


# -- reviews (issue 9): dependency scan, security scan, performance, security logs, audit -----------
class LockFileSource(Strict):
    """A lock file of the application: read from a path or an HTTP URL (raw file of its repository)."""

    name: str = Field(min_length=1, pattern=r"^[\w.-]+$")   # label: dependencies.vulnerabilities.<name>
    path: str | None = None
    url: str | None = None
    conn_id: str | None = None                  # http connection for url: password = token (Bearer)
    format: Literal["auto", "package-lock", "requirements", "poetry"] = "auto"

    @model_validator(mode="after")
    def _one_place(self) -> "LockFileSource":
        if (self.path is None) == (self.url is None):
            raise ValueError(f"lock file {self.name!r}: give exactly one of path or url")
        return self


class IgnoredVulnerability(Strict):
    id: str = Field(min_length=1)               # advisory id or alias (GHSA-..., PYSEC-..., CVE-...)
    reason: str = Field(min_length=1)
    until: date | None = None                   # after this date the advisory is reported again


class Dependencies(Strict):
    enabled: bool = True
    own_requirements: bool = True               # scan the orchestrator's own requirements.txt too
    lock_files: list[LockFileSource] = []
    osv_url: str = "https://api.osv.dev"
    pypi_url: str = "https://pypi.org"
    npm_url: str = "https://registry.npmjs.org"
    batch_size: int = Field(1000, ge=1, le=1000)  # OSV querybatch: at most 1,000 queries a request
    check_outdated: bool = True
    max_outdated_lookups: int = Field(300, ge=0, le=100_000)  # registry lookups per lock file (direct dependencies first)
    ignore: list[IgnoredVulnerability] = []


class ExposedPath(Strict):
    path: str = Field(pattern=r"^/")
    signature: str                              # regex the body must match (multiline) to be a finding


class ScanSite(Strict):
    url: str = Field(pattern=r"^https://")
    http_url: str | None = None                 # where plain HTTP answers; default: http://<host>/
    exposed_files: bool = True                  # probe /.git/config, .env variants and exposed_paths


# HTTP Observatory grades, best first (checks/security.py maps scores onto them)
HEADERS_GRADES = ("A+", "A", "A-", "B+", "B", "B-", "C+", "C", "C-", "D+", "D", "D-", "F")


class SecurityScan(Strict):
    enabled: bool = True
    sites: list[ScanSite] = []                  # default: site.url
    exposed_paths: list[ExposedPath] = []       # besides /.git/config and the .env variants
    tls_warn_days: int = Field(30, ge=1, le=3650)
    page_below: Literal[HEADERS_GRADES] = "D"     # a headers grade at or below this pages (so does a drop)
    ca_file: str | None = None                  # extra CA bundle for sites on a private CA
    # Everything one site's scan asks (pages, redirects, CORS, paths) ends by then: a site that
    # drips its answer is reported as timed out instead of holding the task.
    site_deadline: PositiveDuration = Field(timedelta(minutes=2), le=timedelta(minutes=10))
    check_atlas_access_list: bool = True        # atlas: section + connection needed
    check_buckets: bool = True                  # storage: buckets (S3 public access block, R2 r2.dev access)


class Performance(Strict):
    enabled: bool = True
    origins: list[str] = []                     # default: [site.url]
    pages: list[str] = []                       # page URLs, besides the origins
    form_factor: Literal["PHONE", "DESKTOP", "TABLET", "ALL"] = "PHONE"
    crux_conn_id: str = "crux_api"              # http: password = Google API key (Chrome UX Report API)
    psi_conn_id: str = "pagespeed_api"          # http, optional: host, password = key (default: the CrUX key)
    history_periods: int = Field(10, ge=2, le=40)   # CrUX History collection periods (weekly)
    regression_factor: float = Field(1.5, gt=1, le=1000)   # p95 this period above this x the last period: flagged
    min_probe_samples: int = Field(10, ge=1, le=MANY)
    slowest: int = Field(3, ge=1, le=1000)


_FIELD_NAME = r"^[A-Za-z_][\w.]*$"   # a document field (dots: nested), never an operator ($...)


class AuditFields(Strict):
    """Field names of one document of the admin audit log (one document per admin action)."""

    user: str = Field("user", pattern=_FIELD_NAME)        # who acted
    action: str = Field("action", pattern=_FIELD_NAME)    # what: login, role_change, delete_user...
    time: str = Field("timestamp", pattern=_FIELD_NAME)   # when: a BSON date
    success: str = Field("success", pattern=_FIELD_NAME)  # bool, for logins
    role: str = Field("new_role", pattern=_FIELD_NAME)    # role changes: the role given
    target: str = Field("target_user", pattern=_FIELD_NAME)   # role changes: whose role


class SecurityLogs(Strict):
    """maintenance_weekly's review_security_logs: Atlas project events and the app's admin audit log."""

    enabled: bool = True
    period_days: int = Field(7, ge=1, le=31)    # the review looks this far back
    atlas_events: bool = True                   # atlas: section + connection needed
    mongo_conn_id: str = "mongo_default"
    database: str | None = None                 # default: the connection's schema
    collection: str | None = "admin_audit"      # None: no application audit log
    fields: AuditFields = AuditFields()
    login_action: str = "login"
    role_change_action: str = "role_change"
    admin_roles: list[str] = ["admin", "owner", "superuser"]
    expected_admins: list[str] = []             # users whose raise to an admin role is planned: not alerted
    max_failed_logins_per_hour: int = Field(10, ge=0, le=MANY)
    expected_event_types: list[str] = []        # Atlas event types that are planned: summarised, not alerted


class Audit(Strict):
    """maintenance_monthly's full_system_audit: credentials of every configured provider, the
    checks skipped for want of configuration, and the month's record per check family."""

    enabled: bool = True
    probe_credentials: bool = True              # one authenticated call per configured provider
    uptime_target_percent: float | None = Field(None, gt=0, le=100)   # default: uptime.target_percent
    error_trend_factor: float = Field(1.5, gt=1, le=1000)   # errors/day this month above this x last month: flagged


# -- runbooks (issue 10): the four diagnostic DAGs and how they start themselves ---------------
RUNBOOK_BY_GROUP = {"database": "runbook_database", "payments": "runbook_payments",
                    "email": "runbook_email", "storage": "runbook_file_upload"}
RUNBOOK_DAGS = frozenset(RUNBOOK_BY_GROUP.values())
# Groups that are one provider's (payments and email may be either of two: say `provider:`).
PROVIDER_BY_GROUP = {"database": "atlas", "storage": "storage"}


class RunbookAutoStart(Strict):
    """A check of a group with a runbook opens an incident: the runbook runs once for it."""

    enabled: bool = True
    max_runs_per_hour: int = Field(2, ge=1, le=60)      # circuit breaker, per runbook
    groups: dict[str, str] = RUNBOOK_BY_GROUP            # check group -> runbook DAG id

    @field_validator("groups")
    @classmethod
    def _known(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value.values()) - RUNBOOK_DAGS)
        if unknown:
            raise ValueError(f"unknown runbook DAG(s) {', '.join(unknown)} (known: {', '.join(sorted(RUNBOOK_DAGS))})")
        return value


class DatabaseRunbook(Strict):
    mongo_conn_id: str = "mongo_default"
    status_url: str = "https://status.mongodb.com/api/v2/summary.json"   # Statuspage JSON
    egress_ip: str | None = None                         # our address as Atlas sees it; else asked of:
    egress_echo_url: str | None = "https://checkip.amazonaws.com"         # answers the caller's IP
    connect_timeout_ms: int = Field(5000, ge=100, le=60000)
    events_hours: int = Field(24, ge=1, le=24 * 14)      # project events looked at


class PaymentsRunbook(Strict):
    stripe_status_url: str = "https://status.stripe.com/current"         # not Statuspage
    max_pending_webhooks: int = Field(5, ge=0, le=MANY)  # undelivered events (older than the grace) above this: fail
    pending_grace_minutes: int = Field(10, ge=0, le=7 * 24 * 60)   # younger events may still be in flight
    max_failed_payment_rate: float = Field(0.2, ge=0, le=1)
    mpesa_callback_urls: list[str] = []                  # must answer from outside (any HTTP status but 5xx)
    mpesa_shortcode: str | None = None                   # STK push query; passkey in mpesa_daraja extra.passkey
    sentry_query: str = "is:unresolved payment"


class EmailRunbook(Strict):
    status_url: str | None = None                        # default: the provider's Statuspage summary
    sending_ips: list[str] = []
    dnsbl_zones: list[str] = ["zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org"]
    domain_zones: list[str] = ["dbl.spamhaus.org"]       # domain-based lists (the sending domain)
    max_bounce_rate: float = Field(0.05, ge=0, le=1)
    max_complaint_rate: float = Field(0.001, ge=0, le=1)
    max_failed_rate: float = Field(0.10, ge=0, le=1)
    max_suppression_growth: int = Field(50, ge=0, le=MANY)   # new bounces in 24 h above this: warn


class FileUploadRunbook(Strict):
    buckets: list[str] = []                              # names under storage.buckets; empty: all
    canary_bytes: int = Field(1024 * 1024, ge=1, le=100 * 1024 * 1024)
    canary_prefix: str = "maintenance-canary/uploads/"
    upload_url: str | None = None                        # the app's upload endpoint (multipart POST)
    upload_conn_id: str | None = None                    # http connection: password = bearer token
    upload_field: str = "file"
    max_upload_bytes: int | None = Field(None, ge=1, le=1024 ** 3)   # the app's limit: at it accepted, above it rejected
    allowed_type: str = "image/png"                      # sent with the size probes
    disallowed_type: str = "application/x-msdownload"    # must be rejected
    sentry_query: str = "is:unresolved upload"


class Runbooks(Strict):
    resolver: str | None = None                          # DNS resolver "ip" or "ip:port"; None: the system's
    auto_start: RunbookAutoStart = RunbookAutoStart()
    database: DatabaseRunbook = DatabaseRunbook()
    payments: PaymentsRunbook = PaymentsRunbook()
    email: EmailRunbook = EmailRunbook()
    file_upload: FileUploadRunbook = FileUploadRunbook()

    @field_validator("resolver")
    @classmethod
    def _resolver(cls, value: str | None) -> str | None:
        if value is not None:
            import ipaddress

            host, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
            try:
                ipaddress.ip_address(host)
                if port:
                    assert 0 < int(port) < 65536
            except (ValueError, AssertionError):
                raise ValueError(f"{value!r}: expected an IP address, optionally with :port") from None
        return value
# -- end runbooks ------------------------------------------------------------------------------


class MaintenanceConfig(Strict):
    site: Site
    endpoints: list[Endpoint] = []
    uptime: Uptime = Uptime()
    alerting: Alerting = Alerting()
    tasks: Tasks = Tasks()
    maintenance_windows: list[MaintenanceWindow] = []
    contacts: dict[str, Contact] = {}
    results: Results = Results()
    heartbeat: Heartbeat | None = None
    atlas: Atlas | None = None
    storage: Storage | None = None
    sentry: Sentry | None = None
    stripe: Stripe | None = None
    mpesa: Mpesa | None = None
    email: Email | None = None
    vercel: Vercel | None = None
    post_deploy: PostDeploy = PostDeploy()      # issue 19 (needs the vercel section)
    uptimerobot: UptimeRobot | None = None
    pingdom: Pingdom | None = None
    # reviews (issue 9)
    dependencies: Dependencies | None = None
    security_scan: SecurityScan | None = None
    performance: Performance | None = None
    security_logs: SecurityLogs | None = None
    audit: Audit | None = None                  # absent: the audit runs with the defaults
    runbooks: Runbooks = Runbooks()                   # issue 10
    analytics: Analytics | None = None          # issue 12
    reports: Reports = Reports()                # issue 12
    status_page: StatusPage = StatusPage()      # issue 17: the opt-in public page

    @model_validator(mode="after")
    def _cross_references(self) -> "MaintenanceConfig":
        counts = Counter(e.name for e in self.endpoints)
        duplicates = sorted(n for n, c in counts.items() if c > 1)
        if duplicates:
            raise ValueError(f"endpoints: duplicate name(s) {', '.join(duplicates)}")
        public = self.status_page.public
        unknown = [n for n in public.checks if n not in counts] if public else []
        if unknown:
            raise ValueError(f"status_page.public.checks: unknown endpoint(s) {', '.join(unknown)}")
        for index, window in enumerate(self.maintenance_windows):
            unknown = [n for n in window.endpoints if n not in counts]
            if unknown:
                raise ValueError(f"maintenance_windows[{index}].endpoints: unknown endpoint(s) {', '.join(unknown)}")
        unknown = [n for n in self.post_deploy.endpoints if n not in counts]
        if unknown:
            raise ValueError(f"post_deploy.endpoints: unknown endpoint(s) {', '.join(unknown)}")
        return self

    def in_maintenance(self, check: str, at: datetime) -> MaintenanceWindow | None:
        return next((w for w in self.maintenance_windows if w.covers(check, at)), None)


def _key_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif str(part).startswith(("function-", "json-or-python")) or part in ("literal[...]",):
            continue
        else:
            path += ("." if path else "") + str(part)
    return path or "(top level)"


def _explain(error: dict[str, Any]) -> str:
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see include/config/maintenance.yaml)"
    if kind == "missing":
        return "required key is missing"
    return message.removeprefix("Value error, ")


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml: ten times faster on large files
# A config of 25,000 endpoints is ~500,000 YAML values. Past that the file is a mistake (or an
# attack): building its objects would take seconds and hundreds of MB for nothing, so larger
# files are counted first (libyaml's events: 1 s and no memory for a million).
MAX_YAML_VALUES = 500_000
_COUNT_ABOVE_BYTES = 256 * 1024


def _too_many_values(text: str) -> bool:
    for count, _event in enumerate(yaml.parse(text, Loader=_LOADER)):
        if count > MAX_YAML_VALUES:
            return True
    return False


def _read(path: Path) -> Any:
    """The file's YAML as Python data; every way it can be malformed is a ConfigError."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text: byte 0x{exc.object[exc.start]:02x} on line {line}") from None
    try:
        if len(text) > _COUNT_ABOVE_BYTES and _too_many_values(text):
            raise ConfigError(f"{path}: (top level): more than {MAX_YAML_VALUES:,} values: far larger than any "
                              "configuration (25,000 endpoints take about 500,000)")
        return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except ConfigError:
        raise
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        raise ConfigError(f"{path}: not valid YAML{line}: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    except (ValueError, OverflowError) as exc:   # e.g. an integer of thousands of digits
        raise ConfigError(f"{path}: not valid YAML: {str(exc)[:120]}") from None


def load_config(path: str | os.PathLike[str] | None = None) -> MaintenanceConfig:
    """Read and validate the config; raise ConfigError naming the file and key."""
    path = Path(path) if path is not None else config_path()
    raw = _read(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping of sections, got {type(raw).__name__}")
    counted = _error_count.set([0])
    try:
        return MaintenanceConfig.model_validate(raw)
    except ValidationError as exc:
        errors = [e for e in exc.errors(include_url=False) if e["type"] != "not_checked"]
        lines = [f"{path}: {_key_path(e['loc'])}: {_explain(e)}" for e in errors[:20]]
        if len(errors) > 20:
            lines.append(f"{path}: ... and {len(errors) - 20} more errors")
        if len(errors) < exc.error_count():
            lines.append(f"{path}: checking stopped after the first {MAX_ERRORS} errors")
        raise ConfigError("\n".join(lines)) from None
    except RecursionError:
        raise ConfigError(f"{path}: (top level): nested too deeply") from None
    except (OverflowError, ValueError, TypeError) as exc:   # a validator outside pydantic's wrapping
        raise ConfigError(f"{path}: (top level): {type(exc).__name__}: {str(exc)[:160]}") from None
    finally:
        _error_count.reset(counted)


_cache: dict[Path, tuple[tuple[float, int], MaintenanceConfig, str | None]] = {}


def last_valid_path(path: Path) -> Path:
    """Where the last configuration that validated is kept (beside Airflow's own state)."""
    return parse_settings.airflow_home() / f"{path.stem}.last_valid{path.suffix or '.yaml'}"


def _remember(path: Path) -> None:
    keep = last_valid_path(path)
    try:
        text = path.read_bytes()
        mode = path.stat().st_mode & 0o777   # it holds credentials: never more readable than the original
        if keep.exists() and keep.read_bytes() == text:
            if keep.stat().st_mode & 0o777 != mode:
                os.chmod(keep, mode)
            return
        keep.parent.mkdir(parents=True, exist_ok=True)
        tmp = keep.with_suffix(keep.suffix + f".{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)   # a stale one would keep its old mode
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            out.write(text)
        os.chmod(tmp, mode)
        tmp.replace(keep)   # atomic: a parallel parser never reads half a file
    except OSError as exc:
        log.warning("could not keep a copy of the valid config at %s: %s", keep, exc.strerror)


def _fallback(path: Path) -> MaintenanceConfig:
    """The last valid configuration, or (never valid yet) an empty one that checks nothing."""
    keep = last_valid_path(path)
    if keep.exists():
        try:
            return load_config(keep)
        except ConfigError:
            log.error("the kept copy %s does not validate either", keep)
    return MaintenanceConfig.model_validate(
        {"site": {"name": "unconfigured (the config file is invalid)", "url": "https://invalid.example"}})


def get_config() -> MaintenanceConfig:
    """The configuration of MAINTENANCE_CONFIG, cached until the file changes.

    An invalid file never silences monitoring (as Prometheus on a failed reload): the DAGs
    keep running on the last valid configuration and `config_problem()` says what is wrong,
    which uptime_monitor reports to Slack as the check `config`.
    """
    path = config_path()
    key = tuple(file_key(path))
    cached = _cache.get(path)
    if cached and cached[0] == key:
        return cached[1]
    try:
        config, problem = load_config(path), None
        _remember(path)
    except ConfigError as exc:
        problem = str(exc)
        log.error("invalid configuration, running on the last valid one: %s", problem)
        config = _fallback(path)
    _cache[path] = (key, config, problem)
    parse_settings.save(path, list(key), parse_settings.settings_of(config))
    return config


def config_problem() -> str | None:
    """What is wrong with the config file get_config() last read, or None when it is valid."""
    cached = _cache.get(config_path())
    return cached[2] if cached else None
