"""Rows the ingest tests start from, written and read the way the service does."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from monitor.store.models import Feed


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
