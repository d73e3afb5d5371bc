"""The outbox dispatcher: send due Alert rows, record each outcome, back off on failure.

An alert is a row first and a message second. Each row is claimed (a short lease on
next_attempt_at) before it is sent and its outcome is committed right after, so a crash re-sends
at most the one alert that was in flight, and two dispatchers never send the same row at once.

If the database goes away while a message is on the wire, the outcome is kept in memory and
stored as soon as the database answers again (within the claim's lease), so the alert is not sent
twice. Database steps run in worker threads: a database that is slow to answer (a SQLite file
locked by another process) holds up the rows that need it, never the event loop.

Per channel (its settings under ``alerts.<channel>``): filters decide what the channel is told
(rows it shows nothing of end "filtered"), ``rate_limit`` spaces its messages, a 429 pauses it, and
for email ``digest`` gathers every due row into one message per period.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from monitor.alerts.channels import Channel, Delivery, DeliveryStatus
from monitor.alerts.content import (
    ALSO_REPORTED,
    AlertContent,
    AlsoReported,
    filter_content,
    payload_kind,
)
from monitor.alerts.deadline import send_deadline_s, within_deadline
from monitor.config import AlertSettings, ChannelFilter
from monitor.store.clock import database_now
from monitor.store.models import Alert, Article, Feed

log = logging.getLogger("monitor.alerts.dispatch")

# How long an outcome waits in memory for the database to come back, as a share of the claim's
# lease (alerts.claim_lease): past the lease another dispatcher may send the row again.
RECORD_PATIENCE = 0.75
# A server's Retry-After is honoured, up to a day: beyond that it is more likely a bug.
RETRY_AFTER_MAX_S = 86400.0
# An "also reported" reply waits this long between looks for its parent alert to be delivered.
PARENT_WAIT_S = 5.0
# The most alerts one digest message lists. More waiting send another digest at once, without
# waiting for the period; a message refused for good is split to find the alert it cannot carry.
DIGEST_MAX_ITEMS = 50

PENDING, DELIVERED, DEAD, FILTERED = "pending", "delivered", "dead", "filtered"

T = TypeVar("T")


@dataclass(frozen=True)
class Clock:
    """Now, for a dispatch round: FIXED when given (tests, replays), else the real time.

    ``in_session`` is the clock of claims and leases: the database server's, so that replicas
    with skewed wall clocks agree on when a lease ends.
    """

    fixed: datetime | None = None

    def __call__(self) -> datetime:
        return self.fixed or datetime.now(UTC)

    def in_session(self, session: Session) -> datetime:
        return self.fixed or database_now(session)


@dataclass
class DispatchReport:
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    filtered: int = 0

    def __add__(self, other: DispatchReport) -> DispatchReport:
        return DispatchReport(
            self.delivered + other.delivered,
            self.retried + other.retried,
            self.dead + other.dead,
            self.filtered + other.filtered,
        )

    def count(self, status: str | None, rows: int = 1) -> None:
        if status == DELIVERED:
            self.delivered += rows
        elif status == DEAD:
            self.dead += rows
        elif status == PENDING:
            self.retried += rows
        elif status == FILTERED:
            self.filtered += rows


def outbox_rows(
    content: AlertContent | AlsoReported,
    channels: Iterable[str],
    article_id: int | None = None,
) -> list[Alert]:
    """One pending Alert per channel, carrying the content every channel renders."""
    payload = content.model_dump(mode="json")
    return [
        Alert(article_id=article_id, channel=name, payload=payload) for name in channels
    ]


def backoff_s(
    attempts: int, settings: AlertSettings, rng: Callable[[], float] = random.random
) -> float:
    """retry_base * 2**(attempts-1), capped at retry_max, then jittered down by up to half."""
    raw = settings.retry_base * 2.0 ** min(attempts - 1, 60)
    # Jitter spreads the retries of alerts that failed together (one outage) over time.
    return min(raw, settings.retry_max) * (0.5 + 0.5 * rng())


def retry_delay_s(delivery: Delivery, attempts: int, settings: AlertSettings) -> float:
    asked = min(delivery.retry_after_s or 0.0, RETRY_AFTER_MAX_S)
    return max(asked, backoff_s(attempts, settings))


def channel_settings(settings: AlertSettings, name: str) -> ChannelFilter:
    found = getattr(settings, name, None)
    return found if isinstance(found, ChannelFilter) else ChannelFilter()


def _patience(settings: AlertSettings) -> float:
    return settings.claim_lease * RECORD_PATIENCE


def _log(level: int, event: str, **fields: Any) -> None:
    text = " ".join(
        f"{key}={value}" for key, value in fields.items() if value is not None
    )
    log.log(level, f"{event} {text}", extra=fields)


async def _db(step: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(step, *args)


# --- database steps (each one short transaction, never held across a send) ------------------


@dataclass
class Claimed:
    payload: dict[str, Any]
    attempts: int
    feed_tags: list[str] | None
    # For an "also reported" row: the parent alert's status and payload on this channel.
    parent: tuple[str, dict[str, Any]] | None = None
    # The claim: the row's next_attempt_at as this dispatcher set it. An outcome is recorded only
    # while the row still carries it, so a dispatcher that lost the row records nothing.
    lease_until: datetime | None = None


def _due_ids(
    factory: sessionmaker[Session], channel: str, now: datetime, limit: int
) -> list[int]:
    with factory() as session:
        query = (
            select(Alert.id)
            .where(
                Alert.channel == channel,
                Alert.status == PENDING,
                Alert.next_attempt_at <= now,
            )
            .order_by(Alert.created_at, Alert.id)
            .limit(limit)
        )
        return list(session.scalars(query))


def _details(session: Session, alert: Alert, want_tags: bool) -> Claimed:
    tags = None
    if want_tags and alert.article_id is not None:
        tags = session.scalar(
            select(Feed.tags)
            .join(Article, Article.feed_id == Feed.id)
            .where(Article.id == alert.article_id)
        )
    parent = None
    if payload_kind(alert.payload) == ALSO_REPORTED:
        row = session.execute(
            select(Alert.status, Alert.payload).where(
                Alert.article_id == alert.payload.get("original_article_id"),
                Alert.channel == alert.channel,
            )
        ).first()
        parent = (row[0], row[1]) if row else None
    return Claimed(dict(alert.payload), alert.attempts, list(tags or []), parent)


def _claim(
    factory: sessionmaker[Session],
    alert_id: int,
    clock: Clock,
    lease: timedelta,
    want_tags: bool = False,
) -> Claimed | None:
    """The row's content if this dispatcher won it, None if another one took it first."""
    with factory() as session:
        now = clock.in_session(session)
        claimed = session.execute(
            update(Alert)
            .where(
                Alert.id == alert_id,
                Alert.status == PENDING,
                Alert.next_attempt_at <= now,
            )
            .values(next_attempt_at=now + lease)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        if claimed.rowcount != 1:
            return None
        alert = session.get(Alert, alert_id)
        if alert is None:
            return None
        details = _details(session, alert, want_tags)
        details.lease_until = now + lease
        return details


def _apply(
    alert: Alert, delivery: Delivery, settings: AlertSettings, now: datetime
) -> None:
    alert.attempts += 1
    if delivery.error:
        alert.last_error = delivery.error
    if delivery.status == DeliveryStatus.DELIVERED:
        alert.status, alert.delivered_at = DELIVERED, now
        if delivery.receipt:
            alert.payload = {**alert.payload, "receipt": delivery.receipt}
    elif (
        delivery.status == DeliveryStatus.PERMANENT
        or alert.attempts >= settings.max_attempts
    ):
        alert.status = DEAD
    else:
        delay = retry_delay_s(delivery, alert.attempts, settings)
        alert.next_attempt_at = now + timedelta(seconds=delay)


def _holds(alert: Alert, lease_until: datetime | None) -> bool:
    """True while ALERT still carries this dispatcher's claim (nobody claimed it since)."""
    return lease_until is None or abs((alert.next_attempt_at - lease_until).total_seconds()) < 1e-3


def _record(
    factory: sessionmaker[Session],
    alert_ids: list[int],
    delivery: Delivery,
    settings: AlertSettings,
    clock: Clock,
    lease_until: datetime | None = None,
) -> str:
    """Store the outcome of one attempt (one message: one row, or a digest's rows); the new status.

    Only rows that still carry this dispatcher's claim are written. Rows locked (PostgreSQL) so
    that a claim by another dispatcher cannot slip between this check and this write.
    """
    status = DEAD  # rows deleted while in flight: nothing left to record
    with factory() as session:
        now = clock.in_session(session)
        rows = session.scalars(select(Alert).where(Alert.id.in_(alert_ids)).with_for_update())
        for alert in rows:
            # A store retried after a lost connection may find that its first commit did land.
            if alert.status == PENDING:
                if not _holds(alert, lease_until):
                    # Another dispatcher claimed it after this one's lease ran out: its outcome is
                    # the one that counts.
                    log.warning(
                        "alert outcome not recorded: the claim was taken over",
                        extra={"alert_id": alert.id, "channel": alert.channel, "error": delivery.error},
                    )
                    status = PENDING
                    continue
                if lease_until is not None and now > lease_until:
                    log.warning(
                        "alert send outlived its claim's lease; recorded as nobody else took it",
                        extra={"alert_id": alert.id, "channel": alert.channel},
                    )
                _apply(alert, delivery, settings, now)
            status = alert.status
        session.commit()
    return status


def _renew(
    factory: sessionmaker[Session],
    alert_ids: list[int],
    clock: Clock,
    lease_until: datetime,
    lease: timedelta,
) -> tuple[list[int], datetime]:
    """A fresh lease on the rows of ALERT_IDS that still carry this claim; (the rows, new end)."""
    with factory() as session:
        now = clock.in_session(session)
        renewed = now + lease
        won: list[int] = []
        for alert in session.scalars(select(Alert).where(Alert.id.in_(alert_ids)).with_for_update()):
            if alert.status == PENDING and _holds(alert, lease_until):
                alert.next_attempt_at = renewed
                won.append(alert.id)
        session.commit()
        return sorted(won), renewed


def _set_aside(
    factory: sessionmaker[Session],
    alert_ids: list[int],
    status: str,
    reason: str,
    later: datetime | None = None,
) -> str:
    """Filter a row out, kill it without an attempt, or (PENDING) put it back until LATER."""
    with factory() as session:
        for alert in session.scalars(select(Alert).where(Alert.id.in_(alert_ids))):
            alert.status = status
            alert.last_error = reason
            if later is not None:
                alert.next_attempt_at = later
        session.commit()
    return status


async def _store(
    step: Callable[..., str],
    *args: Any,
    alert_ids: list[int],
    channel: str,
    patience_s: float,
) -> str:
    """Run a recording step; while the database is unreachable, keep trying within the lease."""
    deadline = time.monotonic() + patience_s
    delay = 0.1
    while True:
        try:
            return await _db(step, *args)
        except DBAPIError as exc:
            if time.monotonic() + delay > deadline:
                raise
            _log(
                logging.WARNING,
                "alert outcome not stored, database unavailable; retrying",
                alert_id=alert_ids[0] if len(alert_ids) == 1 else None,
                alert_ids=alert_ids if len(alert_ids) > 1 else None,
                channel=channel,
                error=f"store: {type(exc.orig or exc).__name__}: {str(exc.orig or exc).strip()[:200]}",
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


# --- pacing: rate limits and a server's request to wait ------------------------------------


class _Pace:
    def __init__(self) -> None:
        self.last_send = float("-inf")
        self.paused_until = float("-inf")


_paces: weakref.WeakKeyDictionary[Any, _Pace] = weakref.WeakKeyDictionary()


def _pace_of(channel: Channel) -> _Pace:
    try:
        return _paces.setdefault(channel, _Pace())
    except TypeError:  # not weak-referenceable: no memory across rounds
        return _Pace()


async def _wait_turn(pace: _Pace, rate_limit: float | None) -> None:
    # The slot is taken before sleeping, so two dispatch rounds sharing a channel keep the pace.
    now = time.monotonic()
    slot = max(now, pace.last_send + (rate_limit or 0.0))
    pace.last_send = slot
    if slot > now:
        await asyncio.sleep(slot - now)


# --- sending ---------------------------------------------------------------------------------


def _invalid(exc: ValidationError) -> Delivery:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return Delivery(
        DeliveryStatus.PERMANENT, f"dispatch: invalid payload: {where}: {first['msg']}"
    )


async def _guard(send: Awaitable[Delivery], channel: str = "", deadline_s: float | None = None) -> Delivery:
    try:
        return await within_deadline(channel, deadline_s, send)
    except (
        Exception
    ) as exc:  # the dispatcher boundary: one broken send must not stop the rest
        return Delivery(DeliveryStatus.RETRY, f"dispatch: {type(exc).__name__}: {exc}")


# Told of each attempt's outcome: (channel, alert id, new status). The service feeds its metrics.
Observer = Callable[[str, int, str], None]


@dataclass
class _Plan:
    """What to do with a claimed row: send SEND, or set it aside with STATUS and REASON."""

    send: Callable[[], Awaitable[Delivery]] | None = None
    status: str | None = None
    reason: str = ""
    later: datetime | None = None


def _plan(
    name: str,
    channel: Channel,
    alert_id: int,
    claimed: Claimed,
    filters: ChannelFilter,
    now: datetime,
    deadline_s: float | None = None,
) -> _Plan:
    payload = claimed.payload
    if payload_kind(payload) == ALSO_REPORTED:
        try:
            item = AlsoReported.model_validate(payload)
        except ValidationError as exc:
            invalid = _invalid(exc)
            return _Plan(lambda: _as_coroutine(invalid))
        reply = getattr(channel, "send_also_reported", None)
        if reply is None:
            return _Plan(
                status=FILTERED, reason=f"filtered: {name} takes no also-reported lines"
            )
        if claimed.parent is None:
            return _Plan(
                status=FILTERED, reason="filtered: no alert on this channel to follow"
            )
        parent_status, parent_payload = claimed.parent
        if parent_status == PENDING:
            later = now + timedelta(seconds=PARENT_WAIT_S)
            return _Plan(
                status=PENDING, reason="waiting for the alert it follows", later=later
            )
        if parent_status == FILTERED:
            return _Plan(
                status=FILTERED, reason="filtered: the alert it follows was filtered"
            )
        if parent_status != DELIVERED:
            return _Plan(
                status=DEAD,
                reason=f"dispatch: the alert it follows is {parent_status}; requeue both",
            )
        receipt = dict(parent_payload.get("receipt") or {})
        return _Plan(lambda: _guard(reply(alert_id, item, receipt), name, deadline_s))
    try:
        content = AlertContent.model_validate(payload)
    except ValidationError as exc:
        invalid = _invalid(exc)
        return _Plan(lambda: _as_coroutine(invalid))
    shown, why = filter_content(
        content,
        kinds=filters.kinds,
        min_relevance=filters.min_relevance,
        feed_tags=filters.feed_tags,
        article_tags=claimed.feed_tags,
    )
    if shown is None:
        return _Plan(status=FILTERED, reason=why or "filtered")
    return _Plan(lambda: _guard(channel.send(alert_id, shown), name, deadline_s))


async def _as_coroutine(delivery: Delivery) -> Delivery:
    return delivery


async def _deliver_one(
    factory: sessionmaker[Session],
    name: str,
    channel: Channel,
    alert_id: int,
    settings: AlertSettings,
    clock: Clock,
    pace: _Pace,
    observe: Observer | None = None,
) -> tuple[str | None, Delivery | None]:
    filters = channel_settings(settings, name)
    lease = timedelta(seconds=settings.claim_lease)
    claimed = await _db(
        _claim, factory, alert_id, clock, lease, bool(filters.feed_tags)
    )
    if claimed is None:
        return None, None
    plan = _plan(name, channel, alert_id, claimed, filters, clock(), send_deadline_s(settings, name))
    if plan.send is None:
        status = await _store(
            _set_aside,
            factory,
            [alert_id],
            plan.status,
            plan.reason,
            plan.later,
            alert_ids=[alert_id],
            channel=name,
            patience_s=_patience(settings),
        )
        _log(
            logging.INFO,
            f"alert {status}",
            alert_id=alert_id,
            channel=name,
            reason=plan.reason,
        )
        return (None if status == PENDING else status), None
    await _wait_turn(pace, filters.rate_limit)
    started = time.monotonic()
    delivery = await plan.send()
    duration_ms = round((time.monotonic() - started) * 1000)
    status = await _store(
        _record,
        factory,
        [alert_id],
        delivery,
        settings,
        clock,
        claimed.lease_until,
        alert_ids=[alert_id],
        channel=name,
        patience_s=_patience(settings),
    )
    level = logging.INFO if status == DELIVERED else logging.WARNING
    event = {DELIVERED: "alert delivered", DEAD: "alert dead"}.get(
        status, "alert retry"
    )
    _log(
        level,
        event,
        alert_id=alert_id,
        channel=name,
        attempt=claimed.attempts + 1,
        duration_ms=duration_ms,
        error=delivery.error,
    )
    if observe is not None:
        observe(name, alert_id, status)
    return status, delivery


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
    digest = getattr(channel_settings(settings, name), "digest", None)
    if digest and hasattr(channel, "send_digest"):
        return await _drain_digest(
            factory, name, channel, settings, clock, digest, observe
        )
    report = DispatchReport()
    pace = _pace_of(channel)
    if time.monotonic() < pace.paused_until:
        return report
    for alert_id in await _db(_due_ids, factory, name, clock(), limit):
        status, delivery = await _deliver_one(
            factory, name, channel, alert_id, settings, clock, pace, observe
        )
        report.count(status)
        if (
            delivery is not None
            and delivery.retry_after_s is not None
            and delivery.status == DeliveryStatus.RETRY
        ):
            # The server asked the channel to wait: later alerts wait too, and keep their order.
            pace.paused_until = time.monotonic() + min(
                delivery.retry_after_s, RETRY_AFTER_MAX_S
            )
            break
    return report


# --- email digest ----------------------------------------------------------------------------


def _digest_claim(
    factory: sessionmaker[Session],
    channel: str,
    clock: Clock,
    period_s: float,
    lease: timedelta,
    want_tags: bool,
) -> tuple[list[tuple[int, Claimed]], datetime]:
    """The oldest due rows of CHANNEL (at most DIGEST_MAX_ITEMS), claimed, if a digest is due now:
    one period after the last, or at once when a full digest is waiting; and the claim's end."""
    with factory() as session:
        now = clock.in_session(session)
        due = list(
            session.execute(
                select(Alert.id, Alert.created_at)
                .where(
                    Alert.channel == channel,
                    Alert.status == PENDING,
                    Alert.next_attempt_at <= now,
                )
                .order_by(Alert.created_at, Alert.id)
                .limit(DIGEST_MAX_ITEMS)
            )
        )
        if not due:
            return [], now
        last = session.scalar(
            select(func.max(Alert.delivered_at)).where(
                Alert.channel == channel, Alert.status == DELIVERED
            )
        )
        due_at = (last or min(created for _, created in due)) + timedelta(
            seconds=period_s
        )
        if now < due_at and len(due) < DIGEST_MAX_ITEMS:
            return [], now
        ids = [alert_id for alert_id, _ in due]
        won = set(
            session.scalars(
                update(Alert)
                .where(
                    Alert.id.in_(ids),
                    Alert.status == PENDING,
                    Alert.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + lease)
                .returning(Alert.id)
                .execution_options(synchronize_session=False)
            )
        )
        session.commit()
        rows = session.scalars(
            select(Alert).where(Alert.id.in_(won)).order_by(Alert.created_at, Alert.id)
        )
        return [(alert.id, _details(session, alert, want_tags)) for alert in rows], now + lease


async def _drain_digest(
    factory: sessionmaker[Session],
    name: str,
    channel: Any,
    settings: AlertSettings,
    clock: Clock,
    period_s: float,
    observe: Observer | None,
) -> DispatchReport:
    report = DispatchReport()
    filters = channel_settings(settings, name)
    lease = timedelta(seconds=settings.claim_lease)
    claimed, lease_until = await _db(
        _digest_claim, factory, name, clock, period_s, lease, bool(filters.feed_tags)
    )
    if not claimed:
        return report
    items: list[AlertContent | AlsoReported] = []
    sent_ids: list[int] = []
    for alert_id, row in claimed:
        item: AlertContent | AlsoReported | None
        why = None
        try:
            if payload_kind(row.payload) == ALSO_REPORTED:
                item = AlsoReported.model_validate(row.payload)
            else:
                item, why = filter_content(
                    AlertContent.model_validate(row.payload),
                    kinds=filters.kinds,
                    min_relevance=filters.min_relevance,
                    feed_tags=filters.feed_tags,
                    article_tags=row.feed_tags,
                )
        except ValidationError as exc:
            error = _invalid(exc).error or "dispatch: invalid payload"
            report.count(
                await _store(
                    _set_aside,
                    factory,
                    [alert_id],
                    DEAD,
                    error,
                    alert_ids=[alert_id],
                    channel=name,
                    patience_s=_patience(settings),
                )
            )
            continue
        if item is None:
            reason = why or "filtered"
            report.count(
                await _store(
                    _set_aside,
                    factory,
                    [alert_id],
                    FILTERED,
                    reason,
                    alert_ids=[alert_id],
                    channel=name,
                    patience_s=_patience(settings),
                )
            )
            continue
        items.append(item)
        sent_ids.append(alert_id)
    if not sent_ids:
        return report
    await _send_digest(
        factory, name, channel, settings, clock, list(zip(sent_ids, items, strict=True)), lease_until, report, observe
    )
    return report


async def _send_digest(
    factory: sessionmaker[Session],
    name: str,
    channel: Any,
    settings: AlertSettings,
    clock: Clock,
    parts: list[tuple[int, AlertContent | AlsoReported]],
    lease_until: datetime,
    report: DispatchReport,
    observe: Observer | None,
) -> None:
    """Send PARTS as one digest and record it. A digest refused for good (a 552 for its size, a
    554 for one article's words) is split in halves, each sent on a fresh claim, down to single
    alerts: only the alert the server will never take ends dead, and a retry never rebuilds the
    same refused message."""
    sent_ids = [alert_id for alert_id, _ in parts]
    # The same rows make the same Message-ID, so a digest re-sent after a crash is a duplicate.
    key = f"{sent_ids[0]}-{sent_ids[-1]}-{len(sent_ids)}"
    started = time.monotonic()
    delivery = await _guard(channel.send_digest(key, [item for _, item in parts]), name, send_deadline_s(settings, name))
    if delivery.status == DeliveryStatus.PERMANENT and len(parts) > 1:
        _log(logging.WARNING, "digest refused; sending it in halves", channel=name, alerts=len(parts),
             digest=key, error=delivery.error)
        lease = timedelta(seconds=settings.claim_lease)
        middle = len(parts) // 2
        for half in (parts[:middle], parts[middle:]):
            won, renewed = await _db(_renew, factory, [alert_id for alert_id, _ in half], clock, lease_until, lease)
            kept = [part for part in half if part[0] in won]
            if kept:
                await _send_digest(factory, name, channel, settings, clock, kept, renewed, report, observe)
        return
    status = await _store(
        _record,
        factory,
        sent_ids,
        delivery,
        settings,
        clock,
        lease_until,
        alert_ids=sent_ids,
        channel=name,
        patience_s=_patience(settings),
    )
    report.count(status, len(sent_ids))
    _log(
        logging.INFO if status == DELIVERED else logging.WARNING,
        {DELIVERED: "digest delivered", DEAD: "digest dead"}.get(
            status, "digest retry"
        ),
        channel=name,
        alerts=len(sent_ids),
        digest=key,
        duration_ms=round((time.monotonic() - started) * 1000),
        error=delivery.error,
    )
    if observe is not None:
        for alert_id in sent_ids:
            observe(name, alert_id, status)


# --- the job ---------------------------------------------------------------------------------


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
    clock = Clock(now)
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
    return sum(
        (outcome for outcome in outcomes if isinstance(outcome, DispatchReport)),
        DispatchReport(),
    )


def retry_alerts(session: Session, ids: list[int] | None, all_failed: bool) -> int:
    """Requeue dead alerts (the given ids, or all of them) with a fresh attempt budget; commits."""
    query = update(Alert).where(Alert.status == DEAD)
    if not all_failed:
        if not ids:
            return 0
        query = query.where(Alert.id.in_(ids))
    result = session.execute(
        query.values(
            status=PENDING, attempts=0, next_attempt_at=datetime.now(UTC)
        ).execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount
