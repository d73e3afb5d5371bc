"""The outbox dispatcher: send due Alert rows, record each outcome, back off on failure.

An alert is a row first and a message second. Each row is claimed (a short lease on
next_attempt_at) before it is sent and its outcome is committed right after, so a crash re-sends
at most the one alert that was in flight, and two dispatchers never send the same row at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from monitor.alerts.channels import Channel, Delivery, DeliveryStatus
from monitor.alerts.content import AlertContent
from monitor.config import AlertSettings
from monitor.store.models import Alert

log = logging.getLogger("monitor.alerts.dispatch")

# Long enough to cover one send (channel timeouts are seconds); a crash mid-send delays that
# alert by at most this much before another dispatcher picks it up again.
CLAIM_LEASE = timedelta(minutes=5)
# A server's Retry-After is honoured, up to a day: beyond that it is more likely a bug.
RETRY_AFTER_MAX_S = 86400.0

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"

Clock = Callable[[], datetime]


@dataclass
class DispatchReport:
    delivered: int = 0
    retried: int = 0
    dead: int = 0

    def __add__(self, other: DispatchReport) -> DispatchReport:
        return DispatchReport(
            self.delivered + other.delivered, self.retried + other.retried, self.dead + other.dead
        )


def outbox_rows(
    content: AlertContent, channels: Iterable[str], article_id: int | None = None
) -> list[Alert]:
    """One pending Alert per channel, carrying the content every channel renders."""
    payload = content.model_dump(mode="json")
    return [Alert(article_id=article_id, channel=name, payload=payload) for name in channels]


def backoff_s(attempts: int, settings: AlertSettings, rng: Callable[[], float] = random.random) -> float:
    """retry_base * 2**(attempts-1), capped at retry_max, then jittered down by up to half."""
    raw = settings.retry_base * 2.0 ** min(attempts - 1, 60)
    # Jitter spreads the retries of alerts that failed together (one outage) over time.
    return min(raw, settings.retry_max) * (0.5 + 0.5 * rng())


def retry_delay_s(delivery: Delivery, attempts: int, settings: AlertSettings) -> float:
    asked = min(delivery.retry_after_s or 0.0, RETRY_AFTER_MAX_S)
    return max(asked, backoff_s(attempts, settings))


def _log(level: int, event: str, **fields: Any) -> None:
    text = " ".join(f"{key}={value}" for key, value in fields.items() if value is not None)
    log.log(level, f"{event} {text}", extra=fields)


# --- database steps (each one short transaction, never held across a send) ------------------


def _due_ids(factory: sessionmaker[Session], channel: str, now: datetime, limit: int) -> list[int]:
    with factory() as session:
        query = (
            select(Alert.id)
            .where(Alert.channel == channel, Alert.status == PENDING, Alert.next_attempt_at <= now)
            .order_by(Alert.created_at, Alert.id)
            .limit(limit)
        )
        return list(session.scalars(query))


def _claim(factory: sessionmaker[Session], alert_id: int, now: datetime) -> tuple[dict[str, Any], int] | None:
    """(payload, attempts) if this dispatcher won the row, None if another one took it first."""
    with factory() as session:
        claimed = session.execute(
            update(Alert)
            .where(Alert.id == alert_id, Alert.status == PENDING, Alert.next_attempt_at <= now)
            .values(next_attempt_at=now + CLAIM_LEASE)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        if claimed.rowcount != 1:
            return None
        alert = session.get(Alert, alert_id)
        return (alert.payload, alert.attempts) if alert else None


def _record(
    factory: sessionmaker[Session],
    alert_id: int,
    delivery: Delivery,
    settings: AlertSettings,
    now: datetime,
) -> str:
    """Store the outcome of one attempt and return the row's new status."""
    with factory() as session:
        alert = session.get(Alert, alert_id)
        if alert is None:  # deleted while in flight: nothing left to record
            return DEAD
        alert.attempts += 1
        if delivery.error:
            alert.last_error = delivery.error
        if delivery.status == DeliveryStatus.DELIVERED:
            alert.status, alert.delivered_at = DELIVERED, now
        elif delivery.status == DeliveryStatus.PERMANENT or alert.attempts >= settings.max_attempts:
            alert.status = DEAD
        else:
            delay = retry_delay_s(delivery, alert.attempts, settings)
            alert.next_attempt_at = now + timedelta(seconds=delay)
        status = alert.status
        session.commit()
        return status


# --- sending ---------------------------------------------------------------------------------


async def _attempt(channel: Channel, alert_id: int, payload: dict[str, Any]) -> Delivery:
    try:
        content = AlertContent.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return Delivery(DeliveryStatus.PERMANENT, f"dispatch: invalid payload: {where}: {first['msg']}")
    try:
        return await channel.send(alert_id, content)
    except Exception as exc:  # the dispatcher boundary: one broken send must not stop the rest
        return Delivery(DeliveryStatus.RETRY, f"dispatch: {type(exc).__name__}: {exc}")


# Told of each attempt's outcome: (channel, alert id, new status). The service feeds its metrics.
Observer = Callable[[str, int, str], None]


async def _deliver_one(
    factory: sessionmaker[Session],
    name: str,
    channel: Channel,
    alert_id: int,
    settings: AlertSettings,
    clock: Clock,
    observe: Observer | None = None,
) -> str | None:
    claimed = _claim(factory, alert_id, clock())
    if claimed is None:
        return None
    payload, attempts = claimed
    started = time.monotonic()
    delivery = await _attempt(channel, alert_id, payload)
    duration_ms = round((time.monotonic() - started) * 1000)
    status = _record(factory, alert_id, delivery, settings, clock())
    level = logging.INFO if status == DELIVERED else logging.WARNING
    event = {DELIVERED: "alert delivered", DEAD: "alert dead"}.get(status, "alert retry")
    _log(
        level,
        event,
        alert_id=alert_id,
        channel=name,
        attempt=attempts + 1,
        duration_ms=duration_ms,
        error=delivery.error,
    )
    if observe is not None:
        observe(name, alert_id, status)
    return status


async def _drain(
    factory: sessionmaker[Session],
    name: str,
    channel: Channel,
    settings: AlertSettings,
    clock: Clock,
    limit: int,
    observe: Observer | None = None,
) -> DispatchReport:
    """One channel's due alerts, oldest first, one at a time (messages keep their order)."""
    report = DispatchReport()
    for alert_id in _due_ids(factory, name, clock(), limit):
        status = await _deliver_one(factory, name, channel, alert_id, settings, clock, observe)
        if status == DELIVERED:
            report.delivered += 1
        elif status == DEAD:
            report.dead += 1
        elif status == PENDING:
            report.retried += 1
    return report


async def dispatch_alerts(
    session_factory: sessionmaker[Session],
    channels: Mapping[str, Channel],
    settings: AlertSettings,
    now: datetime | None = None,
    limit: int = 100,
    observe: Observer | None = None,
) -> DispatchReport:
    """Send what is due on every configured channel; ``limit`` applies per channel.

    Channels run concurrently, so a hanging Slack never delays email. Rows for a channel that
    is not configured stay pending until it is.
    """
    clock: Clock = (lambda: now) if now is not None else (lambda: datetime.now(UTC))
    outcomes = await asyncio.gather(
        *(
            _drain(session_factory, name, channel, settings, clock, limit, observe)
            for name, channel in channels.items()
        ),
        # A database error in one channel's loop must not leave the others running detached.
        return_exceptions=True,
    )
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if failures:
        raise failures[0]
    return sum((outcome for outcome in outcomes if isinstance(outcome, DispatchReport)), DispatchReport())


def retry_alerts(session: Session, ids: list[int] | None, all_failed: bool) -> int:
    """Requeue dead alerts (the given ids, or all of them) with a fresh attempt budget; commits."""
    query = update(Alert).where(Alert.status == DEAD)
    if not all_failed:
        if not ids:
            return 0
        query = query.where(Alert.id.in_(ids))
    result = session.execute(
        query.values(status=PENDING, attempts=0, next_attempt_at=datetime.now(UTC)).execution_options(
            synchronize_session=False
        )
    )
    session.commit()
    return result.rowcount
