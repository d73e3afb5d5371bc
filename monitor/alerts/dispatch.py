"""The dispatcher: send due outbox rows on every channel, record each outcome, back off on failure.

dispatch_alerts reads top to bottom: for each channel at once, take its due rows oldest first;
for each, claim it, decide what the channel is told, wait for the channel's turn, send, record.

Each row is claimed (a short lease on next_attempt_at) before it is sent and its outcome is
committed right after, so a crash re-sends at most the one alert that was in flight, and two
dispatchers never send the same row at once. If the database goes away while a message is on the
wire, the outcome is kept in memory and stored as soon as the database answers again (within the
claim's lease), so the alert is not sent twice. Database steps run in worker threads: a database
that is slow to answer holds up the rows that need it, never the event loop.

Per channel (its settings under ``alerts.<channel>``): filters decide what the channel is told
(rows it shows nothing of end "filtered"), ``rate_limit`` spaces its messages, a 429 pauses it, and
a channel with a digest period gathers due rows (at most outbox.DIGEST_MAX_ITEMS) into one message
per period; a digest refused for good is split in halves down to the alert the server will not take.

A channel's ``timeout`` is the deadline of a whole send (alerts/deadline.py): a receiver that
answers a byte at a time is cut off and the row retried. Claims and outcomes are measured by the
database's clock, and an outcome is recorded only while the row still carries this claim.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from monitor import outbox
from monitor.alerts.channel import Channel, retry
from monitor.alerts.channels import channel_filter, filter_content
from monitor.alerts.deadline import send_deadline_s, within_deadline
from monitor.backoff import backoff_s
from monitor.config import AlertSettings, ChannelFilter
from monitor.outbox import RETRY_AFTER_MAX_S, AlertStatus, AlsoReported, Claimed, Delivery, DeliveryStatus, Payload
from monitor.store.db import SessionFactory

log = logging.getLogger("monitor.alerts.dispatch")

# How long an outcome waits in memory for the database to come back, as a share of the claim's
# lease (alerts.claim_lease): past the lease another dispatcher may send the row again.
RECORD_PATIENCE = 0.75
# An "also reported" reply waits this long between looks for its parent alert to be delivered.
PARENT_WAIT_S = 5.0

T = TypeVar("T")
# Told of each attempt's outcome: (channel, alert id, new status). The service feeds its metrics.
Observer = Callable[[str, int, str], None]


@dataclass(frozen=True)
class Clock:
    """Now, for a dispatch round: FIXED when given (tests, replays), else the real time. The outbox's
    claim and record steps are given ``fixed``: None there is the database's clock, which every
    replica shares, so skewed wall clocks cannot disagree on when a lease ends."""

    fixed: datetime | None = None

    def __call__(self) -> datetime:
        return self.fixed or datetime.now(UTC)


@dataclass
class DispatchReport:
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    filtered: int = 0

    def __add__(self, other: DispatchReport) -> DispatchReport:
        return DispatchReport(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def count(self, status: str | None, rows: int = 1) -> None:
        if status == AlertStatus.DELIVERED:
            self.delivered += rows
        elif status == AlertStatus.DEAD:
            self.dead += rows
        elif status == AlertStatus.PENDING:
            self.retried += rows
        elif status == AlertStatus.FILTERED:
            self.filtered += rows


@dataclass
class _Plan:
    """What to do with a claimed row: send ITEM, or set the row aside with STATUS and REASON."""

    item: Payload | None = None
    status: AlertStatus | None = None
    reason: str = ""
    later: datetime | None = None


def _plan(channel: Channel, claimed: Claimed, filters: ChannelFilter, now: datetime, *, digest: bool) -> _Plan:
    """What CHANNEL is told of a claimed row. In a digest an "also reported" line needs no parent:
    it names the story it follows by title."""
    try:
        item = outbox.parse_payload(claimed.payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return _Plan(status=AlertStatus.DEAD, reason=f"dispatch: invalid payload: {where}: {first['msg']}")
    if isinstance(item, AlsoReported):
        if digest:
            return _Plan(item)
        return _follow_up_plan(channel, item, claimed.parent, now)
    shown, why = filter_content(item, filters, claimed.feed_tags)
    if shown is None:
        return _Plan(status=AlertStatus.FILTERED, reason=why or "filtered")
    return _Plan(shown)


def _follow_up_plan(
    channel: Channel, item: AlsoReported, parent: tuple[str, dict[str, Any]] | None, now: datetime
) -> _Plan:
    if not channel.follows_up:
        return _Plan(status=AlertStatus.FILTERED, reason=f"filtered: {channel.name} takes no also-reported lines")
    if parent is None:
        return _Plan(status=AlertStatus.FILTERED, reason="filtered: no alert on this channel to follow")
    parent_status = parent[0]
    if parent_status == AlertStatus.PENDING:
        later = now + timedelta(seconds=PARENT_WAIT_S)
        return _Plan(status=AlertStatus.PENDING, reason="waiting for the alert it follows", later=later)
    if parent_status == AlertStatus.FILTERED:
        return _Plan(status=AlertStatus.FILTERED, reason="filtered: the alert it follows was filtered")
    if parent_status != AlertStatus.DELIVERED:
        return _Plan(status=AlertStatus.DEAD, reason=f"dispatch: the alert it follows is {parent_status}; requeue both")
    return _Plan(item)


async def _guard(send: Awaitable[Delivery], channel: str = "", deadline_s: float | None = None) -> Delivery:
    try:
        return await within_deadline(channel, deadline_s, send)
    except Exception as exc:  # the dispatcher boundary: one broken send must not stop the rest
        return retry(f"dispatch: {type(exc).__name__}: {exc}")


def _log(level: int, event: str, **fields: Any) -> None:
    text = " ".join(f"{key}={value}" for key, value in fields.items() if value is not None)
    log.log(level, f"{event} {text}", extra=fields)


class _Pace:
    """A channel's turn: when it last sent, and until when its server asked it to wait."""

    def __init__(self) -> None:
        self.last_send = float("-inf")
        self.paused_until = float("-inf")

    async def wait_turn(self, rate_limit: float | None) -> None:
        # The slot is taken before sleeping, so two dispatch rounds sharing a channel keep the pace.
        now = time.monotonic()
        slot = max(now, self.last_send + (rate_limit or 0.0))
        self.last_send = slot
        if slot > now:
            await asyncio.sleep(slot - now)


class Dispatcher:
    """Sends what is due on each channel; remembers each channel's pace from one round to the next."""

    def __init__(
        self,
        sessions: SessionFactory,
        channels: Mapping[str, Channel],
        settings: AlertSettings,
        observe: Observer | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._channels = dict(channels)
        self._settings = settings
        self._observe = observe
        self._policy = outbox.RetryPolicy(settings.retry_base, settings.retry_max, settings.max_attempts)
        self._paces = {name: _Pace() for name in channels}
        # What a server's Retry-After pause is measured by; a test moves a clock of its own rather
        # than wait the seconds out.
        self._monotonic = monotonic

    def paused(self, channel: str) -> bool:
        """Whether CHANNEL is waiting out a server's Retry-After."""
        return self._monotonic() < self._paces.setdefault(channel, _Pace()).paused_until

    async def dispatch_alerts(self, now: datetime | None = None, limit: int = 100) -> DispatchReport:
        """Send what is due on every channel; ``limit`` applies per channel.

        Channels run concurrently, so a hanging Slack never delays email. Rows for a channel that
        is not configured stay pending until it is.
        """
        clock = Clock(now)
        outcomes = await asyncio.gather(
            *(self._drain(name, channel, clock, limit) for name, channel in self._channels.items()),
            # A database error in one channel's loop must not leave the others running detached.
            return_exceptions=True,
        )
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if failures:
            raise failures[0]
        return sum((outcome for outcome in outcomes if isinstance(outcome, DispatchReport)), DispatchReport())

    async def _drain(self, name: str, channel: Channel, clock: Clock, limit: int) -> DispatchReport:
        """One channel's due alerts, oldest first, one at a time (messages keep their order)."""
        if channel.digest_period_s:
            return await self._drain_digest(name, channel, clock, channel.digest_period_s)
        report = DispatchReport()
        if self.paused(name):
            return report
        pace = self._paces[name]
        for alert_id in await asyncio.to_thread(outbox.due_alert_ids, self._sessions, name, clock.fixed, limit):
            status, delivery = await self._deliver_one(name, channel, alert_id, clock, pace)
            report.count(status)
            if delivery is not None and delivery.retry_after_s is not None and delivery.status == DeliveryStatus.RETRY:
                # The server asked the channel to wait: later alerts wait too, and keep their order.
                pace.paused_until = self._monotonic() + min(delivery.retry_after_s, RETRY_AFTER_MAX_S)
                break
        return report

    async def _deliver_one(
        self, name: str, channel: Channel, alert_id: int, clock: Clock, pace: _Pace
    ) -> tuple[str | None, Delivery | None]:
        filters = channel_filter(self._settings, name)
        claimed = await asyncio.to_thread(
            outbox.claim_alert,
            self._sessions,
            alert_id,
            clock.fixed,
            self._settings.claim_lease,
            bool(filters.feed_tags),
        )
        if claimed is None:
            return None, None
        plan = _plan(channel, claimed, filters, clock(), digest=False)
        if plan.item is None:
            assert plan.status is not None
            status = await self._store(outbox.set_aside, [alert_id], name, plan.status, plan.reason, plan.later)
            _log(logging.INFO, f"alert {status}", alert_id=alert_id, channel=name, reason=plan.reason)
            return (None if status == AlertStatus.PENDING else status), None
        await pace.wait_turn(filters.rate_limit)
        started = time.monotonic()
        deadline_s = send_deadline_s(self._settings, name)
        if isinstance(plan.item, AlsoReported):
            receipt = dict((claimed.parent or ("", {}))[1].get("receipt") or {})
            delivery = await _guard(channel.send_also_reported(alert_id, plan.item, receipt), name, deadline_s)
        else:
            delivery = await _guard(channel.send(alert_id, plan.item), name, deadline_s)
        duration_ms = round((time.monotonic() - started) * 1000)
        status = await self._store(
            outbox.record_attempt, [alert_id], name, delivery, self._policy, clock.fixed, claimed.lease_until
        )
        event = {AlertStatus.DELIVERED: "alert delivered", AlertStatus.DEAD: "alert dead"}.get(status, "alert retry")
        level = logging.INFO if status == AlertStatus.DELIVERED else logging.WARNING
        _log(
            level,
            event,
            alert_id=alert_id,
            channel=name,
            attempt=claimed.attempts + 1,
            duration_ms=duration_ms,
            error=delivery.error,
        )
        if self._observe is not None:
            self._observe(name, alert_id, status)
        return status, delivery

    async def _drain_digest(self, name: str, channel: Channel, clock: Clock, period_s: float) -> DispatchReport:
        report = DispatchReport()
        filters = channel_filter(self._settings, name)
        lease_s, want_tags = self._settings.claim_lease, bool(filters.feed_tags)
        claimed = await asyncio.to_thread(
            outbox.claim_digest, self._sessions, name, clock.fixed, period_s, lease_s, want_tags
        )
        parts: list[tuple[int, Payload]] = []
        for row in claimed:
            plan = _plan(channel, row, filters, clock(), digest=True)
            if plan.item is None:
                assert plan.status is not None
                report.count(await self._store(outbox.set_aside, [row.alert_id], name, plan.status, plan.reason))
                continue
            parts.append((row.alert_id, plan.item))
        if parts and claimed[0].lease_until is not None:
            await self._send_digest(name, channel, clock, parts, claimed[0].lease_until, report)
        return report

    async def _send_digest(
        self,
        name: str,
        channel: Channel,
        clock: Clock,
        parts: list[tuple[int, Payload]],
        lease_until: datetime,
        report: DispatchReport,
    ) -> None:
        """Send PARTS as one digest and record it. A digest refused for good (a 552 for its size, a
        554 for one article's words) is split in halves, each sent on a fresh claim, down to single
        alerts: only the alert the server will never take ends dead, and a retry never rebuilds the
        same refused message."""
        sent_ids = [alert_id for alert_id, _ in parts]
        # The same rows make the same Message-ID, so a digest re-sent after a crash is a duplicate.
        key = f"{sent_ids[0]}-{sent_ids[-1]}-{len(sent_ids)}"
        started = time.monotonic()
        deadline_s = send_deadline_s(self._settings, name)
        delivery = await _guard(channel.send_digest(key, [item for _, item in parts]), name, deadline_s)
        if delivery.status == DeliveryStatus.PERMANENT and len(parts) > 1:
            _log(
                logging.WARNING,
                "digest refused; sending it in halves",
                channel=name,
                alerts=len(parts),
                digest=key,
                error=delivery.error,
            )
            middle = len(parts) // 2
            for half in (parts[:middle], parts[middle:]):
                ids = [alert_id for alert_id, _ in half]
                won, renewed = await asyncio.to_thread(
                    outbox.renew_claim, self._sessions, ids, clock.fixed, self._settings.claim_lease, lease_until
                )
                kept = [part for part in half if part[0] in won]
                if kept:
                    await self._send_digest(name, channel, clock, kept, renewed, report)
            return
        status = await self._store(
            outbox.record_attempt, sent_ids, name, delivery, self._policy, clock.fixed, lease_until
        )
        report.count(status, len(sent_ids))
        _log(
            logging.INFO if status == AlertStatus.DELIVERED else logging.WARNING,
            {AlertStatus.DELIVERED: "digest delivered", AlertStatus.DEAD: "digest dead"}.get(status, "digest retry"),
            channel=name,
            alerts=len(sent_ids),
            digest=key,
            duration_ms=round((time.monotonic() - started) * 1000),
            error=delivery.error,
        )
        if self._observe is not None:
            for alert_id in sent_ids:
                self._observe(name, alert_id, status)

    async def _store(
        self, step: Callable[..., AlertStatus], alert_ids: Sequence[int], channel: str, *args: Any
    ) -> AlertStatus:
        """Run a recording step; while the database is unreachable, keep trying within the lease."""
        deadline = time.monotonic() + self._settings.claim_lease * RECORD_PATIENCE
        attempt = 1
        while True:
            try:
                return await asyncio.to_thread(step, self._sessions, list(alert_ids), *args)
            except DBAPIError as exc:
                delay = backoff_s(attempt, base_s=0.1, max_s=5.0)
                if time.monotonic() + delay > deadline:
                    raise
                _log(
                    logging.WARNING,
                    "alert outcome not stored, database unavailable; retrying",
                    alert_id=alert_ids[0] if len(alert_ids) == 1 else None,
                    alert_ids=list(alert_ids) if len(alert_ids) > 1 else None,
                    channel=channel,
                    error=f"store: {type(exc.orig or exc).__name__}: {str(exc.orig or exc).strip()[:200]}",
                )
                await asyncio.sleep(delay)
                attempt += 1


async def dispatch_alerts(
    sessions: SessionFactory,
    channels: Mapping[str, Channel],
    settings: AlertSettings,
    now: datetime | None = None,
    limit: int = 100,
    observe: Observer | None = None,
) -> DispatchReport:
    """One round by a dispatcher of its own, which forgets each channel's pace afterwards."""
    return await Dispatcher(sessions, channels, settings, observe).dispatch_alerts(now, limit)
