"""Refresh: the database is the schedule; one tick claims due feeds and refreshes each.

refresh_feed reads top to bottom: load the feed, fetch, parse, store unseen articles, record
the outcome and the next poll time on the feed row.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from monitor.config import FeedConfig, PollSettings
from monitor.ingest.fetch import FetchKind, FetchLimits, FetchOutcome, fetch_feed
from monitor.ingest.parse import Entry, FeedParseError, ParsedFeed, parse_feed
from monitor.ingest.text import extract_article_text
from monitor.store.models import Article, Feed

logger = logging.getLogger(__name__)

# A claimed feed is hidden from other pollers this long; refresh_feed then sets the real time.
# Longer than any fetch (bounded by poll.timeout), so a crash mid-refresh only delays the feed.
CLAIM_LEASE_S = 300.0
# An explicit interval is honoured as given, down to this.
MIN_INTERVAL_S = 1.0
# Retry-After is obeyed, but a bogus far-future date must not silence a feed for months.
MAX_RETRY_AFTER_S = 86400.0
# Article pages fetched per refresh of a full_text feed; later entries keep the feed's text.
MAX_PAGES_PER_REFRESH = 30
# Rows per INSERT: well under SQLite's bound-parameter limit.
INSERT_BATCH = 200

Outcome = FetchKind | Literal["parse_error"]
PARSE_ERROR: Literal["parse_error"] = "parse_error"


@dataclass(frozen=True)
class RefreshResult:
    feed_id: int
    feed_name: str
    outcome: Outcome
    new_articles: int
    entries: int
    error: str | None
    http_status: int | None = None
    next_poll_at: datetime | None = None
    duration_ms: float = 0.0


@dataclass(frozen=True)
class _Target:
    """What a refresh needs from the feed row, read before the (slow) fetch."""

    id: int
    name: str
    url: str
    etag: str | None
    last_modified: str | None
    full_text: bool


# --------------------------------------------------------------------------- config -> rows


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
            sooner = feed.last_polled_at + timedelta(seconds=max(MIN_INTERVAL_S, config.interval))
            feed.next_poll_at = min(feed.next_poll_at, sooner)


# --------------------------------------------------------------------------- claiming


def claim_due_feeds(session: Session, now: datetime, limit: int) -> list[int]:
    """Ids of active feeds due by now, oldest first, leased to this poller.

    The caller commits, promptly: the lease is what keeps a second poller off these feeds.
    """
    due = list(
        session.scalars(
            select(Feed.id)
            .where(Feed.active.is_(True), Feed.next_poll_at <= now)
            .order_by(Feed.next_poll_at, Feed.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite relies on the guard below
        )
    )
    if not due:
        return []
    # Only rows still due are taken, so a second poller that got there first keeps its claim.
    claimed = set(
        session.scalars(
            update(Feed)
            .where(Feed.id.in_(due), Feed.next_poll_at <= now)
            .values(next_poll_at=now + timedelta(seconds=CLAIM_LEASE_S))
            .returning(Feed.id)
            .execution_options(synchronize_session=False)
        )
    )
    return [feed_id for feed_id in due if feed_id in claimed]


# --------------------------------------------------------------------------- one feed


async def refresh_feed(
    session_factory: sessionmaker[Session],
    client: httpx.AsyncClient,
    feed_id: int,
    poll: PollSettings,
    now: datetime | None = None,
) -> RefreshResult:
    now = now or datetime.now(UTC)
    started = time.perf_counter()
    limits = FetchLimits.from_settings(poll)
    target = _load_target(session_factory, feed_id)
    outcome = await fetch_feed(
        client, target.url, etag=target.etag, last_modified=target.last_modified, limits=limits
    )
    parsed, parse_error = await _parse(outcome)
    if parsed is not None and target.full_text:
        parsed = await _with_page_text(session_factory, client, target.id, parsed, limits, poll)
    result = _record(session_factory, target, outcome, parsed, parse_error, poll, now, started)
    _log(result, outcome)
    return result


def _load_target(session_factory: sessionmaker[Session], feed_id: int) -> _Target:
    with session_factory() as session:
        feed = session.get(Feed, feed_id)
        if feed is None:
            raise LookupError(f"refresh: no feed with id {feed_id}")
        return _Target(feed.id, feed.name, feed.url, feed.etag, feed.last_modified, feed.full_text)


async def _parse(outcome: FetchOutcome) -> tuple[ParsedFeed | None, str | None]:
    if outcome.kind is not FetchKind.NEW_CONTENT:
        return None, None
    try:
        # feedparser is CPU-bound; a thread keeps the other fetches moving meanwhile.
        parsed = await asyncio.to_thread(
            parse_feed, outcome.content, url=outcome.url, headers=outcome.headers
        )
    except FeedParseError as exc:
        return None, str(exc)
    return parsed, None


async def _with_page_text(
    session_factory: sessionmaker[Session],
    client: httpx.AsyncClient,
    feed_id: int,
    parsed: ParsedFeed,
    limits: FetchLimits,
    poll: PollSettings,
) -> ParsedFeed:
    """For full_text feeds: each unseen entry's text becomes its page's main text, when found.

    Only entries not stored yet cost a page fetch, at most MAX_PAGES_PER_REFRESH of them (a
    first poll of a long feed would otherwise hold the tick); the rest keep the feed's text.
    """
    unseen = _unseen(session_factory, feed_id, parsed.entries)
    wanted = [entry for entry in unseen if entry.url][:MAX_PAGES_PER_REFRESH]
    if not wanted:
        return parsed
    # Article pages usually share one host, so the per-host limit applies within a feed too.
    gate = asyncio.Semaphore(poll.per_host_concurrency)

    async def page_text(entry: Entry) -> tuple[str, str | None]:
        async with gate:
            return entry.key, await _page_text(client, entry.url or "", limits)

    texts = dict(await asyncio.gather(*(page_text(entry) for entry in wanted)))
    entries = [
        replace(entry, text=text) if (text := texts.get(entry.key)) else entry for entry in parsed.entries
    ]
    return replace(parsed, entries=entries)


def _unseen(session_factory: sessionmaker[Session], feed_id: int, entries: Sequence[Entry]) -> list[Entry]:
    keys = [entry.key for entry in entries]
    with session_factory() as session:
        stored = set(
            session.scalars(
                select(Article.entry_key).where(Article.feed_id == feed_id, Article.entry_key.in_(keys))
            )
        )
    return [entry for entry in entries if entry.key not in stored]


async def _page_text(client: httpx.AsyncClient, url: str, limits: FetchLimits) -> str | None:
    page = await fetch_feed(client, url, etag=None, last_modified=None, limits=limits)
    if page.kind is not FetchKind.NEW_CONTENT:
        logger.info("article page not fetched: %s", page.error, extra={"url": url})
        return None
    try:
        return await asyncio.to_thread(extract_article_text, page.content, page.url)
    except RuntimeError as exc:
        # trafilatura missing is a deployment fault: say so loudly, but keep the feed's own text.
        logger.error("%s", exc, extra={"url": url})
        return None


def _record(
    session_factory: sessionmaker[Session],
    target: _Target,
    outcome: FetchOutcome,
    parsed: ParsedFeed | None,
    parse_error: str | None,
    poll: PollSettings,
    now: datetime,
    started: float,
) -> RefreshResult:
    """Store the new articles and the feed's new state in one transaction."""
    kind: Outcome = PARSE_ERROR if parse_error else outcome.kind
    error = parse_error or outcome.error
    with session_factory() as session, session.begin():
        feed = session.get(Feed, target.id)
        if feed is None:
            raise LookupError(f"refresh: feed {target.id} disappeared during the refresh")
        new_articles = _store_entries(session, feed.id, parsed.entries, now) if parsed else 0
        _apply_outcome(feed, kind, outcome, parsed, error, poll, now)
        next_poll_at = feed.next_poll_at
    return RefreshResult(
        feed_id=target.id,
        feed_name=target.name,
        outcome=kind,
        new_articles=new_articles,
        entries=len(parsed.entries) if parsed else 0,
        error=error,
        http_status=outcome.status,
        next_poll_at=next_poll_at,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )


def _store_entries(session: Session, feed_id: int, entries: Sequence[Entry], now: datetime) -> int:
    """Insert entries not stored yet; a re-poll or a concurrent poller never duplicates one."""
    insert = _dialect_insert(session)
    rows = [_article_row(feed_id, entry, now) for entry in entries]
    inserted = 0
    for start in range(0, len(rows), INSERT_BATCH):
        statement = (
            insert(Article)
            .values(rows[start : start + INSERT_BATCH])
            .on_conflict_do_nothing(index_elements=["feed_id", "entry_key"])
            .returning(Article.id)
        )
        inserted += len(session.execute(statement).all())
    return inserted


def _dialect_insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        raise NotImplementedError(f"refresh: no insert-if-absent for the {dialect} dialect")
    return insert


def _article_row(feed_id: int, entry: Entry, now: datetime) -> dict[str, Any]:
    return {
        "feed_id": feed_id,
        "entry_key": entry.key,
        "url": entry.url,
        "title": entry.title,
        "text": entry.text,
        "published_at": entry.published,
        "fetched_at": now,
        "status": "new",
        "attempts": 0,
    }


def _apply_outcome(
    feed: Feed,
    kind: Outcome,
    outcome: FetchOutcome,
    parsed: ParsedFeed | None,
    error: str | None,
    poll: PollSettings,
    now: datetime,
) -> None:
    feed.last_polled_at = now
    feed.last_status = _status_label(kind)
    feed.last_http_status = outcome.status
    succeeded = kind in (FetchKind.NEW_CONTENT, FetchKind.NOT_MODIFIED)
    if succeeded:
        feed.consecutive_errors = 0
        feed.last_error = None
        feed.last_success_at = now
        # Validators only from a body we could use, so a fixed feed is never hidden behind a 304.
        feed.etag = outcome.etag
        feed.last_modified = outcome.last_modified
        if outcome.moved_to:
            feed.url = outcome.moved_to
        if parsed is not None:
            feed.entries_seen = len(parsed.entries)
    else:
        feed.consecutive_errors = (feed.consecutive_errors or 0) + 1
        feed.last_error = error
    delay = next_poll_delay_s(
        kind,
        interval_s=feed.interval_s,
        errors=feed.consecutive_errors,
        poll=poll,
        retry_after_s=outcome.retry_after_s,
        max_age_s=outcome.max_age_s,
    )
    feed.next_poll_at = now + timedelta(seconds=delay)


def _status_label(kind: Outcome) -> str:
    # What `monitor feeds` shows: "ok" for a body we used, otherwise the outcome's own name.
    return "ok" if kind is FetchKind.NEW_CONTENT else str(kind)


def next_poll_delay_s(
    kind: Outcome,
    *,
    interval_s: float | None,
    errors: int,
    poll: PollSettings,
    retry_after_s: float | None = None,
    max_age_s: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds until the next poll of a feed whose last refresh ended as `kind`."""
    if kind in (FetchKind.NEW_CONTENT, FetchKind.NOT_MODIFIED):
        if interval_s:
            return max(MIN_INTERVAL_S, interval_s)  # the operator's explicit choice wins
        if max_age_s:
            # The server may ask for fewer polls, up to the longest wait we ever use.
            return max(poll.interval, min(max_age_s, poll.backoff_max))
        return poll.interval
    if kind is FetchKind.GONE:
        return poll.backoff_max
    delay = backoff_s(errors, poll, rng)
    if kind is FetchKind.RETRY_LATER and retry_after_s is not None:
        delay = max(delay, min(retry_after_s, max(MAX_RETRY_AFTER_S, poll.backoff_max)))
    return delay


def backoff_s(errors: int, poll: PollSettings, rng: random.Random | None = None) -> float:
    """base * 2**(errors-1), jittered by +-10% so failing feeds do not retry in lockstep."""
    exponent = min(max(errors, 1) - 1, 32)
    delay = min(poll.backoff_base * 2**exponent, poll.backoff_max)
    jitter = (rng or random).uniform(0.9, 1.1)
    return min(delay * jitter, poll.backoff_max)


def _log(result: RefreshResult, outcome: FetchOutcome) -> None:
    extra = {
        "feed_id": result.feed_id,
        "feed_name": result.feed_name,
        "outcome": str(result.outcome),
        "http_status": result.http_status,
        "new_articles": result.new_articles,
        "entries": result.entries,
        "duration_ms": result.duration_ms,
        "fetch_ms": outcome.duration_ms,
    }
    if result.error:
        logger.warning("feed refresh failed: %s", result.error, extra={**extra, "error": result.error})
    else:
        logger.info("feed refreshed", extra=extra)


# --------------------------------------------------------------------------- the tick


async def poll_due_feeds(
    session_factory: sessionmaker[Session],
    client: httpx.AsyncClient,
    poll: PollSettings,
    now: datetime | None = None,
    only_feed: str | None = None,
    all_feeds: bool = False,
) -> list[RefreshResult]:
    """Refresh the due feeds (or all active ones, or the one named) under concurrency limits."""
    targets = _targets(session_factory, now or datetime.now(UTC), poll, only_feed, all_feeds)
    if not targets:
        return []
    overall = asyncio.Semaphore(poll.concurrency)
    per_host: defaultdict[str, asyncio.Semaphore] = defaultdict(
        lambda: asyncio.Semaphore(poll.per_host_concurrency)
    )

    async def refresh_one(feed_id: int, name: str, url: str) -> RefreshResult:
        # Host slot first: waiting on a busy host must not hold a global slot idle.
        async with per_host[_host(url)], overall:
            return await _refresh_guarded(session_factory, client, feed_id, name, poll, now)

    return list(await asyncio.gather(*(refresh_one(*target) for target in targets)))


def _targets(
    session_factory: sessionmaker[Session],
    now: datetime,
    poll: PollSettings,
    only_feed: str | None,
    all_feeds: bool,
) -> list[tuple[int, str, str]]:
    with session_factory.begin() as session:
        query = select(Feed.id, Feed.name, Feed.url).where(Feed.active.is_(True))
        if only_feed is not None:
            rows = session.execute(query.where(Feed.name == only_feed)).all()
            if not rows:
                raise LookupError(f"poll: no active feed named {only_feed!r}")
        elif all_feeds:
            rows = session.execute(query.order_by(Feed.id)).all()
        else:
            # A bounded batch per tick keeps ticks short; the rest are claimed on the next one.
            ids = claim_due_feeds(session, now, limit=poll.concurrency * 4)
            rows = _in_order(ids, session.execute(query.where(Feed.id.in_(ids))).all())
        return [(row.id, row.name, row.url) for row in rows]


def _in_order(ids: list[int], rows: Iterable[Any]) -> list[Any]:
    by_id = {row.id: row for row in rows}
    return [by_id[feed_id] for feed_id in ids if feed_id in by_id]


async def _refresh_guarded(
    session_factory: sessionmaker[Session],
    client: httpx.AsyncClient,
    feed_id: int,
    name: str,
    poll: PollSettings,
    now: datetime | None,
) -> RefreshResult:
    """The tick boundary: whatever goes wrong with one feed is recorded on it, not raised."""
    try:
        return await refresh_feed(session_factory, client, feed_id, poll, now)
    except Exception as exc:  # noqa: BLE001 - one feed must never break the others
        error = f"refresh: {type(exc).__name__}: {_first_line(exc)}"
        logger.exception("feed refresh crashed", extra={"feed_id": feed_id, "error": error})
        next_poll_at = _record_crash(session_factory, feed_id, error, poll, now or datetime.now(UTC))
        return RefreshResult(
            feed_id=feed_id,
            feed_name=name,
            outcome=FetchKind.ERROR,
            new_articles=0,
            entries=0,
            error=error,
            next_poll_at=next_poll_at,
        )


def _record_crash(
    session_factory: sessionmaker[Session],
    feed_id: int,
    error: str,
    poll: PollSettings,
    now: datetime,
) -> datetime | None:
    try:
        with session_factory() as session, session.begin():
            feed = session.get(Feed, feed_id)
            if feed is None:
                return None
            feed.consecutive_errors = (feed.consecutive_errors or 0) + 1
            feed.last_error = error
            feed.last_status = str(FetchKind.ERROR)
            feed.last_polled_at = now
            feed.next_poll_at = now + timedelta(seconds=backoff_s(feed.consecutive_errors, poll))
            return feed.next_poll_at
    except Exception:  # noqa: BLE001 - the database itself may be what failed
        logger.exception("cannot record the failed refresh", extra={"feed_id": feed_id})
        return None


def _first_line(exc: Exception) -> str:
    # Database errors append the whole statement and its parameters; the row needs the cause.
    lines = str(exc).strip().splitlines()
    return lines[0][:500] if lines else "(no message)"


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
