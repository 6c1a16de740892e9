"""The typed model of include/config/maintenance.yaml and its loader.

Every error names the file, the key path and what is wrong, e.g.
    include/config/maintenance.yaml: endpoints[1].conditions[0]: unknown placeholder '[STATSU]' ...
Conditions are parsed here, at load time, so a typo never waits for 3 a.m. to show up.
"""

from __future__ import annotations

import functools
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

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

from maintenance.conditions import Condition, ConditionError, parse_condition
from maintenance.durations import parse_duration

DEFAULT_CONFIG_PATH = "include/config/maintenance.yaml"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


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


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    expect_status: list[int] = [200, 302, 303]
    expect_redirect: str | None = None          # glob on the Location header
    expect_cookie: str | None = None            # name of the session cookie
    expect_body: str | None = None              # glob on the response body


class Endpoint(Strict):
    name: str = Field(min_length=1)
    url: str
    group: Literal["homepage", "api", "admin", "payments", "other"] = "other"
    critical: bool = False
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = {}
    body: str | None = None
    timeout: PositiveDuration = timedelta(seconds=10)
    follow_redirects: bool = True
    insecure: bool = False                      # explicit opt-out of TLS verification
    conditions: list[str] = Field(min_length=1)
    login: LoginFlow | None = None
    provider: str = "vercel"                    # whose contact to call (key of `contacts`)
    runbook: str | None = None                  # DAG id of the runbook; default by group

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

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
        return self.runbook or ("runbook_payments" if self.group == "payments" else "uptime_monitor")


class Uptime(Strict):
    concurrency: int = Field(20, ge=1, le=1000)
    user_agent: str = "maintenance-uptime/1.0"
    ca_file: str | None = None                  # extra CA bundle (PEM) for sites on a private CA
    target_percent: float = Field(99.5, gt=0, le=100)   # daily uptime below this is reported


class Alerting(Strict):
    slack_conn_id: str = "slack_alerts"
    failure_threshold: int = Field(2, ge=1)
    success_threshold: int = Field(1, ge=1)
    renotify_after: PositiveDuration = timedelta(hours=4)
    send_on_resolved: bool = True
    # Where the Airflow UI lives, for log links in messages (default: [api] base_url).
    ui_base_url: str | None = None


class Tasks(Strict):
    """How every DAG's tasks run: a failing check is re-checked `retries` times before paging."""

    owner: str = "site-ops"
    retries: int = Field(2, ge=2, le=10)
    retry_delay: Duration = timedelta(minutes=2)


class MaintenanceWindow(Strict):
    start: datetime
    duration: PositiveDuration
    endpoints: list[str] = []                   # empty: every check
    reason: str = ""

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

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
    late_after: dict[str, PositiveDuration] = DEFAULT_LATE_AFTER


class Results(Strict):
    conn_id: str = "maintenance_db"             # unset connection: SQLite under AIRFLOW_HOME
    retention_days: int = Field(400, ge=1)


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
    max_snapshot_age_hours: float = Field(26, gt=0)
    min_retention_days: int = Field(30, ge=1)
    require_pitr: bool = True
    poll_seconds: float = Field(30, gt=0, le=600)   # how often a waiting snapshot or restore job is polled
    # Monthly restore test: a download restore job of the newest snapshot, streamed and verified.
    restore_test: bool = True
    restore_wait_minutes: int = Field(60, ge=1, le=24 * 60)
    expected_collections: list[str] = []       # "db.collection" names every archive must contain
    max_archive_gb: float = Field(50, gt=0)    # a larger archive is not downloaded (disk guard)
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
    verify_newest: int | None = Field(None, ge=1)  # per prefix: the newest N objects; default all up to verify_limit
    verify_limit: int = Field(1000, ge=1)        # objects listed per prefix at most
    verify_concurrency: int = Field(16, ge=1, le=128)
    restore_test: bool = True                    # S3: write a canary, overwrite it, restore the previous version
    canary_prefix: str = "maintenance-canary/"


class Storage(Strict):
    buckets: list[Bucket] = []


class Sentry(ProviderSection):
    conn_id: str = "sentry_api"
    max_new_issues_per_day: int = Field(10, ge=0)
    error_spike_factor: float = Field(3.0, gt=1)   # last hour above this x the median hour: alert
    min_errors_per_hour: int = Field(20, ge=0)     # ...and above this floor (quiet sites are spiky)


class Stripe(ProviderSection):
    conn_id: str = "stripe_default"


class Mpesa(ProviderSection):
    conn_id: str = "mpesa_daraja"


class Email(Strict):
    provider: Literal["mailgun", "sendgrid"] = "mailgun"
    conn_id: str | None = None                  # default: mailgun_default / sendgrid_default
    domain: str | None = None


class Vercel(ProviderSection):
    conn_id: str = "vercel_api"


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
    amount_divisor: float = Field(1, gt=0)      # 100 when amounts are stored in cents


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
    anomaly_factor: float = Field(5.0, gt=1)
    anomaly_min_count: int = Field(10, ge=0)    # ...when either period has at least this many


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
    retention_days: int = Field(400, ge=1)      # older reports are deleted
    status_page_days: int = Field(90, ge=7, le=400)


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
    uptimerobot: UptimeRobot | None = None
    pingdom: Pingdom | None = None
    analytics: Analytics | None = None          # issue 12
    reports: Reports = Reports()                # issue 12

    @model_validator(mode="after")
    def _cross_references(self) -> "MaintenanceConfig":
        names = [e.name for e in self.endpoints]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"endpoints: duplicate name(s) {', '.join(duplicates)}")
        for index, window in enumerate(self.maintenance_windows):
            unknown = [n for n in window.endpoints if n not in names]
            if unknown:
                raise ValueError(f"maintenance_windows[{index}].endpoints: unknown endpoint(s) {', '.join(unknown)}")
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


def config_path() -> Path:
    path = Path(os.environ.get("MAINTENANCE_CONFIG", DEFAULT_CONFIG_PATH))
    return path if path.is_absolute() or path.exists() else PROJECT_ROOT / path


def load_config(path: str | os.PathLike[str] | None = None) -> MaintenanceConfig:
    """Read and validate the config; raise ConfigError naming the file and key."""
    path = Path(path) if path is not None else config_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        raise ConfigError(f"{path}: not valid YAML{line}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping of sections, got {type(raw).__name__}")
    try:
        return MaintenanceConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {_key_path(e['loc'])}: {_explain(e)}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None


_cache: dict[Path, tuple[float, MaintenanceConfig]] = {}


def get_config() -> MaintenanceConfig:
    """load_config() of MAINTENANCE_CONFIG, cached until the file changes (DAG parsing calls it often)."""
    path = config_path()
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return load_config(path)
    cached = _cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    config = load_config(path)
    _cache[path] = (mtime, config)
    return config
