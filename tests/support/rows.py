"""Rows the ingest tests start from, written and read the way the service does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.config import PollSettings
from monitor.ingest.refresh import RefreshResult, refresh_feeds
from monitor.outbox import outbox_rows
from monitor.store.models import Alert, Feed
from support.receivers import alert_content


def add_feed(sessions: sessionmaker[Session], name: str, url: str, *, next_poll_at: datetime, **fields: Any) -> int:
    with sessions.begin() as session:
        feed = Feed(name=name, url=url, next_poll_at=next_poll_at, **fields)
        session.add(feed)
        session.flush()
        return feed.id


def load_feed(sessions: sessionmaker[Session], feed_id: int) -> Feed:
    with sessions() as session:
        feed = session.get(Feed, feed_id)
        assert feed is not None
        return feed


def enqueue(
    sessions: sessionmaker[Session], channels: list[str], at: datetime, article_id: int | None = None, **changes: Any
) -> list[int]:
    """Outbox rows for one alert (ALERT_CONTENT with CHANGES), due and created AT; their ids."""
    rows = outbox_rows(alert_content(**changes), channels, article_id=article_id)
    with sessions() as session:
        for row in rows:
            row.created_at = row.next_attempt_at = at
        session.add_all(rows)
        session.commit()
        return [row.id for row in rows]


def alerts_by_id(sessions: sessionmaker[Session]) -> dict[int, Alert]:
    with sessions() as session:
        return {alert.id: alert for alert in session.scalars(select(Alert))}


async def refresh_feed(
    sessions: sessionmaker[Session],
    client: httpx.AsyncClient,
    feed_id: int,
    poll: PollSettings,
    now: datetime,
    alert_channels: Sequence[str] = (),
) -> RefreshResult:
    """One feed refreshed now, due or not, through the service's own path (refresh_feeds)."""
    name = load_feed(sessions, feed_id).name
    [result] = await refresh_feeds(sessions, client, poll, now, only_feed=name, alert_channels=alert_channels)
    return result
