"""The articles repository: one article however many feeds carry it, stored once, then claimed by
a processor and given its verdict.

An entry is recognised across feeds by its canonical URL or a globally meaningful guid (hashed);
every feed it arrived through is linked to it under that feed's own entry key.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.store.models import Article, ArticleFeed, ArticleStatus

# Rows per INSERT: well under SQLite's bound-parameter limit.
INSERT_BATCH = 200


class EntryLike(Protocol):
    """What the store needs of a feed entry (ingest's Entry has it)."""

    key: str
    url: str | None
    title: str
    text: str
    published: datetime | None


@dataclass
class Stored:
    new: int = 0
    linked: int = 0
    truncated: int = 0


@dataclass(frozen=True)
class Identity:
    """How an entry is recognised across feeds: its canonical URL and its guid, hashed."""

    key: str
    url_hash: str | None
    guid_hash: str | None


@dataclass
class _KnownArticles:
    by_url: dict[str, int]
    by_guid: dict[str, int]

    def find(self, identity: Identity) -> int | None:
        if identity.url_hash and identity.url_hash in self.by_url:
            return self.by_url[identity.url_hash]
        if identity.guid_hash and identity.guid_hash in self.by_guid:
            return self.by_guid[identity.guid_hash]
        return None


def store_entries(
    session: Session, feed_id: int, entries: Sequence[EntryLike], now: datetime, max_chars: int
) -> Stored:
    """Entries not seen in this feed yet: linked to the article when another feed brought it,
    otherwise stored as a new article. A re-poll or a concurrent poller never duplicates one."""
    return store_many(session, [(feed_id, entries)], now, max_chars)[0]


def store_many(
    session: Session, feeds: Sequence[tuple[int, Sequence[EntryLike]]], now: datetime, max_chars: int
) -> list[Stored]:
    """store_entries for several feeds at once, with one query or insert of each kind for all.

    The result is the same as storing the feeds one after the other in this order: an article
    two of them bring is stored through the first (rows are inserted in order, and a later row
    for the same article is skipped) and linked to the second.
    """
    stored = [Stored() for _ in feeds]
    linked = _linked_pairs(session, [(feed_id, [entry.key for entry in entries]) for feed_id, entries in feeds])
    # Per feed: its entries not linked to it yet, and how each is recognised across feeds.
    fresh: list[dict[str, Identity]] = []
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
    lost: list[tuple[int, Identity]] = []
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
        [
            (feeds[index][0], key, article_id)
            for index, feed_links in enumerate(links)
            for key, article_id in feed_links.items()
        ],
        now,
    )
    return stored


def unseen_entries(session: Session, feed_id: int, entries: Sequence[EntryLike]) -> list[EntryLike]:
    """The entries of a feed that no feed has brought yet."""
    shared = _shared_urls(entries)
    linked = _linked_pairs(session, [(feed_id, [entry.key for entry in entries])])
    fresh = [entry for entry in entries if (feed_id, entry.key) not in linked]
    known = _known_articles(session, [_identity(entry, shared) for entry in fresh])
    return [entry for entry in fresh if known.find(_identity(entry, shared)) is None]


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


def _known_articles(session: Session, identities: Sequence[Identity]) -> _KnownArticles:
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
        raise NotImplementedError(f"store: no insert-if-absent for the {dialect} dialect")
    return insert


def _shared_urls(entries: Sequence[EntryLike]) -> set[str]:
    """URLs that several entries of one feed point to: a section page, not an article's address."""
    counts = Counter(entry.url for entry in entries if entry.url)
    return {url for url, count in counts.items() if count > 1}


def _identity(entry: EntryLike, shared_urls: set[str]) -> Identity:
    url = entry.url if entry.url and entry.url not in shared_urls else None
    return Identity(entry.key, url_hash(url), guid_hash(entry.key))


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


def _article_row(feed_id: int, entry: EntryLike, identity: Identity, now: datetime, max_chars: int) -> dict[str, Any]:
    truncated = len(entry.text) > max_chars or len(entry.title) > max_chars
    return {
        "feed_id": feed_id,
        "entry_key": entry.key,
        "url": entry.url,
        "title": entry.title[:max_chars],
        "text": entry.text[:max_chars],
        "published_at": entry.published,
        "fetched_at": now,
        "status": ArticleStatus.NEW,
        "attempts": 0,
        "truncated": truncated,
        "url_hash": identity.url_hash,
        "guid_hash": identity.guid_hash,
    }
