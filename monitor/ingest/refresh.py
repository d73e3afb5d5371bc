"""Refresh: the database is the schedule; one tick claims due feeds and refreshes each.

refresh_feeds reads top to bottom: claim the due feeds, fetch each, parse it, store its unseen
articles, record the outcome on the feed row and schedule its next poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import Session

from monitor.config import PollSettings
from monitor.ingest.fetch import FetchKind, FetchLimits, FetchOutcome, fetch_feed
from monitor.ingest.health import apply_crash, apply_outcome
from monitor.ingest.pages import with_page_text
from monitor.ingest.parse import FeedParseError, ParsedFeed
from monitor.ingest.parse_pool import Parser
from monitor.ingest.schedule import PARSE_ERROR, Outcome
from monitor.store.articles import Stored, store_entries, store_many
from monitor.store.db import SessionFactory
from monitor.store.feeds import CLAIM_LEASE_S, FeedTarget, claim_due_targets, feed_row, load_feeds, named_targets

logger = logging.getLogger(__name__)

# Feeds whose results one transaction writes during a poll cycle.
WRITE_GROUP = 200


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
    # Entries new to this feed that another feed had already brought: linked, not stored again.
    linked: int = 0
    # New articles whose text was cut at poll.max_entry_chars.
    truncated: int = 0
    # The document was not well-formed XML (feedparser's bozo flag) but entries were read from it.
    bozo: bool = False
    # "failing" or "recovered" when this refresh wrote an operator alert about the feed.
    alert: str | None = None


@dataclass(frozen=True)
class _Fetched:
    """What the network and the parser made of one feed, before anything is written."""

    target: FeedTarget
    outcome: FetchOutcome
    parsed: ParsedFeed | None
    parse_error: str | None
    started: float


async def refresh_feeds(
    session_factory: SessionFactory,
    client: httpx.AsyncClient,
    poll: PollSettings,
    now: datetime | None = None,
    only_feed: str | None = None,
    all_feeds: bool = False,
    alert_channels: Sequence[str] = (),
    lease_s: float = CLAIM_LEASE_S,
    parser: Parser | None = None,
) -> list[RefreshResult]:
    """Refresh the due feeds (or all active ones, or the one named) under concurrency limits.

    Due feeds are claimed a batch at a time and the claim is topped up as feeds finish, until
    no feed that was due when the call began is left: one call is one full poll cycle. Results
    are written in groups (one transaction for many feeds) by one writer, so a large cycle is not
    bound by per-feed commits; a group that fails is written again feed by feed, so one feed's
    database error never touches the others. `alert_channels` receive the operator alerts about
    failing and recovered feeds. `parser` is the service's (its workers live across cycles); without
    one, a cycle parses with workers of its own.
    """
    if parser is None:
        own = Parser.from_settings(poll)
        try:
            return await refresh_feeds(
                session_factory, client, poll, now, only_feed, all_feeds, alert_channels, lease_s, own
            )
        finally:
            own.shutdown()
    cycle_start = now or datetime.now(UTC)
    writer = _GroupWriter(session_factory, poll, now, alert_channels)
    overall = asyncio.Semaphore(poll.concurrency)
    per_host: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(poll.per_host_concurrency))

    async def refresh_one(target: FeedTarget) -> RefreshResult:
        try:
            # Host slot first: waiting on a busy host must not hold a global slot idle.
            async with per_host[_host(target.url)], overall:
                fetched = await _fetch_and_parse(session_factory, client, target, poll, parser)
        except Exception as exc:  # noqa: BLE001 - the tick boundary: one feed never breaks the others
            return await asyncio.to_thread(_crash_result, session_factory, target, exc, poll, now, alert_channels)
        # Written outside the slots: waiting for the writer must not hold up other fetches.
        return await writer.record(fetched)

    if only_feed is not None or all_feeds:
        targets = await asyncio.to_thread(named_targets, session_factory, only_feed)
        return list(await asyncio.gather(*(refresh_one(target) for target in targets)))

    batch = max(poll.concurrency * 4, 50)
    order: dict[int, int] = {}
    results: dict[int, RefreshResult] = {}
    pending: set[asyncio.Task[RefreshResult]] = set()
    claiming = True
    while True:
        if claiming and len(pending) < batch // 2:
            claimed = await asyncio.to_thread(claim_due_targets, session_factory, cycle_start, batch, lease_s)
            claiming = bool(claimed)
            for target in claimed:
                order.setdefault(target.id, len(order))
                pending.add(asyncio.create_task(refresh_one(target)))
        if not pending:
            break
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            result = task.result()
            results[result.feed_id] = result
    return sorted(results.values(), key=lambda result: order.get(result.feed_id, 0))


async def _fetch_and_parse(
    session_factory: SessionFactory, client: httpx.AsyncClient, target: FeedTarget, poll: PollSettings, parser: Parser
) -> _Fetched:
    started = time.perf_counter()
    limits = FetchLimits.from_settings(poll)
    outcome = await fetch_feed(
        client,
        target.url,
        etag=target.etag,
        last_modified=target.last_modified,
        limits=limits,
        allow_private=poll.allow_private_addresses,
        configured_url=target.config_url,
    )
    parsed, parse_error = await _parse(outcome, parser)
    if parsed is not None and target.full_text:
        parsed = await with_page_text(session_factory, client, target.id, parsed, limits, poll)
    return _Fetched(target, outcome, parsed, parse_error, started)


async def _parse(outcome: FetchOutcome, parser: Parser) -> tuple[ParsedFeed | None, str | None]:
    if outcome.kind is not FetchKind.NEW_CONTENT:
        return None, None
    try:
        # feedparser is CPU-bound; a thread or a worker process keeps the other fetches moving.
        parsed = await parser.parse(outcome.content, url=outcome.url, headers=outcome.headers)
    except FeedParseError as exc:
        return None, str(exc)
    return parsed, None


def _record(
    session: Session,
    fetched: _Fetched,
    poll: PollSettings,
    now: datetime,
    alert_channels: Sequence[str],
    stored: Stored | None = None,
) -> RefreshResult:
    """Store the new articles and the feed's new state (the caller owns the transaction).

    `stored` is given when the caller has already stored this feed's entries (with a group's).
    """
    target, outcome, parsed = fetched.target, fetched.outcome, fetched.parsed
    kind: Outcome = PARSE_ERROR if fetched.parse_error else outcome.kind
    error = fetched.parse_error or outcome.error
    feed = feed_row(session, target.id)
    if stored is None:
        stored = store_entries(session, feed.id, parsed.entries, now, poll.max_entry_chars) if parsed else Stored()
    new_entries = stored.new + stored.linked
    alert = apply_outcome(session, feed, kind, outcome, parsed, new_entries, error, poll, now, alert_channels)
    return RefreshResult(
        feed_id=target.id,
        feed_name=target.name,
        outcome=kind,
        new_articles=stored.new,
        entries=len(parsed.entries) if parsed else 0,
        error=error,
        http_status=outcome.status,
        next_poll_at=feed.next_poll_at,
        duration_ms=round((time.perf_counter() - fetched.started) * 1000, 1),
        linked=stored.linked,
        truncated=stored.truncated,
        bozo=bool(parsed and parsed.bozo),
        alert=alert,
    )


class _GroupWriter:
    """Group commit: fetched feeds queue up while one write runs, then go in together."""

    def __init__(
        self, session_factory: SessionFactory, poll: PollSettings, now: datetime | None, alert_channels: Sequence[str]
    ) -> None:
        self._session_factory = session_factory
        self._poll = poll
        self._now = now
        self._alert_channels = tuple(alert_channels)
        self._queue: list[tuple[_Fetched, asyncio.Future[RefreshResult]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def record(self, fetched: _Fetched) -> RefreshResult:
        future: asyncio.Future[RefreshResult] = asyncio.get_running_loop().create_future()
        self._queue.append((fetched, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            group, self._queue = self._queue[:WRITE_GROUP], self._queue[WRITE_GROUP:]
            try:
                results = await asyncio.to_thread(self._write, [fetched for fetched, _ in group])
            except BaseException as exc:
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(result)

    def _write(self, group: list[_Fetched]) -> list[RefreshResult]:
        now = self._now or datetime.now(UTC)
        try:
            with self._session_factory.begin() as session:
                # One query loads every feed row of the group into the session; the dict keeps
                # them there (the identity map holds rows weakly, and _record looks each one up).
                loaded = load_feeds(session, [fetched.target.id for fetched in group])
                # The reads here are of articles, which are inserted at once, never of the feed
                # rows _record changes: those are flushed together at the commit, not before
                # every query.
                with session.no_autoflush:
                    parsed = [fetched for fetched in group if fetched.parsed is not None]
                    stored = store_many(
                        session,
                        [(fetched.target.id, fetched.parsed.entries) for fetched in parsed if fetched.parsed],
                        now,
                        self._poll.max_entry_chars,
                    )
                    by_fetch = {id(fetched): result for fetched, result in zip(parsed, stored, strict=True)}
                    results = [
                        _record(
                            session, fetched, self._poll, now, self._alert_channels, by_fetch.get(id(fetched), Stored())
                        )
                        for fetched in group
                    ]
                del loaded
        except Exception:  # noqa: BLE001 - retried feed by feed below, where the cause is recorded
            return [self._write_one(fetched, now) for fetched in group]
        for fetched, result in zip(group, results, strict=True):
            _log(result, fetched.outcome)
        return results

    def _write_one(self, fetched: _Fetched, now: datetime) -> RefreshResult:
        try:
            with self._session_factory.begin() as session:
                result = _record(session, fetched, self._poll, now, self._alert_channels)
        except Exception as exc:  # noqa: BLE001 - the tick boundary: recorded on the feed row
            return _crash_result(
                self._session_factory, fetched.target, exc, self._poll, self._now, self._alert_channels
            )
        _log(result, fetched.outcome)
        return result


def _crash_result(
    session_factory: SessionFactory,
    target: FeedTarget,
    exc: Exception,
    poll: PollSettings,
    now: datetime | None,
    alert_channels: Sequence[str],
) -> RefreshResult:
    error = f"refresh: {type(exc).__name__}: {_first_line(exc)}"
    logger.error("feed refresh crashed", exc_info=exc, extra={"feed_id": target.id, "error": error})
    next_poll_at = None
    try:
        with session_factory.begin() as session:
            feed = feed_row(session, target.id)
            apply_crash(session, feed, error, poll, now or datetime.now(UTC), alert_channels)
            next_poll_at = feed.next_poll_at
    except Exception:
        logger.exception("cannot record the failed refresh", extra={"feed_id": target.id})
    return RefreshResult(
        feed_id=target.id,
        feed_name=target.name,
        outcome=FetchKind.ERROR,
        new_articles=0,
        entries=0,
        error=error,
        next_poll_at=next_poll_at,
    )


def _log(result: RefreshResult, outcome: FetchOutcome) -> None:
    extra = {
        "feed_id": result.feed_id,
        "feed_name": result.feed_name,
        "outcome": str(result.outcome),
        "http_status": result.http_status,
        "new_articles": result.new_articles,
        "entries": result.entries,
        "linked": result.linked,
        "duration_ms": result.duration_ms,
        "fetch_ms": outcome.duration_ms,
    }
    if result.error:
        logger.warning("feed refresh failed: %s", result.error, extra={**extra, "error": result.error})
    else:
        logger.info("feed refreshed", extra=extra)


def _first_line(exc: Exception) -> str:
    # Database errors append the whole statement and its parameters; the row needs the cause.
    lines = str(exc).strip().splitlines()
    return lines[0][:500] if lines else "(no message)"


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
