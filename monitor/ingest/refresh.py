"""Refresh: the database is the schedule; one tick claims due feeds and refreshes each.

refresh_feed reads top to bottom: load the feed, fetch, parse, store unseen articles, record
the outcome and the next poll time on the feed row.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from monitor.config import FeedConfig, PollSettings
from monitor.ingest.fetch import (
    FetchKind,
    FetchLimits,
    FetchOutcome,
    fetch_feed,
    fetch_page,
)
from monitor.ingest.parse import Entry, FeedParseError, ParsedFeed
from monitor.ingest.parse_pool import parse_elsewhere
from monitor.ingest.text import extract_article_text
from monitor.store.models import Alert, Article, ArticleFeed, Feed

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
# Feeds whose results one transaction writes during a poll cycle.
WRITE_GROUP = 200

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
    # Entries new to this feed that another feed had already brought: linked, not stored again.
    linked: int = 0
    # New articles whose text was cut at poll.max_entry_chars.
    truncated: int = 0
    # The document was not well-formed XML (feedparser's bozo flag) but entries were read from it.
    bozo: bool = False
    # "failing" or "recovered" when this refresh wrote an operator alert about the feed.
    alert: str | None = None


@dataclass(frozen=True)
class _Target:
    """What a refresh needs from the feed row, read before the (slow) fetch."""

    id: int
    name: str
    url: str
    etag: str | None
    last_modified: str | None
    full_text: bool
    # Only the configured URL's origin may be private (fetch_feed): not where a move led.
    config_url: str | None


@dataclass(frozen=True)
class _Fetched:
    """What the network and the parser made of one feed, before anything is written."""

    target: _Target
    outcome: FetchOutcome
    parsed: ParsedFeed | None
    parse_error: str | None
    started: float


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


def claim_due_feeds(session: Session, now: datetime, limit: int, lease_s: float = CLAIM_LEASE_S) -> list[int]:
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
            .values(next_poll_at=now + timedelta(seconds=lease_s))
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
    alert_channels: Sequence[str] = (),
) -> RefreshResult:
    """Fetch, parse and store one feed now, in its own transaction (errors are recorded, not raised)."""
    now = now or datetime.now(UTC)
    target = _load_target(session_factory, feed_id)
    fetched = await _fetch_and_parse(session_factory, client, target, poll)
    with session_factory.begin() as session:
        result = _record(session, fetched, poll, now, alert_channels)
    _log(result, fetched.outcome)
    return result


def _load_target(session_factory: sessionmaker[Session], feed_id: int) -> _Target:
    with session_factory() as session:
        row = session.execute(_TARGET_COLUMNS.where(Feed.id == feed_id)).first()
        if row is None:
            raise LookupError(f"refresh: no feed with id {feed_id}")
        return _Target(*row)


_TARGET_COLUMNS = select(Feed.id, Feed.name, Feed.url, Feed.etag, Feed.last_modified, Feed.full_text, Feed.config_url)


async def _fetch_and_parse(
    session_factory: sessionmaker[Session],
    client: httpx.AsyncClient,
    target: _Target,
    poll: PollSettings,
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
    parsed, parse_error = await _parse(outcome, poll)
    if parsed is not None and target.full_text:
        parsed = await _with_page_text(session_factory, client, target.id, parsed, limits, poll)
    return _Fetched(target, outcome, parsed, parse_error, started)


async def _parse(outcome: FetchOutcome, poll: PollSettings) -> tuple[ParsedFeed | None, str | None]:
    if outcome.kind is not FetchKind.NEW_CONTENT:
        return None, None
    try:
        # feedparser is CPU-bound; a thread or a worker process keeps the other fetches moving.
        parsed = await parse_elsewhere(
            outcome.content,
            url=outcome.url,
            headers=outcome.headers,
            workers=poll.parse_workers,
            timeout_s=poll.parse_timeout,
            max_entries=poll.max_entries,
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

    Only entries not stored yet (from this feed or another) cost a page fetch, at most
    MAX_PAGES_PER_REFRESH of them (a first poll of a long feed would otherwise hold the tick);
    the rest keep the feed's text.
    """
    unseen = await asyncio.to_thread(_unseen, session_factory, feed_id, parsed.entries)
    wanted = [entry for entry in unseen if entry.url][:MAX_PAGES_PER_REFRESH]
    if not wanted:
        return parsed
    # Article pages usually share one host, so the per-host limit applies within a feed too.
    gate = asyncio.Semaphore(poll.per_host_concurrency)

    async def page_text(entry: Entry) -> tuple[str, str | None]:
        async with gate:
            return entry.key, await _page_text(client, entry.url or "", limits, poll.allow_private_addresses)

    texts = dict(await asyncio.gather(*(page_text(entry) for entry in wanted)))
    entries = [
        replace(entry, text=text) if (text := texts.get(entry.key)) else entry for entry in parsed.entries
    ]
    return replace(parsed, entries=entries)


def _unseen(session_factory: sessionmaker[Session], feed_id: int, entries: Sequence[Entry]) -> list[Entry]:
    shared = _shared_urls(entries)
    with session_factory() as session:
        linked = _linked_pairs(session, [(feed_id, [entry.key for entry in entries])])
        fresh = [entry for entry in entries if (feed_id, entry.key) not in linked]
        known = _known_articles(session, [_identity(entry, shared) for entry in fresh])
    return [entry for entry in fresh if known.find(_identity(entry, shared)) is None]


async def _page_text(client: httpx.AsyncClient, url: str, limits: FetchLimits, allow_private: bool) -> str | None:
    page = await fetch_page(client, url, limits=limits, allow_private=allow_private)
    if page.kind is not FetchKind.NEW_CONTENT:
        logger.info("article page not fetched: %s", page.error, extra={"url": url, "error": page.error})
        return None
    try:
        return await asyncio.to_thread(extract_article_text, page.content, page.url)
    except RuntimeError as exc:
        # trafilatura missing is a deployment fault: say so loudly, but keep the feed's own text.
        logger.error("%s", exc, extra={"url": url})
        return None


# --------------------------------------------------------------------------- recording


def _record(
    session: Session,
    fetched: _Fetched,
    poll: PollSettings,
    now: datetime,
    alert_channels: Sequence[str],
    stored: _Stored | None = None,
) -> RefreshResult:
    """Store the new articles and the feed's new state (the caller owns the transaction).

    `stored` is given when the caller has already stored this feed's entries (with a group's).
    """
    target, outcome, parsed = fetched.target, fetched.outcome, fetched.parsed
    kind: Outcome = PARSE_ERROR if fetched.parse_error else outcome.kind
    error = fetched.parse_error or outcome.error
    feed = session.get(Feed, target.id)
    if feed is None:
        raise LookupError(f"refresh: feed {target.id} disappeared during the refresh")
    if stored is None:
        stored = _store_entries(session, feed.id, parsed.entries, now, poll.max_entry_chars) if parsed else _Stored()
    alert = _apply_outcome(session, feed, kind, outcome, parsed, stored, error, poll, now, alert_channels)
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


@dataclass
class _Stored:
    new: int = 0
    linked: int = 0
    truncated: int = 0


@dataclass(frozen=True)
class _Identity:
    """How an entry is recognised across feeds: its canonical URL and its guid, hashed."""

    key: str
    url_hash: str | None
    guid_hash: str | None


@dataclass
class _KnownArticles:
    by_url: dict[str, int]
    by_guid: dict[str, int]

    def find(self, identity: _Identity) -> int | None:
        if identity.url_hash and identity.url_hash in self.by_url:
            return self.by_url[identity.url_hash]
        if identity.guid_hash and identity.guid_hash in self.by_guid:
            return self.by_guid[identity.guid_hash]
        return None


def _store_entries(
    session: Session, feed_id: int, entries: Sequence[Entry], now: datetime, max_chars: int
) -> _Stored:
    """Entries not seen in this feed yet: linked to the article when another feed brought it,
    otherwise stored as a new article. A re-poll or a concurrent poller never duplicates one."""
    return _store_many(session, [(feed_id, entries)], now, max_chars)[0]


def _store_many(
    session: Session, feeds: Sequence[tuple[int, Sequence[Entry]]], now: datetime, max_chars: int
) -> list[_Stored]:
    """_store_entries for several feeds at once, with one query or insert of each kind for all.

    The result is the same as storing the feeds one after the other in this order: an article
    two of them bring is stored through the first (rows are inserted in order, and a later row
    for the same article is skipped) and linked to the second.
    """
    stored = [_Stored() for _ in feeds]
    linked = _linked_pairs(session, [(feed_id, [entry.key for entry in entries]) for feed_id, entries in feeds])
    # Per feed: its entries not linked to it yet, and how each is recognised across feeds.
    fresh: list[dict[str, _Identity]] = []
    for feed_id, entries in feeds:
        unlinked = [entry for entry in entries if (feed_id, entry.key) not in linked]
        shared = _shared_urls(entries) if unlinked else set()
        fresh.append({entry.key: _identity(entry, shared) for entry in unlinked})
    known = _known_articles(session, [identity for identities in fresh for identity in identities.values()])
    links: list[dict[str, int]] = [{} for _ in feeds]
    rows: list[dict[str, Any]] = []
    row_feed: list[int] = []  # the index in `feeds` of each row
    for index, ((feed_id, entries), identities) in enumerate(zip(feeds, fresh, strict=True)):
        for entry in entries:
            identity = identities.get(entry.key)
            if identity is None:
                continue
            article_id = known.find(identity)
            if article_id is not None:
                links[index][entry.key] = article_id
            else:
                rows.append(_article_row(feed_id, entry, identity, now, max_chars))
                row_feed.append(index)
    inserted = _insert_articles(session, rows)
    lost: list[tuple[int, _Identity]] = []
    for row, index in zip(rows, row_feed, strict=True):
        article_id = inserted.pop((row["feed_id"], row["entry_key"]), None)
        if article_id is None:
            lost.append((index, fresh[index][row["entry_key"]]))
            continue
        links[index][row["entry_key"]] = article_id
        stored[index].new += 1
        stored[index].truncated += bool(row["truncated"])
    if lost:
        # Stored a moment ago: by an earlier feed of this batch, or by another poller (through
        # this feed or another one).
        again = _known_articles(session, [identity for _, identity in lost])
        unresolved: defaultdict[int, list[str]] = defaultdict(list)
        for index, identity in lost:
            article_id = again.find(identity)
            if article_id is not None:
                links[index][identity.key] = article_id
            else:
                unresolved[index].append(identity.key)
        for index, keys in unresolved.items():
            same_feed = _own_articles(session, feeds[index][0], keys)
            links[index].update({key: same_feed[key] for key in keys if key in same_feed})
    for index, feed_links in enumerate(links):
        stored[index].linked = len(feed_links) - stored[index].new
    _insert_links(
        session,
        [(feeds[index][0], key, article_id) for index, feed_links in enumerate(links) for key, article_id in feed_links.items()],
        now,
    )
    return stored


# Core columns, not ORM attributes, in the per-feed queries: a write group runs them for every
# feed, and the ORM's statement handling costs more than the query itself.
_ARTICLES = Article.__table__.c
_ARTICLE_FEEDS = ArticleFeed.__table__.c


def _linked_pairs(session: Session, feeds: Sequence[tuple[int, Sequence[str]]]) -> set[tuple[int, str]]:
    """(feed id, entry key) pairs among those asked that already link a feed to an article."""
    wanted = {(feed_id, key) for feed_id, keys in feeds for key in keys}
    if not wanted:
        return set()
    feed_ids = sorted({feed_id for feed_id, _ in wanted})
    found: set[tuple[int, str]] = set()
    for chunk in _chunks(sorted({key for _, key in wanted})):
        rows = session.execute(
            select(_ARTICLE_FEEDS.feed_id, _ARTICLE_FEEDS.entry_key).where(
                _ARTICLE_FEEDS.feed_id.in_(feed_ids), _ARTICLE_FEEDS.entry_key.in_(chunk)
            )
        )
        found.update(pair for feed_id, key in rows if (pair := (feed_id, key)) in wanted)
    return found


def _known_articles(session: Session, identities: Sequence[_Identity]) -> _KnownArticles:
    known = _KnownArticles({}, {})
    url_hashes = [identity.url_hash for identity in identities if identity.url_hash]
    guid_hashes = [identity.guid_hash for identity in identities if identity.guid_hash]
    for column, hashes, found in (
        (_ARTICLES.url_hash, url_hashes, known.by_url),
        (_ARTICLES.guid_hash, guid_hashes, known.by_guid),
    ):
        for chunk in _chunks(hashes):
            for article_id, value in session.execute(select(_ARTICLES.id, column).where(column.in_(chunk))):
                found[value] = article_id
    return known


def _own_articles(session: Session, feed_id: int, keys: Sequence[str]) -> dict[str, int]:
    rows = session.execute(
        select(_ARTICLES.entry_key, _ARTICLES.id).where(_ARTICLES.feed_id == feed_id, _ARTICLES.entry_key.in_(keys))
    )
    return {key: article_id for key, article_id in rows}


def _insert_articles(session: Session, rows: Sequence[dict[str, Any]]) -> dict[tuple[int, str], int]:
    """(feed id, entry key) -> id of the rows inserted; a row whose URL, guid or key is taken
    (by a stored article or an earlier row) is skipped."""
    if not rows:
        return {}
    # One statement for any number of rows (executemany; SQLAlchemy batches it into multi-row
    # INSERTs with RETURNING), so it is compiled once and cached rather than once per feed.
    table = Article.__table__
    statement = (
        _dialect_insert(session)(table)
        .on_conflict_do_nothing()
        .returning(table.c.id, table.c.feed_id, table.c.entry_key)
    )
    inserted: dict[tuple[int, str], int] = {}
    for chunk in _chunks(list(rows), INSERT_BATCH):
        for article_id, feed_id, key in session.execute(statement, chunk):
            inserted[(feed_id, key)] = article_id
    return inserted


def _insert_links(session: Session, links: Sequence[tuple[int, str, int]], now: datetime) -> None:
    """(feed id, entry key, article id) rows for article_feeds; those already there are kept."""
    if not links:
        return
    statement = _dialect_insert(session)(ArticleFeed.__table__).on_conflict_do_nothing()
    rows = [
        {"article_id": article_id, "feed_id": feed_id, "entry_key": key, "first_seen_at": now}
        for feed_id, key, article_id in links
    ]
    for chunk in _chunks(rows, INSERT_BATCH):
        session.execute(statement, chunk)


def _chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _dialect_insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        raise NotImplementedError(f"refresh: no insert-if-absent for the {dialect} dialect")
    return insert


def _shared_urls(entries: Sequence[Entry]) -> set[str]:
    """URLs that several entries of one feed point to: a section page, not an article's address."""
    counts = Counter(entry.url for entry in entries if entry.url)
    return {url for url, count in counts.items() if count > 1}


def _identity(entry: Entry, shared_urls: set[str]) -> _Identity:
    url = entry.url if entry.url and entry.url not in shared_urls else None
    return _Identity(entry.key, url_hash(url), guid_hash(entry.key))


def url_hash(url: str | None) -> str | None:
    """The cross-feed identity of a canonical article URL; None for a site's front page."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.path in ("", "/") and not parts.query:
        return None
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


def guid_hash(key: str) -> str | None:
    """The cross-feed identity of an entry key, when it is a URI (tag:, urn:, http:, sha256:).

    A bare number or slug ("1234", "story-7") is only unique within its own feed.
    """
    if ":" not in key.strip(":"):
        return None
    if key.lower().startswith(("http://", "https://")):
        return url_hash(key)
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _article_row(feed_id: int, entry: Entry, identity: _Identity, now: datetime, max_chars: int) -> dict[str, Any]:
    truncated = len(entry.text) > max_chars or len(entry.title) > max_chars
    return {
        "feed_id": feed_id,
        "entry_key": entry.key,
        "url": entry.url,
        "title": entry.title[:max_chars],
        "text": entry.text[:max_chars],
        "published_at": entry.published,
        "fetched_at": now,
        "status": "new",
        "attempts": 0,
        "truncated": truncated,
        "url_hash": identity.url_hash,
        "guid_hash": identity.guid_hash,
    }


def _apply_outcome(
    session: Session,
    feed: Feed,
    kind: Outcome,
    outcome: FetchOutcome,
    parsed: ParsedFeed | None,
    stored: _Stored,
    error: str | None,
    poll: PollSettings,
    now: datetime,
    alert_channels: Sequence[str],
) -> str | None:
    """The feed's new state and next poll time; returns "failing"/"recovered" when it alerted."""
    feed.last_polled_at = now
    feed.last_status = _status_label(kind)
    feed.last_http_status = outcome.status
    alert = None
    if kind in (FetchKind.NEW_CONTENT, FetchKind.NOT_MODIFIED):
        first_success = feed.last_success_at is None
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
        alert = _recovered(session, feed, now, alert_channels)
        if poll.is_adaptive and not feed.interval_s:
            feed.adaptive_interval_s = adapt_interval_s(
                feed.adaptive_interval_s, stored.new + stored.linked, poll, first=first_success
            )
    else:
        alert = _failed(session, feed, error or f"fetch: {kind}", poll, now, alert_channels)
        if kind is not FetchKind.RETRY_LATER:
            forget_validators(feed)
    delay = next_poll_delay_s(
        kind,
        interval_s=feed.interval_s,
        errors=feed.consecutive_errors,
        poll=poll,
        retry_after_s=outcome.retry_after_s,
        max_age_s=outcome.max_age_s,
        adaptive_interval_s=feed.adaptive_interval_s,
    )
    feed.next_poll_at = now + timedelta(seconds=delay)
    return alert


def _failed(
    session: Session, feed: Feed, error: str, poll: PollSettings, now: datetime, alert_channels: Sequence[str]
) -> str | None:
    """Count a failure; a feed failing for poll.failing_alert_after alerts the operator once."""
    feed.consecutive_errors = (feed.consecutive_errors or 0) + 1
    feed.last_error = error
    if feed.failing_since is None:
        feed.failing_since = now
    if feed.failing_alerted or now - feed.failing_since < timedelta(seconds=poll.failing_alert_after):
        return None
    feed.failing_alerted = True
    since = feed.failing_since.strftime("%Y-%m-%d %H:%M UTC")
    title = f"Feed failing: {feed.name} (since {since}: {error})"
    session.add_all(operator_alerts(feed, title[:500], now, alert_channels))
    logger.warning("feed failing: operator alerted", extra={"feed_id": feed.id, "error": error})
    return "failing"


def forget_validators(feed: Feed) -> None:
    # A failed poll forgets the ETag and Last-Modified: if they were the cause, the next poll
    # asks without them; if not, it costs one full GET. (A 429 or 503 keeps them: the server
    # only asked us to wait.)
    feed.etag = None
    feed.last_modified = None


def _recovered(session: Session, feed: Feed, now: datetime, alert_channels: Sequence[str]) -> str | None:
    alerted = feed.failing_alerted
    feed.failing_since = None
    feed.failing_alerted = False
    if not alerted:
        return None
    session.add_all(operator_alerts(feed, f"Feed recovered: {feed.name}", now, alert_channels))
    logger.info("feed recovered: operator alerted", extra={"feed_id": feed.id})
    return "recovered"


def operator_alerts(feed: Feed, title: str, now: datetime, channels: Sequence[str]) -> list[Alert]:
    """Outbox rows about the feed itself (no article); the payload is AlertContent's JSON shape.

    Built by hand because ingest must not import the alerts stage; a test validates the shape.
    """
    payload = {
        "article_title": title,
        "article_url": feed.url,
        "feed": feed.name,
        "published": now.isoformat(),
        "relevance": 0.0,
        "findings": [],
        "closest_allegation": None,
        "test": False,
    }
    return [
        Alert(article_id=None, channel=channel, payload=dict(payload), status="pending", attempts=0, next_attempt_at=now, created_at=now)
        for channel in channels
    ]


def _status_label(kind: Outcome) -> str:
    # What `monitor feeds` shows: "ok" for a body we used, otherwise the outcome's own name.
    return "ok" if kind is FetchKind.NEW_CONTENT else str(kind)


def adapt_interval_s(current_s: float | None, new_entries: int, poll: PollSettings, *, first: bool) -> float:
    """The adaptive interval after a successful poll: halved when it brought new entries, half as
    long again when it brought none, within [min_interval, max_interval]. A first poll (where every
    entry is new) only sets the starting point."""
    current = _clamp(current_s or poll.interval, poll)
    if first:
        return current
    return _clamp(current * (0.5 if new_entries > 0 else 1.5), poll)


def _clamp(seconds: float, poll: PollSettings) -> float:
    return min(max(seconds, poll.min_interval, MIN_INTERVAL_S), poll.max_interval)


def next_poll_delay_s(
    kind: Outcome,
    *,
    interval_s: float | None,
    errors: int,
    poll: PollSettings,
    retry_after_s: float | None = None,
    max_age_s: float | None = None,
    adaptive_interval_s: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds until the next poll of a feed whose last refresh ended as `kind`."""
    if kind in (FetchKind.NEW_CONTENT, FetchKind.NOT_MODIFIED):
        if interval_s:
            return max(MIN_INTERVAL_S, interval_s)  # the operator's explicit choice wins
        if not poll.is_adaptive:
            return max(MIN_INTERVAL_S, poll.interval)  # so does a global interval written down
        delay = _clamp(adaptive_interval_s or poll.interval, poll)
        if max_age_s:
            # The server may ask for fewer polls, up to the longest interval we use.
            delay = max(delay, min(max_age_s, poll.max_interval))
        return delay
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
        "linked": result.linked,
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
    alert_channels: Sequence[str] = (),
    lease_s: float = CLAIM_LEASE_S,
) -> list[RefreshResult]:
    """Refresh the due feeds (or all active ones, or the one named) under concurrency limits.

    Due feeds are claimed a batch at a time and the claim is topped up as feeds finish, until
    no feed that was due when the call began is left: one call is one full poll cycle. Results
    are written in groups (one transaction for many feeds) by one writer, so a large cycle is not
    bound by per-feed commits; a group that fails is written again feed by feed, so one feed's
    database error never touches the others. `alert_channels` receive the operator alerts about
    failing and recovered feeds.
    """
    cycle_start = now or datetime.now(UTC)
    writer = _GroupWriter(session_factory, poll, now, alert_channels)
    overall = asyncio.Semaphore(poll.concurrency)
    per_host: defaultdict[str, asyncio.Semaphore] = defaultdict(
        lambda: asyncio.Semaphore(poll.per_host_concurrency)
    )

    async def refresh_one(target: _Target) -> RefreshResult:
        try:
            # Host slot first: waiting on a busy host must not hold a global slot idle.
            async with per_host[_host(target.url)], overall:
                fetched = await _fetch_and_parse(session_factory, client, target, poll)
        except Exception as exc:  # noqa: BLE001 - the tick boundary: one feed never breaks the others
            return await asyncio.to_thread(_crash_result, session_factory, target, exc, poll, now, alert_channels)
        # Written outside the slots: waiting for the writer must not hold up other fetches.
        return await writer.record(fetched)

    if only_feed is not None or all_feeds:
        targets = await asyncio.to_thread(_named_targets, session_factory, only_feed)
        return list(await asyncio.gather(*(refresh_one(target) for target in targets)))

    batch = max(poll.concurrency * 4, 50)
    order: dict[int, int] = {}
    results: dict[int, RefreshResult] = {}
    pending: set[asyncio.Task[RefreshResult]] = set()
    claiming = True
    while True:
        if claiming and len(pending) < batch // 2:
            claimed = await asyncio.to_thread(_claim_targets, session_factory, cycle_start, batch, lease_s)
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


def _claim_targets(
    session_factory: sessionmaker[Session], now: datetime, limit: int, lease_s: float
) -> list[_Target]:
    with session_factory.begin() as session:
        ids = claim_due_feeds(session, now, limit=limit, lease_s=lease_s)
        if not ids:
            return []
        rows = session.execute(_TARGET_COLUMNS.where(Feed.id.in_(ids))).all()
    by_id = {row.id: _Target(*row) for row in rows}
    return [by_id[feed_id] for feed_id in ids if feed_id in by_id]


def _named_targets(session_factory: sessionmaker[Session], only_feed: str | None) -> list[_Target]:
    with session_factory() as session:
        query = _TARGET_COLUMNS.where(Feed.active.is_(True))
        if only_feed is not None:
            rows = session.execute(query.where(Feed.name == only_feed)).all()
            if not rows:
                raise LookupError(f"poll: no active feed named {only_feed!r}")
        else:
            rows = session.execute(query.order_by(Feed.id)).all()
        return [_Target(*row) for row in rows]


class _GroupWriter:
    """Group commit: fetched feeds queue up while one write runs, then go in together."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        poll: PollSettings,
        now: datetime | None,
        alert_channels: Sequence[str],
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
                # One query loads every feed row of the group into the session; the list keeps
                # them there (the identity map holds rows weakly, and _record looks each one up).
                loaded = list(session.scalars(select(Feed).where(Feed.id.in_([f.target.id for f in group]))))
                if len(loaded) < len({fetched.target.id for fetched in group}):
                    raise LookupError("refresh: a feed disappeared during the refresh")
                # The reads here are of articles, which are inserted at once, never of the feed
                # rows _record changes: those are flushed together at the commit, not before
                # every query.
                with session.no_autoflush:
                    parsed = [fetched for fetched in group if fetched.parsed is not None]
                    stored = _store_many(
                        session,
                        [(fetched.target.id, fetched.parsed.entries) for fetched in parsed if fetched.parsed],
                        now,
                        self._poll.max_entry_chars,
                    )
                    by_fetch = {id(fetched): result for fetched, result in zip(parsed, stored, strict=True)}
                    results = [
                        _record(
                            session, fetched, self._poll, now, self._alert_channels, by_fetch.get(id(fetched), _Stored())
                        )
                        for fetched in group
                    ]
                del loaded
        except Exception:  # noqa: BLE001 - retried feed by feed below, where the cause is recorded
            if len(group) == 1:
                return [self._write_one(group[0], now)]
            return [self._write_one(fetched, now) for fetched in group]
        for fetched, result in zip(group, results, strict=True):
            _log(result, fetched.outcome)
        return results

    def _write_one(self, fetched: _Fetched, now: datetime) -> RefreshResult:
        try:
            with self._session_factory.begin() as session:
                result = _record(session, fetched, self._poll, now, self._alert_channels)
        except Exception as exc:  # noqa: BLE001 - the tick boundary: recorded on the feed row
            return _crash_result(self._session_factory, fetched.target, exc, self._poll, self._now, self._alert_channels)
        _log(result, fetched.outcome)
        return result


def _crash_result(
    session_factory: sessionmaker[Session],
    target: _Target,
    exc: Exception,
    poll: PollSettings,
    now: datetime | None,
    alert_channels: Sequence[str],
) -> RefreshResult:
    error = f"refresh: {type(exc).__name__}: {_first_line(exc)}"
    logger.error("feed refresh crashed", exc_info=exc, extra={"feed_id": target.id, "error": error})
    next_poll_at = _record_crash(session_factory, target.id, error, poll, now or datetime.now(UTC), alert_channels)
    return RefreshResult(
        feed_id=target.id,
        feed_name=target.name,
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
    alert_channels: Sequence[str],
) -> datetime | None:
    try:
        with session_factory.begin() as session:
            feed = session.get(Feed, feed_id)
            if feed is None:
                return None
            _failed(session, feed, error, poll, now, alert_channels)
            forget_validators(feed)
            feed.last_status = str(FetchKind.ERROR)
            feed.last_polled_at = now
            feed.next_poll_at = now + timedelta(seconds=backoff_s(feed.consecutive_errors, poll))
            return feed.next_poll_at
    except Exception:
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
