"""What a channel is: it delivers one rendered alert and says how it went (delivered, retry
later, or give up), and it declares what else it can do.

A channel never raises for a delivery problem it understands: it turns the response or the
exception into a Delivery, with an error named by stage ("slack: 429 too many requests").
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from monitor.alerts.escaping import clean, clip
from monitor.backoff import retry_after_s
from monitor.outbox import AlertContent, AlsoReported, Delivery, DeliveryStatus, Payload

ERROR_BODY_MAX = 200

DELIVERED = Delivery(DeliveryStatus.DELIVERED)


def retry(error: str, retry_after: float | None = None) -> Delivery:
    return Delivery(DeliveryStatus.RETRY, error, retry_after)


def permanent(error: str) -> Delivery:
    return Delivery(DeliveryStatus.PERMANENT, error)


class Channel(Protocol):
    name: str
    # Takes "also reported by" lines about an alert it delivered (a threaded reply, a line in the
    # next digest, an event); the dispatcher calls send_also_reported only on such a channel.
    follows_up: bool
    # Gathers every due alert into one message per this many seconds; None sends each alone.
    digest_period_s: float | None

    async def send(self, alert_id: int, content: AlertContent) -> Delivery: ...

    async def send_also_reported(self, alert_id: int, item: AlsoReported, parent: dict[str, Any]) -> Delivery:
        """PARENT is the receipt the followed alert's delivery left (Slack's channel and ts)."""
        ...

    async def send_digest(self, digest_key: str, items: list[Payload]) -> Delivery:
        """One message for ITEMS; DIGEST_KEY is the same for the same rows (a resend is a duplicate)."""
        ...


class OneByOne:
    """A channel that sends each alert alone and takes no "also reported by" lines."""

    name = "channel"
    follows_up = False
    digest_period_s: float | None = None

    async def send(self, alert_id: int, content: AlertContent) -> Delivery:
        raise NotImplementedError

    async def send_also_reported(self, alert_id: int, item: AlsoReported, parent: dict[str, Any]) -> Delivery:
        return permanent(f"{self.name}: takes no also-reported lines")

    async def send_digest(self, digest_key: str, items: list[Payload]) -> Delivery:
        return permanent(f"{self.name}: sends no digests")


def http_outcome(response: httpx.Response, stage: str) -> Delivery:
    """The one place that reads a webhook's answer (Slack's incoming webhook or the generic one)."""
    status = response.status_code
    phrase = httpx.codes.get_reason_phrase(status).lower() or "unknown status"
    body = clip(clean(response.text), ERROR_BODY_MAX)
    error = f"{stage}: {status} {phrase}" + (f": {body}" if body else "")
    if 200 <= status < 300:
        return DELIVERED
    if status == 429 or status >= 500 or status == 408:
        return retry(error, retry_after_s(response.headers.get("Retry-After")))
    # 3xx (a webhook never redirects) and other 4xx: the request itself is wrong, retrying
    # the same bytes cannot help. The row is kept, dead, and `monitor alerts retry` can requeue it.
    return permanent(error)


async def post_to_webhook(
    client: httpx.AsyncClient, url: str, *, stage: str, setting: str, timeout: float, **request: Any
) -> Delivery:
    """POST to a webhook URL; transport failures become retries. The URL is the credential: it
    never reaches an error (a log line, an Alert row), only the name of its SETTING does."""
    try:
        response = await client.post(url, timeout=timeout, follow_redirects=False, **request)
    except httpx.InvalidURL:
        return permanent(f"{stage}: {setting} is not a valid URL")
    except httpx.TimeoutException:
        return retry(f"{stage}: timeout after {timeout:g}s")
    except httpx.TransportError as exc:
        detail = str(exc).replace(url, f"<{setting}>") or "no detail"
        return retry(f"{stage}: connection error: {type(exc).__name__}: {detail}")
    return http_outcome(response, stage)
