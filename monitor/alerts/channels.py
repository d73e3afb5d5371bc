"""Channels deliver one rendered alert and say how it went: delivered, retry later, or give up.

A channel never raises for a delivery problem it understands: it turns the response or the
exception into a Delivery, with an error named by stage ("slack: 429 too many requests").
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Protocol, TextIO

import aiosmtplib
import httpx

from monitor.alerts.content import AlertContent
from monitor.alerts.render import (
    clean,
    clip,
    console_text,
    email_message,
    slack_message,
)
from monitor.config import AlertSettings, EmailChannelSettings, SlackChannelSettings

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


DELIVERED = Delivery(DeliveryStatus.DELIVERED)


def retry(error: str, retry_after_s: float | None = None) -> Delivery:
    return Delivery(DeliveryStatus.RETRY, error, retry_after_s)


def permanent(error: str) -> Delivery:
    return Delivery(DeliveryStatus.PERMANENT, error)


class Channel(Protocol):
    name: str

    async def send(self, alert_id: int, content: AlertContent) -> Delivery: ...


# --- Slack ----------------------------------------------------------------------------------


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def slack_outcome(response: httpx.Response) -> Delivery:
    """The one place that reads a webhook response."""
    status = response.status_code
    phrase = httpx.codes.get_reason_phrase(status).lower() or "unknown status"
    body = clip(clean(response.text), ERROR_BODY_MAX)
    error = f"slack: {status} {phrase}" + (f": {body}" if body else "")
    if 200 <= status < 300:
        return DELIVERED
    if status == 429:
        return retry(error, retry_after_seconds(response.headers.get("Retry-After")))
    if status >= 500:
        return retry(error, retry_after_seconds(response.headers.get("Retry-After")))
    # 3xx (a webhook never redirects) and other 4xx: the request itself is wrong, retrying
    # the same bytes cannot help. The row is kept, dead, and `retry_alerts` can requeue it.
    return permanent(error)


class SlackWebhookChannel:
    name = "slack"

    def __init__(self, settings: SlackChannelSettings, client: httpx.AsyncClient) -> None:
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
        message = email_message(content, sender=s.sender, to=s.to, alert_id=alert_id)
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
            return smtp_outcome(code, first.message if first else "all recipients refused")
        except aiosmtplib.SMTPResponseException as exc:
            return smtp_outcome(exc.code, exc.message)
        except aiosmtplib.SMTPTimeoutError:
            return retry(f"email: timeout after {s.timeout:g}s")
        except OSError as exc:  # refused, reset, TLS failure; aiosmtplib's disconnects are OSErrors
            return retry(f"email: connection error: {type(exc).__name__}: {exc}")
        except aiosmtplib.SMTPException as exc:
            # What is left: the server lacks what the settings demand (STARTTLS, AUTH, SMTPUTF8).
            # Retrying cannot fix configuration; the dead row can be requeued once it is fixed.
            return permanent(f"email: not supported: {exc.message}")
        if refused:
            # Some recipients took it: the alert is delivered; the refusals are only worth noting.
            return Delivery(
                DeliveryStatus.DELIVERED,
                "email: refused by " + ", ".join(f"{a} ({r.code})" for a, r in refused.items()),
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
        channels["slack"] = SlackWebhookChannel(settings.slack, client)
    if settings.email.active:
        channels["email"] = EmailChannel(settings.email)
    if settings.console.enabled:
        channels["console"] = ConsoleChannel(stream)
    return channels
