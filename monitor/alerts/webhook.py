"""The generic webhook: every alert (and "also reported by" line) as a signed JSON POST
(schema: monitor/alerts/webhook_schema.json)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from monitor.alerts.channel import OneByOne, post_to_webhook
from monitor.config import WebhookChannelSettings
from monitor.outbox import AlertContent, AlsoReported, Delivery, Payload

SIGNATURE_HEADER = "X-Monitor-Signature"
TIMESTAMP_HEADER = "X-Monitor-Timestamp"
WEBHOOK_SCHEMA_ID = "https://monitor.invalid/schemas/webhook-alert-v1.json"


def webhook_payload(alert_id: int, item: Payload, sent_at: datetime) -> dict[str, Any]:
    """The JSON body. Text is raw, unescaped: the receiver escapes it for wherever it shows it."""
    article = {
        "title": item.article_title,
        "url": item.article_url,
        "feed": item.feed,
        "published": item.published.isoformat() if item.published else None,
    }
    body: dict[str, Any] = {
        "schema": WEBHOOK_SCHEMA_ID,
        "alert_id": alert_id,
        "sent_at": sent_at.astimezone(UTC).isoformat(),
        "article": article,
    }
    if isinstance(item, AlsoReported):
        return body | {"kind": "also_reported", "original_article_id": item.original_article_id}
    article["relevance"] = item.relevance
    allegation = item.closest_allegation
    return body | {
        "kind": "test" if item.test else "alert",
        "headline": item.headline(),
        "findings": [finding.model_dump(mode="json") | {"headline": finding.headline()} for finding in item.findings],
        "closest_allegation": allegation.model_dump(mode="json") if allegation else None,
        "review_url": item.review_url,
    }


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """sha256=HEX: HMAC-SHA256 over "TIMESTAMP." + the raw body, so an old request cannot be replayed."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookChannel(OneByOne):
    name = "webhook"
    follows_up = True

    def __init__(
        self, settings: WebhookChannelSettings, client: httpx.AsyncClient, clock: Callable[[], float] = time.time
    ) -> None:
        if not settings.active or settings.url is None or settings.secret is None:
            raise ValueError("webhook: url and secret are required")
        self._url = settings.url.get_secret_value()
        self._secret = settings.secret.get_secret_value()
        self._timeout = settings.timeout
        self._client = client
        self._clock = clock

    async def _post(self, alert_id: int, item: Payload) -> Delivery:
        now = self._clock()
        body = json.dumps(webhook_payload(alert_id, item, datetime.fromtimestamp(now, UTC)), ensure_ascii=False)
        timestamp = str(int(now))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: webhook_signature(self._secret, timestamp, body.encode()),
            "X-Monitor-Alert-Id": str(alert_id),
        }
        return await post_to_webhook(
            self._client, self._url, stage="webhook", setting="url", timeout=self._timeout,
            content=body.encode(), headers=headers,
        )  # fmt: skip

    async def send(self, alert_id: int, content: AlertContent) -> Delivery:
        return await self._post(alert_id, content)

    async def send_also_reported(self, alert_id: int, item: AlsoReported, parent: dict[str, Any]) -> Delivery:
        return await self._post(alert_id, item)
