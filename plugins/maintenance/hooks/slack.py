"""The Slack transport: SlackWebhookHook, one POST, its answer classified.

Slack's incoming webhooks answer 200 "ok" and nothing else means delivered. 429 carries
Retry-After; 5xx and an unreachable host are transient; 400 invalid_payload, 403
invalid_token / action_prohibited, 404 no_service and 410 channel_is_archived are permanent:
retrying them in a loop only adds noise. A send that may have been received
(Slack took it and hung or closed without answering, or answered 200 without "ok") is
`uncertain`: never retried inside the same delivery, and sent at most twice in all.

The webhook URL is a credential: it is registered with Airflow's secret masker before any
request, slack_sdk's own retries (which log the URL) are off, and its logger is filtered.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Any, Callable

from maintenance.hooks.http_policy import parse_retry_after, redact

log = logging.getLogger(__name__)

PERMANENT_STATUSES = {400, 403, 404, 410}
DEFAULT_RETRY_AFTER = 60.0   # a 429 whose Retry-After is absent or unusable ("inf", not a date)


class SlackNotConfigured(Exception):
    pass


class SlackSendError(Exception):
    def __init__(self, message: str, retryable: bool, *, retry_after: float | None = None,
                 uncertain: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.uncertain = uncertain


Sender = Callable[[str, list[dict[str, Any]]], None]


# -- Slack's text format: the one place that makes outside text inert and builds links --------
def slack_escape(text: Any) -> str:
    """Slack's three control characters, escaped as Slack documents (mrkdwn and plain text)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def outside(text: Any) -> str:
    """Text from outside (a response, a summary quoting one): redacted of secrets, then inert."""
    return slack_escape(redact(str(text)))


def slack_link(url: str, label: str) -> str:
    """A link we build: its URL cannot carry Slack control characters, its label is escaped."""
    return f"<{url.replace('|', '%7C').replace('>', '%3E').replace('<', '%3C')}|{slack_escape(label)}>"


@dataclass
class _Redacting(logging.Filter):
    secrets: list[str]

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = ()
        return True


def _mask(*secrets: str) -> None:
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - outside Airflow
        return
    for secret in secrets:
        if secret:
            mask_secret(secret)


def _timed_out(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (TimeoutError, socket.timeout)) or "timed out" in str(seen).lower():
            return True
        seen = getattr(seen, "reason", None) if isinstance(getattr(seen, "reason", None), BaseException) \
            else seen.__cause__ or seen.__context__
    return False


def _sent_unanswered(exc: BaseException) -> bool:
    """The whole request reached Slack and no answer came: it may have been posted.

    urllib wraps every error up to the end of sending in URLError (refused, DNS, TLS, a reset
    while writing); what it raises unwrapped (the peer closed without an answer, a reset or a
    timeout while reading) came after Slack had the message."""
    from http.client import HTTPException
    from urllib.error import URLError

    return isinstance(exc, (OSError, HTTPException)) and not isinstance(exc, URLError)


def slack_sender(conn_id: str, timeout: float) -> Sender:
    """A send(text, blocks) through SlackWebhookHook; raises SlackNotConfigured or SlackSendError."""
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        password = (SlackWebhookHook.get_connection(conn_id).password or "").strip()
    except AirflowNotFoundException as exc:
        raise SlackNotConfigured(f"connection '{conn_id}' is not configured") from exc
    token = password.rsplit("/services/", 1)[-1] if "/services/" in password else password
    secrets = [s for s in (password, token) if s]
    _mask(*secrets)
    sdk_log = logging.getLogger("maintenance.slack_sdk")
    redacting = next((f for f in sdk_log.filters if isinstance(f, _Redacting)), None)
    if redacting is None:
        sdk_log.addFilter(_Redacting(list(secrets)))
    else:
        redacting.secrets.extend(s for s in secrets if s not in redacting.secrets)
    hook = SlackWebhookHook(slack_webhook_conn_id=conn_id, timeout=max(1, int(timeout)),
                            retry_handlers=[], logger=sdk_log)
    try:
        client = hook.client
    except AirflowNotFoundException as exc:
        raise SlackNotConfigured(f"connection '{conn_id}' has no webhook URL") from exc

    def send(text: str, blocks: list[dict[str, Any]]) -> None:
        try:
            response = client.send(text=text, blocks=blocks)
        except Exception as exc:  # noqa: BLE001 - urllib/socket errors: Slack unreachable or hung
            what = redact(f"{type(exc).__name__}: {exc}", secrets)
            if _timed_out(exc):
                raise SlackSendError(f"Slack did not answer in {timeout:g}s (it may have received it): {what}",
                                     False, uncertain=True) from None
            if _sent_unanswered(exc):
                raise SlackSendError(f"Slack closed the connection without an answer (it may have received it): "
                                     f"{what}", False, uncertain=True) from None
            raise SlackSendError(f"Slack unreachable: {what}", True) from None
        body = redact(str(response.body or "")[:200], secrets)
        status = response.status_code
        if status == 200 and body.strip() == "ok":
            return
        if status == 200:   # taken, maybe shown: it counts toward the message's two copies
            raise SlackSendError(f"Slack answered 200 without 'ok': {body!r}", False, uncertain=True)
        if status == 429:
            retry_after = parse_retry_after((response.headers or {}).get("Retry-After")
                                            or (response.headers or {}).get("retry-after"))
            raise SlackSendError(f"Slack answered HTTP 429 (rate limited): {body}", True,
                                 retry_after=DEFAULT_RETRY_AFTER if retry_after is None else retry_after)
        permanent = status in PERMANENT_STATUSES
        raise SlackSendError(f"Slack answered HTTP {status}: {body}" + (" (permanent)" if permanent else ""),
                             status >= 500)
    return send
