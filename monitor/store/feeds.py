"""The feeds repository: feed rows kept in step with the configuration, due feeds claimed, and
what a refresh needs of a feed read before its (slow) fetch."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.config import MIN_POLL_INTERVAL_S, FeedConfig
from monitor.store.db import SessionFactory
from monitor.store.lease import take_leases
from monitor.store.models import Feed, Feedback

log = logging.getLogger(__name__)

# A claimed feed is hidden from other pollers this long; its refresh then sets the real time.
# Longer than any fetch (bounded by poll.timeout), so a crash mid-refresh only delays the feed.
CLAIM_LEASE_S = 300.0


@dataclass(frozen=True)
class FeedTarget:
    """What a refresh needs from the feed row, read before the (slow) fetch."""

    id: int
    name: str
    url: str
    etag: str | None
    last_modified: str | None
    full_text: bool
    # Only the configured URL's origin may be private (fetch_feed): not where a move led.
    config_url: str | None


_TARGET_COLUMNS = select(Feed.id, Feed.name, Feed.url, Feed.etag, Feed.last_modified, Feed.full_text, Feed.config_url)


def sync_feeds(session: Session, feeds: Sequence[FeedConfig], now: datetime) -> None:
    """Make the feed rows match the configuration (by name); the caller commits."""
    existing = {feed.name: feed for feed in session.scalars(select(Feed))}
    for config in feeds:
        feed = existing.pop(config.name, None)
        if feed is None:
            session.add(_new_feed(config, now))
        else:
            _apply_config(feed, config, now)
    # Removed from the config: kept (its articles reference it) but never polled.
    for feed in existing.values():
        feed.active = False
    session.flush()


def _new_feed(config: FeedConfig, now: datetime) -> Feed:
    return Feed(
        name=config.name,
        url=config.url,
        config_url=config.url,
        tags=list(config.tags),
        interval_s=config.interval,
        full_text=config.full_text,
        active=True,
        consecutive_errors=0,
        entries_seen=0,
        next_poll_at=now,
        created_at=now,
    )


def _apply_config(feed: Feed, config: FeedConfig, now: datetime) -> None:
    reactivated = not feed.active
    feed.active = True
    feed.tags = list(config.tags)
    feed.full_text = config.full_text
    if (feed.config_url or feed.url) != config.url:
        # A new address: the old validators and error history describe another resource.
        feed.url = config.url
        feed.config_url = config.url
        feed.etag = None
        feed.last_modified = None
        feed.consecutive_errors = 0
        feed.last_error = None
        feed.next_poll_at = now
    elif reactivated:
        feed.next_poll_at = min(feed.next_poll_at, now)
    if feed.interval_s != config.interval:
        feed.interval_s = config.interval
        # A shorter interval takes effect now rather than after the old, longer wait.
        if config.interval and feed.consecutive_errors == 0 and feed.last_polled_at:
            sooner = feed.last_polled_at + timedelta(seconds=max(MIN_POLL_INTERVAL_S, config.interval))
            feed.next_poll_at = min(feed.next_poll_at, sooner)


def claim_due_feeds(session: Session, now: datetime, limit: int, lease_s: float = CLAIM_LEASE_S) -> list[int]:
    """Ids of active, unpaused feeds due by now, oldest first, leased to this poller; the caller commits."""
    return take_leases(
        session,
        Feed.id,
        where=Feed.active.is_(True) & Feed.paused_at.is_(None) & (Feed.next_poll_at <= now),
        values={"next_poll_at": now + timedelta(seconds=lease_s)},
        order_by=(Feed.next_poll_at, Feed.id),
        limit=limit,
    )


def claim_due_targets(sessions: SessionFactory, now: datetime, limit: int, lease_s: float) -> list[FeedTarget]:
    """claim_due_feeds in a transaction of its own, and what each refresh needs of its feed."""
    with sessions.begin() as session:
        ids = claim_due_feeds(session, now, limit=limit, lease_s=lease_s)
        if not ids:
            return []
        rows = session.execute(_TARGET_COLUMNS.where(Feed.id.in_(ids))).all()
    by_id = {row.id: FeedTarget(*row) for row in rows}
    return [by_id[feed_id] for feed_id in ids if feed_id in by_id]


def named_targets(sessions: SessionFactory, only_feed: str | None) -> list[FeedTarget]:
    """Every active feed, or the one named, whether due or not (`monitor poll --once`); a feed an
    analyst paused is left alone, and said to be when it is the one named."""
    with sessions() as session:
        query = _TARGET_COLUMNS.where(Feed.active.is_(True))
        if only_feed is not None:
            rows = session.execute(query.where(Feed.name == only_feed)).all()
            if not rows:
                raise LookupError(f"poll: no active feed named {only_feed!r}")
            paused_by = session.scalar(
                select(Feed.paused_by).where(Feed.name == only_feed, Feed.paused_at.is_not(None))
            )
            if paused_by is not None:
                log.warning(
                    "poll: the feed is paused on the desk; not polled", extra={"feed": only_feed, "by": paused_by}
                )
                return []
        else:
            rows = session.execute(query.where(Feed.paused_at.is_(None)).order_by(Feed.id)).all()
        return [FeedTarget(*row) for row in rows]


def load_feeds(session: Session, ids: Sequence[int]) -> dict[int, Feed]:
    """The feed rows a refresh records on, in one query; LookupError when one is gone."""
    wanted = set(ids)
    found = {feed.id: feed for feed in session.scalars(select(Feed).where(Feed.id.in_(wanted)))}
    if len(found) < len(wanted):
        raise LookupError("refresh: a feed disappeared during the refresh")
    return found


def active_feeds(session: Session) -> list[Feed]:
    """The feeds that are polled, by name (what `monitor feeds` shows)."""
    return list(session.scalars(select(Feed).where(Feed.active.is_(True)).order_by(Feed.name)))


def feed_row(session: Session, feed_id: int) -> Feed:
    """One feed row, from the session's identity map when load_feeds put it there."""
    feed = session.get(Feed, feed_id)
    if feed is None:
        raise LookupError(f"refresh: feed {feed_id} disappeared during the refresh")
    return feed


def all_feeds(session: Session) -> list[Feed]:
    """Every feed row by name, those removed from the configuration too (the desk's feeds page)."""
    return list(session.scalars(select(Feed).order_by(Feed.active.desc(), Feed.name, Feed.id)))


def pause_feed(session: Session, feed_id: int, actor: str, now: datetime) -> Feed:
    """Stop polling FEED_ID until resumed, recording who did it in the audit trail; the caller
    commits. Pausing a paused feed changes nothing. LookupError when there is no such feed."""
    feed = _feed_for_update(session, feed_id)
    if feed.paused_at is None:
        feed.paused_at, feed.paused_by = now, actor
        _audit(session, "pause", actor, feed, now)
    return feed


def resume_feed(session: Session, feed_id: int, actor: str, now: datetime) -> Feed:
    """Poll FEED_ID again, at once if it fell due while paused; audited; the caller commits."""
    feed = _feed_for_update(session, feed_id)
    if feed.paused_at is not None:
        _audit(session, "resume", actor, feed, now, paused_by=feed.paused_by)
        feed.paused_at, feed.paused_by = None, None
        feed.next_poll_at = min(feed.next_poll_at, now)
    return feed


def _feed_for_update(session: Session, feed_id: int) -> Feed:
    # FOR UPDATE on PostgreSQL: two analysts pausing at once write one audit row, not two.
    feed = session.scalar(select(Feed).where(Feed.id == feed_id).with_for_update())
    if feed is None:
        raise LookupError(f"no feed with id {feed_id}")
    return feed


def _audit(session: Session, action: str, actor: str, feed: Feed, now: datetime, **extra: object) -> None:
    detail = {"feed_id": feed.id, "feed": feed.name, **extra}
    session.add(Feedback(actor=actor, action=action, detail=detail, created_at=now))
    session.flush()
