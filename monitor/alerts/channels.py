"""Channels deliver one rendered alert and say how it went: delivered, retry later, or give up.

A channel never raises for a delivery problem it understands: it turns the response or the
exception into a Delivery, with an error named by stage ("slack: 429 too many requests").
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from enum import StrEnum
from typing import Any, Protocol, TextIO

import aiosmtplib
import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from monitor.alerts.content import AlertContent, AlsoReported
from monitor.alerts.render import (
    clean,
    clip,
    console_text,
    email_digest,
    email_message,
    slack_also_reported,
    slack_message,
    webhook_payload,
)
from monitor.config import (
    AlertSettings,
    EmailChannelSettings,
    SlackChannelSettings,
    WebhookChannelSettings,
)
from monitor.retry_after import retry_after_s as retry_after_seconds

ERROR_BODY_MAX = 200


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Delivery:
    status: DeliveryStatus
    error: str | None = None
    # A server's own request to wait (Slack's Retry-After); the dispatcher waits at least this.
    retry_after_s: float | None = None
    # What the server said about the message that later messages need (Slack's channel and ts,
    # for threaded replies); the dispatcher keeps it in the row's payload under "receipt".
    receipt: dict[str, Any] | None = None


DELIVERED = Delivery(DeliveryStatus.DELIVERED)


def retry(error: str, retry_after_s: float | None = None) -> Delivery:
    return Delivery(DeliveryStatus.RETRY, error, retry_after_s)


def permanent(error: str) -> Delivery:
    return Delivery(DeliveryStatus.PERMANENT, error)


class Channel(Protocol):
    name: str

    async def send(self, alert_id: int, content: AlertContent) -> Delivery: ...


# --- Slack ----------------------------------------------------------------------------------


def slack_outcome(response: httpx.Response, stage: str = "slack") -> Delivery:
    """The one place that reads a webhook response (Slack's or the generic webhook's)."""
    status = response.status_code
    phrase = httpx.codes.get_reason_phrase(status).lower() or "unknown status"
    body = clip(clean(response.text), ERROR_BODY_MAX)
    error = f"{stage}: {status} {phrase}" + (f": {body}" if body else "")
    if 200 <= status < 300:
        return DELIVERED
    if status == 429:
        return retry(error, retry_after_seconds(response.headers.get("Retry-After")))
    if status >= 500 or status == 408:
        return retry(error, retry_after_seconds(response.headers.get("Retry-After")))
    # 3xx (a webhook never redirects) and other 4xx: the request itself is wrong, retrying
    # the same bytes cannot help. The row is kept, dead, and `retry_alerts` can requeue it.
    return permanent(error)


class SlackWebhookChannel:
    name = "slack"

    def __init__(
        self, settings: SlackChannelSettings, client: httpx.AsyncClient
    ) -> None:
        if settings.webhook_url is None or not settings.webhook_url.get_secret_value():
            raise ValueError("slack: webhook_url is not set")
        self._url = settings.webhook_url.get_secret_value()
        self._timeout = settings.timeout
        self._client = client

    def _redact(self, text: str) -> str:
        # The webhook URL is the credential: it must never reach a log or an Alert row.
        return text.replace(self._url, "<webhook>")

    async def send(self, alert_id: int, content: AlertContent) -> Delivery:
        payload = slack_message(content)
        try:
            response = await self._client.post(
                self._url, json=payload, timeout=self._timeout, follow_redirects=False
            )
        except httpx.InvalidURL:
            return permanent("slack: webhook_url is not a valid URL")
        except httpx.TimeoutException:
            return retry(f"slack: timeout after {self._timeout:g}s")
        except httpx.TransportError as exc:
            detail = self._redact(str(exc)) or "no detail"
            return retry(f"slack: connection error: {type(exc).__name__}: {detail}")
        return slack_outcome(response)


# Web API errors that say "not now" rather than "never".
_SLACK_API_TRANSIENT = {
    "ratelimited",
    "rate_limited",
    "service_unavailable",
    "fatal_error",
    "internal_error",
    "request_timeout",
    "team_added_to_org",
}


def slack_api_outcome(error: SlackApiError) -> Delivery:
    """The one place that reads a failed chat.postMessage (an HTTP error or ok: false)."""
    response = error.response
    status = response.status_code
    data = response.data if isinstance(response.data, dict) else {}
    code = clip(clean(str(data.get("error") or "")), ERROR_BODY_MAX) or "unknown error"
    message = f"slack: {status} {code}"
    retry_after = retry_after_seconds(
        response.headers.get("Retry-After") or response.headers.get("retry-after")
    )
    if status == 429 or status >= 500 or code in _SLACK_API_TRANSIENT:
        return retry(message, retry_after)
    return permanent(message)


class SlackApiChannel:
    """Slack through the Web API (chat.postMessage with a bot token): messages can be threaded.

    slack_sdk's WebClient runs in a worker thread (it is synchronous, on the standard library), so
    no other HTTP stack is needed; its own retries are off, the dispatcher does the retrying.
    """

    name = "slack"

    def __init__(self, settings: SlackChannelSettings) -> None:
        if (
            not settings.threads
            or settings.bot_token is None
            or settings.channel is None
        ):
            raise ValueError(
                "slack: bot_token and channel are required for the Web API"
            )
        self._token = settings.bot_token.get_secret_value()
        self._channel = settings.channel
        self._timeout = settings.timeout
        self._client = WebClient(
            token=self._token,
            base_url=settings.api_url,
            timeout=settings.timeout,
            retry_handlers=[],  # type: ignore[arg-type]
        )
        self._client.logger.disabled = (
            True  # it logs each failure; the dispatcher does that once
        )

    async def _post(self, **message: Any) -> Delivery:
        def call() -> Any:
            return self._client.chat_postMessage(**message)

        try:
            response = await asyncio.to_thread(call)
        except SlackApiError as exc:
            return slack_api_outcome(exc)
        except TimeoutError:
            return retry(f"slack: timeout after {self._timeout:g}s")
        except OSError as exc:  # URLError, refused, reset, closed without an answer
            reason = getattr(exc, "reason", None) or exc
            detail = str(reason).replace(self._token, "<token>") or "no detail"
            if isinstance(reason, TimeoutError):
                return retry(f"slack: timeout after {self._timeout:g}s")
            return retry(f"slack: connection error: {type(reason).__name__}: {detail}")
        except (
            Exception
        ) as exc:  # http.client's RemoteDisconnected is an OSError; this is the rest
            return retry(
                f"slack: {type(exc).__name__}: {str(exc).replace(self._token, '<token>')}"
            )
        data = response.data if isinstance(response.data, dict) else {}
        return Delivery(
            DeliveryStatus.DELIVERED,
            receipt={
                "slack_channel": data.get("channel") or self._channel,
                "slack_ts": data.get("ts"),
            },
        )

    async def send(self, alert_id: int, content: AlertContent) -> Delivery:
        return await self._post(
            channel=self._channel, **slack_message(content), unfurl_links=False
        )

    async def send_also_reported(
        self, alert_id: int, item: AlsoReported, parent: dict[str, Any]
    ) -> Delivery:
        """A threaded reply under the parent alert's message (its receipt names channel and ts)."""
        if not parent.get("slack_ts"):
            return permanent(
                "slack: the alert to reply to has no message ts (sent by webhook?)"
            )
        return await self._post(
            channel=parent.get("slack_channel") or self._channel,
            thread_ts=parent["slack_ts"],
            unfurl_links=False,
            **slack_also_reported(item),
        )


# --- generic webhook ------------------------------------------------------------------------

SIGNATURE_HEADER = "X-Monitor-Signature"
TIMESTAMP_HEADER = "X-Monitor-Timestamp"


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """sha256=HEX: HMAC-SHA256 over "TIMESTAMP." + the raw body, so an old request cannot be replayed."""
    digest = hmac.new(
        secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return f"sha256={digest}"


class WebhookChannel:
    """A signed JSON POST of every alert (schema: monitor/alerts/webhook_schema.json)."""

    name = "webhook"

    def __init__(
        self,
        settings: WebhookChannelSettings,
        client: httpx.AsyncClient,
        clock: Any = time.time,
    ) -> None:
        if not settings.active or settings.url is None or settings.secret is None:
            raise ValueError("webhook: url and secret are required")
        self._url = settings.url.get_secret_value()
        self._secret = settings.secret.get_secret_value()
        self._timeout = settings.timeout
        self._client = client
        self._clock = clock

    async def _post(self, alert_id: int, item: AlertContent | AlsoReported) -> Delivery:
        now = self._clock()
        body = json.dumps(
            webhook_payload(alert_id, item, datetime.fromtimestamp(now, UTC)),
            ensure_ascii=False,
        ).encode()
        timestamp = str(int(now))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: webhook_signature(self._secret, timestamp, body),
            "X-Monitor-Alert-Id": str(alert_id),
        }
        try:
            response = await self._client.post(
                self._url,
                content=body,
                headers=headers,
                timeout=self._timeout,
                follow_redirects=False,
            )
        except httpx.InvalidURL:
            return permanent("webhook: url is not a valid URL")
        except httpx.TimeoutException:
            return retry(f"webhook: timeout after {self._timeout:g}s")
        except httpx.TransportError as exc:
            detail = str(exc).replace(self._url, "<url>") or "no detail"
            return retry(f"webhook: connection error: {type(exc).__name__}: {detail}")
        return slack_outcome(response, "webhook")

    async def send(self, alert_id: int, content: AlertContent) -> Delivery:
        return await self._post(alert_id, content)

    async def send_also_reported(
        self, alert_id: int, item: AlsoReported, parent: dict[str, Any]
    ) -> Delivery:
        return await self._post(alert_id, item)


# --- email ----------------------------------------------------------------------------------


def smtp_outcome(code: int, message: str) -> Delivery:
    error = f"email: {code} {clip(clean(message), ERROR_BODY_MAX)}".rstrip()
    # 4xx is the server saying "not now" (greylisting, full queue); 5xx is "never".
    return retry(error) if 400 <= code < 500 else permanent(error)


class EmailChannel:
    name = "email"

    def __init__(self, settings: EmailChannelSettings) -> None:
        if not settings.host or not settings.to or not settings.sender:
            raise ValueError("email: host, from and to are required")
        self._settings = settings

    def _tls(self) -> tuple[bool, bool | None]:
        """(use_tls, start_tls): implicit TLS, required STARTTLS, or STARTTLS when offered."""
        if self._settings.ssl:
            return True, False
        return False, (True if self._settings.starttls else None)

    async def send(self, alert_id: int, content: AlertContent) -> Delivery:
        s = self._settings
        return await self._transmit(
            email_message(content, sender=s.sender, to=s.to, alert_id=alert_id)
        )

    async def send_digest(
        self, digest_key: str, items: list[AlertContent | AlsoReported]
    ) -> Delivery:
        """One message listing ITEMS (``alerts.email.digest``); DIGEST_KEY makes its Message-ID."""
        s = self._settings
        return await self._transmit(
            email_digest(items, sender=s.sender, to=s.to, digest_key=digest_key)
        )

    async def _transmit(self, message: EmailMessage) -> Delivery:
        s = self._settings
        use_tls, start_tls = self._tls()
        try:
            refused, _ = await aiosmtplib.send(
                message,
                sender=s.sender,
                recipients=s.to,
                hostname=s.host,
                port=s.port,
                username=s.username,
                password=s.password.get_secret_value() if s.password else None,
                use_tls=use_tls,
                start_tls=start_tls,
                timeout=s.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            # Every recipient refused: retry if any refusal was temporary.
            codes = [r.code for r in exc.recipients]
            first = exc.recipients[0] if exc.recipients else None
            code = min(codes) if codes else 550
            return smtp_outcome(
                code, first.message if first else "all recipients refused"
            )
        except aiosmtplib.SMTPResponseException as exc:
            return smtp_outcome(exc.code, exc.message)
        except aiosmtplib.SMTPTimeoutError:
            return retry(f"email: timeout after {s.timeout:g}s")
        except (
            OSError
        ) as exc:  # refused, reset, TLS failure; aiosmtplib's disconnects are OSErrors
            return retry(f"email: connection error: {type(exc).__name__}: {exc}")
        except aiosmtplib.SMTPException as exc:
            # What is left: the server lacks what the settings demand (STARTTLS, AUTH, SMTPUTF8).
            # Retrying cannot fix configuration; the dead row can be requeued once it is fixed.
            return permanent(f"email: not supported: {exc.message}")
        if refused:
            # Some recipients took it: the alert is delivered; the refusals are only worth noting.
            return Delivery(
                DeliveryStatus.DELIVERED,
                "email: refused by "
                + ", ".join(f"{a} ({r.code})" for a, r in refused.items()),
            )
        return DELIVERED


# --- console --------------------------------------------------------------------------------


class ConsoleChannel:
    name = "console"

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    async def send(self, alert_id: int, content: AlertContent) -> Delivery:
        try:
            self._stream.write(console_text(content) + "\n\n")
            self._stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: write to a closed stream
            return retry(f"console: {type(exc).__name__}: {exc}")
        return DELIVERED


def build_channels(
    settings: AlertSettings, client: httpx.AsyncClient, stream: TextIO = sys.stdout
) -> dict[str, Channel]:
    """The active channels by name; alerts for a channel that is not here stay pending."""
    channels: dict[str, Channel] = {}
    if settings.slack.active:
        # With a bot token the Web API is used (threaded replies); else the incoming webhook.
        channels["slack"] = (
            SlackApiChannel(settings.slack)
            if settings.slack.threads
            else SlackWebhookChannel(settings.slack, client)
        )
    if settings.email.active:
        channels["email"] = EmailChannel(settings.email)
    if settings.webhook.active:
        channels["webhook"] = WebhookChannel(settings.webhook, client)
    if settings.console.enabled:
        channels["console"] = ConsoleChannel(stream)
    return channels
