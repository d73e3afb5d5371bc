"""The outbox contract: what an alert row holds, the statuses it moves through, and every step
that creates or moves one.

An alert is a row first and a message second. Processing, follow-ups and the feed health checks
create rows here; the dispatcher claims, records and retries them here; the CLI and the metrics
read them here. Nothing else builds a payload or names a status. The steps take plain values
(ids, times, a Delivery) and each owns one short transaction unless it is given a session.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from monitor.backoff import backoff_s
from monitor.redact import redact_url
from monitor.store.db import SessionFactory
from monitor.store.lease import lease_now, take_leases
from monitor.store.models import Alert, AlertStatus, Article, Feed

log = logging.getLogger(__name__)

# A server's Retry-After is honoured, up to a day: beyond that it is more likely a bug.
RETRY_AFTER_MAX_S = 86400.0
# The most alerts one digest message lists. More waiting send another digest at once, without
# waiting for the period; a message refused for good is split to find the alert it cannot carry.
DIGEST_MAX_ITEMS = 50


class PayloadKind(StrEnum):
    ALERT = "alert"
    ALSO_REPORTED = "also_reported"


# --- the payload ------------------------------------------------------------------------------

FindingKind = Literal["country", "target", "denial"]


class FindingView(BaseModel):
    """One thing the article brought that the knowledge base did not hold."""

    kind: FindingKind
    value: str
    # For a denial: the allegation denied; empty for countries and targets.
    about: str = ""
    evidence: str
    closest_known: str | None = None
    closest_source: str | None = None
    similarity: float | None = None
    reason: str = ""

    def headline(self) -> str:
        """What is new, in the analyst's words: "New country: North Korea"."""
        if self.kind == "denial":
            if self.about:
                return f"New denial: {self.about} by {self.value}"
            return f"New denial by {self.value}"
        return f"New {self.kind}: {self.value}"


class ClosestAllegation(BaseModel):
    """The seed sentence the article is most similar to, so analysts see the context."""

    source: str
    sentence: str
    score: float


class AlertContent(BaseModel):
    """What an alert says, decided once in the transaction that creates it; every channel renders
    the same facts later."""

    article_title: str
    article_url: str | None
    feed: str
    published: datetime | None
    relevance: float
    findings: list[FindingView] = Field(default_factory=list)
    closest_allegation: ClosestAllegation | None = None
    # True for `monitor test-alert`: rendered with a visible TEST marker.
    test: bool = False
    review_url: str | None = None  # its page on the desk (web.base_url): "Review" in every channel

    def headline(self) -> str:
        """The first finding's headline, with a count of the others."""
        if not self.findings:
            return "Test alert" if self.test else "New report"
        first = self.findings[0].headline()
        others = len(self.findings) - 1
        return f"{first} (+{others} more)" if others else first


class AlsoReported(BaseModel):
    """Another outlet reported a story already alerted, adding nothing new: a line, not an alert."""

    kind: Literal["also_reported"] = "also_reported"
    article_title: str
    article_url: str | None
    feed: str
    published: datetime | None
    # The article whose alert this follows up, and that alert's title (for a digest line).
    original_article_id: int
    original_title: str = ""

    def headline(self) -> str:
        return f"Also reported by {self.feed}"


Payload = AlertContent | AlsoReported


def payload_kind(payload: dict[str, Any]) -> PayloadKind:
    return PayloadKind(payload.get("kind") or PayloadKind.ALERT)


def parse_payload(payload: dict[str, Any]) -> Payload:
    """The row's payload as its model; pydantic's ValidationError when it does not fit."""
    if payload_kind(payload) is PayloadKind.ALSO_REPORTED:
        return AlsoReported.model_validate(payload)
    return AlertContent.model_validate(payload)


def feed_notice(feed: str, url: str, title: str, now: datetime) -> AlertContent:
    """An alert about a feed itself (failing, recovered): no article, no findings. Shown to people on
    every channel, so a key in the feed's URL is masked."""
    return AlertContent(article_title=title, article_url=redact_url(url), feed=feed, published=now, relevance=0.0)


# --- what a channel says about a send -----------------------------------------------------------


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Delivery:
    status: DeliveryStatus
    error: str | None = None
    # A server's own request to wait (Retry-After); the row waits at least this.
    retry_after_s: float | None = None
    # What the server said about the message that later messages need (Slack's channel and ts,
    # for threaded replies); kept in the row's payload under "receipt".
    receipt: dict[str, Any] | None = None


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float
    max_s: float
    max_attempts: int

    def delay_s(self, attempts: int, retry_after_s: float | None = None) -> float:
        """The wait before the next attempt: the backoff, or the server's Retry-After if longer."""
        asked = min(retry_after_s or 0.0, RETRY_AFTER_MAX_S)
        # Jittered down by up to half: alerts that failed together do not retry together.
        return max(asked, backoff_s(attempts, base_s=self.base_s, max_s=self.max_s, jitter=(0.5, 1.0)))


# --- creating rows --------------------------------------------------------------------------------


def outbox_rows(
    content: Payload, channels: Iterable[str], article_id: int | None = None, now: datetime | None = None
) -> list[Alert]:
    """One pending row per channel, each carrying the content every channel renders."""
    at = now or datetime.now(UTC)
    payload = content.model_dump(mode="json")
    return [
        Alert(
            article_id=article_id,
            channel=name,
            payload=dict(payload),
            status=AlertStatus.PENDING,
            attempts=0,
            next_attempt_at=at,
            created_at=at,
        )
        for name in channels
    ]


def add_alerts(
    session: Session, content: Payload, channels: Iterable[str], article_id: int | None, now: datetime
) -> list[Alert]:
    """outbox_rows added to SESSION, in the caller's transaction (with the article they are about)."""
    rows = outbox_rows(content, channels, article_id, now)
    session.add_all(rows)
    return rows


def alerted_channels(session: Session, article_id: int) -> tuple[str, set[str], int | None]:
    """For an article: its alert's title, the channels that carry an alert about it, and the
    article an "also reported" row of it follows (to walk a same-story chain back)."""
    rows = list(session.execute(select(Alert.channel, Alert.payload).where(Alert.article_id == article_id)))
    alerts = [(channel, payload) for channel, payload in rows if payload_kind(payload) is PayloadKind.ALERT]
    title = str(alerts[0][1].get("article_title", "")) if alerts else ""
    follows = [p.get("original_article_id") for _, p in rows if payload_kind(p) is PayloadKind.ALSO_REPORTED]
    return title, {channel for channel, _ in alerts}, follows[0] if follows and isinstance(follows[0], int) else None


# --- claiming, recording, retrying ----------------------------------------------------------------
#
# The steps that claim or record take NOW for a fixed time (tests, replays) or None: the lease
# helper's clock, the database server's, which every replica shares.


@dataclass
class Claimed:
    alert_id: int
    payload: dict[str, Any]
    attempts: int
    feed_tags: list[str] | None
    # For an "also reported" row: the parent alert's status and payload on this channel.
    parent: tuple[str, dict[str, Any]] | None = None
    # The claim: the row's next_attempt_at as this dispatcher set it. An outcome is recorded only
    # while the row still carries it, so a dispatcher that lost the row records nothing.
    lease_until: datetime | None = None


def _pending_due(channel: str, now: datetime) -> Any:
    return (Alert.channel == channel) & (Alert.status == AlertStatus.PENDING) & (Alert.next_attempt_at <= now)


def due_alert_ids(sessions: SessionFactory, channel: str, now: datetime | None, limit: int) -> list[int]:
    """CHANNEL's due rows, oldest first (messages keep their order); not claimed yet."""
    with sessions() as session:
        now = lease_now(session, now)
        query = select(Alert.id).where(_pending_due(channel, now)).order_by(Alert.created_at, Alert.id).limit(limit)
        return list(session.scalars(query))


def _claimed(session: Session, alert: Alert, want_tags: bool, lease_until: datetime) -> Claimed:
    tags = None
    if want_tags and alert.article_id is not None:
        tags = session.scalar(
            select(Feed.tags).join(Article, Article.feed_id == Feed.id).where(Article.id == alert.article_id)
        )
    parent = None
    if payload_kind(alert.payload) is PayloadKind.ALSO_REPORTED:
        row = session.execute(
            select(Alert.status, Alert.payload).where(
                Alert.article_id == alert.payload.get("original_article_id"), Alert.channel == alert.channel
            )
        ).first()
        parent = (row[0], row[1]) if row else None
    return Claimed(alert.id, dict(alert.payload), alert.attempts, list(tags or []), parent, lease_until)


def claim_alert(
    sessions: SessionFactory, alert_id: int, now: datetime | None, lease_s: float, want_tags: bool
) -> Claimed | None:
    """The row's content if this dispatcher won it, None if another one took it first."""
    with sessions() as session:
        now = lease_now(session, now)
        until = now + timedelta(seconds=lease_s)
        due = (Alert.id == alert_id) & (Alert.status == AlertStatus.PENDING) & (Alert.next_attempt_at <= now)
        won = take_leases(session, Alert.id, where=due, values={"next_attempt_at": until})
        session.commit()
        alert = session.get(Alert, alert_id) if won else None
        return _claimed(session, alert, want_tags, until) if alert else None


def claim_digest(
    sessions: SessionFactory, channel: str, now: datetime | None, period_s: float, lease_s: float, want_tags: bool
) -> list[Claimed]:
    """The oldest due rows of CHANNEL (at most DIGEST_MAX_ITEMS), claimed, if a digest is due now:
    one period after the last, or at once when a full digest is waiting."""
    with sessions() as session:
        now = lease_now(session, now)
        due = list(
            session.execute(
                select(Alert.id, Alert.created_at)
                .where(_pending_due(channel, now))
                .order_by(Alert.created_at, Alert.id)
                .limit(DIGEST_MAX_ITEMS)
            )
        )
        if not due:
            return []
        last = session.scalar(
            select(func.max(Alert.delivered_at)).where(Alert.channel == channel, Alert.status == AlertStatus.DELIVERED)
        )
        due_at = (last or min(created for _, created in due)) + timedelta(seconds=period_s)
        if now < due_at and len(due) < DIGEST_MAX_ITEMS:
            return []
        until = now + timedelta(seconds=lease_s)
        won = take_leases(
            session,
            Alert.id,
            where=Alert.id.in_([alert_id for alert_id, _ in due]) & _pending_due(channel, now),
            values={"next_attempt_at": until},
            order_by=(Alert.created_at, Alert.id),
        )
        session.commit()
        rows = session.scalars(select(Alert).where(Alert.id.in_(won)).order_by(Alert.created_at, Alert.id))
        return [_claimed(session, alert, want_tags, until) for alert in rows]


def _holds(alert: Alert, lease_until: datetime | None) -> bool:
    """True while ALERT still carries this dispatcher's claim (nobody claimed it since)."""
    return lease_until is None or abs((alert.next_attempt_at - lease_until).total_seconds()) < 1e-3


def record_attempt(
    sessions: SessionFactory,
    alert_ids: Sequence[int],
    delivery: Delivery,
    policy: RetryPolicy,
    now: datetime | None,
    lease_until: datetime | None = None,
) -> AlertStatus:
    """Store how one attempt went (one message: one row, or a digest's rows); the new status.

    Only rows that still carry this dispatcher's claim (LEASE_UNTIL) are written. Rows are locked
    (PostgreSQL) so that a claim by another dispatcher cannot slip between this check and this write.
    """
    status = AlertStatus.DEAD  # rows deleted while in flight: nothing left to record
    with sessions() as session:
        now = lease_now(session, now)
        for alert in session.scalars(select(Alert).where(Alert.id.in_(alert_ids)).with_for_update()):
            # A store retried after a lost connection may find that its first commit did land.
            if alert.status == AlertStatus.PENDING:
                if not _holds(alert, lease_until):
                    # Another dispatcher claimed it after this one's lease ran out: its outcome counts.
                    log.warning(
                        "alert outcome not recorded: the claim was taken over",
                        extra={"alert_id": alert.id, "channel": alert.channel, "error": delivery.error},
                    )
                    status = AlertStatus.PENDING
                    continue
                if lease_until is not None and now > lease_until:
                    log.warning(
                        "alert send outlived its claim's lease; recorded as nobody else took it",
                        extra={"alert_id": alert.id, "channel": alert.channel},
                    )
                _apply(alert, delivery, policy, now)
            status = AlertStatus(alert.status)
        session.commit()
    return status


def renew_claim(
    sessions: SessionFactory, alert_ids: Sequence[int], now: datetime | None, lease_s: float, lease_until: datetime
) -> tuple[list[int], datetime]:
    """A fresh lease on the rows of ALERT_IDS that still carry the claim LEASE_UNTIL: (them, its end)."""
    with sessions() as session:
        renewed = lease_now(session, now) + timedelta(seconds=lease_s)
        won: list[int] = []
        for alert in session.scalars(select(Alert).where(Alert.id.in_(alert_ids)).with_for_update()):
            if alert.status == AlertStatus.PENDING and _holds(alert, lease_until):
                alert.next_attempt_at = renewed
                won.append(alert.id)
        session.commit()
        return sorted(won), renewed


def _apply(alert: Alert, delivery: Delivery, policy: RetryPolicy, now: datetime) -> None:
    alert.attempts += 1
    if delivery.error:
        alert.last_error = delivery.error
    if delivery.status == DeliveryStatus.DELIVERED:
        alert.status, alert.delivered_at = AlertStatus.DELIVERED, now
        if delivery.receipt:
            alert.payload = {**alert.payload, "receipt": delivery.receipt}
    elif delivery.status == DeliveryStatus.PERMANENT or alert.attempts >= policy.max_attempts:
        alert.status = AlertStatus.DEAD
    else:
        alert.next_attempt_at = now + timedelta(seconds=policy.delay_s(alert.attempts, delivery.retry_after_s))


def set_aside(
    sessions: SessionFactory,
    alert_ids: Sequence[int],
    status: AlertStatus,
    reason: str,
    later: datetime | None = None,
) -> AlertStatus:
    """Filter rows out, kill them without an attempt, or (PENDING) put them back until LATER."""
    with sessions() as session:
        for alert in session.scalars(select(Alert).where(Alert.id.in_(alert_ids))):
            alert.status = status
            alert.last_error = reason
            if later is not None:
                alert.next_attempt_at = later
        session.commit()
    return status


def requeue_dead(session: Session, ids: Sequence[int] | None, all_dead: bool, now: datetime | None = None) -> int:
    """Requeue dead alerts (the given ids, or all of them) with a fresh attempt budget; commits."""
    query = update(Alert).where(Alert.status == AlertStatus.DEAD)
    if not all_dead:
        if not ids:
            return 0
        query = query.where(Alert.id.in_(ids))
    result = session.execute(
        query.values(
            status=AlertStatus.PENDING, attempts=0, next_attempt_at=now or datetime.now(UTC)
        ).execution_options(synchronize_session=False)
    )
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


# --- reading ----------------------------------------------------------------------------------------


def pending_by_channel(session: Session) -> list[tuple[str, int, datetime]]:
    """(channel, rows waiting, the oldest's creation) for each channel with pending rows: one query."""
    rows = session.execute(
        select(Alert.channel, func.count(), func.min(Alert.created_at))
        .where(Alert.status == AlertStatus.PENDING)
        .group_by(Alert.channel)
    )
    return [(channel, int(count), oldest) for channel, count, oldest in rows]


def article_times(session: Session, alert_id: int) -> tuple[datetime | None, datetime | None]:
    """When the alert's article was published and first fetched (none for a feed notice)."""
    row = session.execute(
        select(Article.published_at, Article.fetched_at)
        .join(Alert, Alert.article_id == Article.id)
        .where(Alert.id == alert_id)
    ).first()
    return (row[0], row[1]) if row else (None, None)


def list_alerts(session: Session, status: str | None, limit: int) -> list[Alert]:
    """The newest alerts, of one status or all."""
    query = select(Alert).order_by(Alert.id.desc()).limit(limit)
    if status:
        query = query.where(Alert.status == status)
    return list(session.scalars(query))
