"""sync_feeds, claim_due_feeds and refresh_feeds on a real SQLite database, fetching from a real
local HTTP server."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker
from support.feedserver import FeedItem, rss_document
from support.rows import add_feed as add_feed_at
from support.rows import load_feed, refresh_feed

from monitor.config import FeedConfig, PollSettings
from monitor.ingest.fetch import FetchKind, FetchLimits, make_http_client
from monitor.ingest.refresh import refresh_feeds
from monitor.store.feeds import CLAIM_LEASE_S, claim_due_feeds, sync_feeds
from monitor.store.models import Article, Feed

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
add_feed = partial(add_feed_at, next_poll_at=NOW)
# parse_workers=0: documents are parsed in a thread, as the parse workers' own tests in
# test_ingest_health.py show they parse alike; a worker process would cost every refresh a process start.
# interval written down: a fixed schedule. The test server is on 127.0.0.1, so private addresses
# are allowed for article pages.
POLL = PollSettings(
    interval="15m", timeout="5s", backoff_base="60s", backoff_max="6h", allow_private_addresses=True, parse_workers=0
)
# No interval written down: the adaptive schedule between 5 minutes and 2 hours.
ADAPTIVE = PollSettings(
    timeout="5s", min_interval="5m", max_interval="2h", backoff_max="6h", allow_private_addresses=True, parse_workers=0
)


@pytest.fixture
def session_factory(sqlite_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    # The shared alembic-migrated SQLite database (tests/conftest.py). Tests that must hold on
    # both backends take `sessions` instead, which also runs them on PostgreSQL.
    return sqlite_sessions


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_http_client(FetchLimits.from_settings(POLL)) as http:
        yield http


def articles(session_factory: sessionmaker[Session], feed_id: int) -> list[Article]:
    with session_factory() as session:
        return list(session.scalars(select(Article).where(Article.feed_id == feed_id).order_by(Article.id)))


def items(*numbers: int, site: str = "news") -> bytes:
    return rss_document(
        [
            FeedItem(
                f"Story {n}",
                link=f"https://{site}.example.com/story/{n}?utm_source=rss",
                guid=f"story-{n}",
                description=f"<p>Text of story {n}.</p>",
                pub_date=datetime(2025, 2, n, 8, 0, tzinfo=UTC),
            )
            for n in numbers
        ]
    )


# --------------------------------------------------------------------------- sync_feeds


def test_sync_feeds_creates_updates_and_deactivates(session_factory) -> None:
    with session_factory.begin() as session:
        sync_feeds(
            session,
            [
                FeedConfig(name="a", url="https://a.example.com/rss", tags=["x"], interval="10m"),
                FeedConfig(name="b", url="https://b.example.com/rss", full_text=True),
            ],
            NOW,
        )
    with session_factory() as session:
        feeds = {feed.name: feed for feed in session.scalars(select(Feed))}
    assert feeds["a"].url == "https://a.example.com/rss"
    assert feeds["a"].tags == ["x"] and feeds["a"].interval_s == 600
    assert feeds["b"].full_text and feeds["b"].interval_s is None
    assert all(feed.active and feed.next_poll_at == NOW for feed in feeds.values())

    later = NOW + timedelta(hours=1)
    with session_factory.begin() as session:
        sync_feeds(session, [FeedConfig(name="a", url="https://a.example.com/rss", tags=["y", "z"])], later)
    with session_factory() as session:
        feeds = {feed.name: feed for feed in session.scalars(select(Feed))}
    assert feeds["a"].tags == ["y", "z"] and feeds["a"].interval_s is None and feeds["a"].active
    assert not feeds["b"].active  # kept for its articles, never polled again


def test_sync_feeds_url_change_resets_validators(session_factory) -> None:
    feed_id = add_feed(
        session_factory,
        "a",
        "https://old.example.com/rss",
        etag='"abc"',
        last_modified="Sat, 01 Mar 2025 10:00:00 GMT",
        consecutive_errors=3,
        last_error="fetch: 500 internal server error",
        next_poll_at=NOW + timedelta(hours=2),
    )
    with session_factory.begin() as session:
        sync_feeds(session, [FeedConfig(name="a", url="https://new.example.com/rss")], NOW)
    feed = load_feed(session_factory, feed_id)
    assert feed.url == "https://new.example.com/rss"
    assert feed.etag is None and feed.last_modified is None
    assert feed.consecutive_errors == 0 and feed.last_error is None
    assert feed.next_poll_at == NOW


def test_sync_feeds_keeps_validators_when_the_url_is_unchanged(session_factory) -> None:
    feed_id = add_feed(session_factory, "a", "https://a.example.com/rss", etag='"abc"')
    with session_factory.begin() as session:
        sync_feeds(session, [FeedConfig(name="a", url="https://a.example.com/rss")], NOW)
    assert load_feed(session_factory, feed_id).etag == '"abc"'


def test_sync_feeds_reactivates_a_returning_feed(session_factory) -> None:
    feed_id = add_feed(
        session_factory, "a", "https://a.example.com/rss", active=False, next_poll_at=NOW + timedelta(days=3)
    )
    with session_factory.begin() as session:
        sync_feeds(session, [FeedConfig(name="a", url="https://a.example.com/rss")], NOW)
    feed = load_feed(session_factory, feed_id)
    assert feed.active and feed.next_poll_at == NOW


# --------------------------------------------------------------------------- claim_due_feeds


def test_claim_due_feeds_takes_due_active_feeds_oldest_first(sessions) -> None:
    late = add_feed(sessions, "late", "http://x/1", next_poll_at=NOW - timedelta(minutes=1))
    oldest = add_feed(sessions, "oldest", "http://x/2", next_poll_at=NOW - timedelta(hours=1))
    add_feed(sessions, "future", "http://x/3", next_poll_at=NOW + timedelta(minutes=1))
    add_feed(sessions, "off", "http://x/4", active=False, next_poll_at=NOW - timedelta(days=1))
    exactly = add_feed(sessions, "now", "http://x/5", next_poll_at=NOW)

    with sessions.begin() as session:
        assert claim_due_feeds(session, NOW, limit=2) == [oldest, late]
    with sessions.begin() as session:
        # Claimed feeds are leased, so a second poller (or the next tick) does not take them again.
        assert claim_due_feeds(session, NOW, limit=10) == [exactly]
        assert claim_due_feeds(session, NOW, limit=10) == []
    assert load_feed(sessions, oldest).next_poll_at == NOW + timedelta(seconds=CLAIM_LEASE_S)


# --------------------------------------------------------------------------- one feed, through refresh_feeds


async def test_refresh_stores_new_articles_and_schedules_the_next_poll(sessions, server, client) -> None:
    server.set_feed("/feed.xml", items(1, 2, 3))
    feed_id = add_feed(sessions, "news", server.url("/feed.xml"))

    result = await refresh_feed(sessions, client, feed_id, POLL, NOW)

    assert result.outcome is FetchKind.NEW_CONTENT
    assert (result.new_articles, result.entries, result.error) == (3, 3, None)
    assert result.feed_name == "news" and result.http_status == 200
    stored = articles(sessions, feed_id)
    assert [a.entry_key for a in stored] == ["story-1", "story-2", "story-3"]
    first = stored[0]
    assert first.status == "new"
    assert first.url == "https://news.example.com/story/1"
    assert first.title == "Story 1" and first.text == "Text of story 1."
    assert first.published_at == datetime(2025, 2, 1, 8, 0, tzinfo=UTC)
    assert first.fetched_at == NOW
    feed = load_feed(sessions, feed_id)
    assert feed.last_status == "ok" and feed.last_http_status == 200
    assert feed.etag and feed.last_modified
    assert feed.last_error is None and feed.consecutive_errors == 0
    assert feed.last_polled_at == feed.last_success_at == NOW
    assert feed.entries_seen == 3
    assert feed.next_poll_at == NOW + timedelta(minutes=15) == result.next_poll_at


async def test_repoll_sends_validators_and_stores_only_new_items(sessions, server, client) -> None:
    server.set_feed("/feed.xml", items(1, 2))
    feed_id = add_feed(sessions, "news", server.url("/feed.xml"))
    await refresh_feed(sessions, client, feed_id, POLL, NOW)
    etag = load_feed(sessions, feed_id).etag

    unchanged = await refresh_feed(sessions, client, feed_id, POLL, NOW + timedelta(minutes=15))
    assert unchanged.outcome is FetchKind.NOT_MODIFIED and unchanged.new_articles == 0
    assert server.requests_for("/feed.xml")[-1].headers["if-none-match"] == etag
    feed = load_feed(sessions, feed_id)
    assert feed.last_status == "not_modified" and feed.last_http_status == 304
    assert feed.etag == etag and feed.last_success_at == NOW + timedelta(minutes=15)

    server.set_feed("/feed.xml", items(2, 3, 4))  # story 1 dropped off, 3 and 4 are new
    changed = await refresh_feed(sessions, client, feed_id, POLL, NOW + timedelta(minutes=30))
    assert changed.outcome is FetchKind.NEW_CONTENT
    assert (changed.new_articles, changed.entries) == (2, 3)
    assert [a.entry_key for a in articles(sessions, feed_id)] == [f"story-{n}" for n in (1, 2, 3, 4)]
    assert load_feed(sessions, feed_id).etag != etag


async def test_a_server_without_validators_never_duplicates(session_factory, server, client) -> None:
    server.set_feed("/feed.xml", items(1, 2), etag=False, last_modified=False)
    feed_id = add_feed(session_factory, "news", server.url("/feed.xml"))
    for minutes in (0, 15, 30):
        await refresh_feed(session_factory, client, feed_id, POLL, NOW + timedelta(minutes=minutes))
    assert len(articles(session_factory, feed_id)) == 2


async def test_concurrent_refreshes_of_one_feed_never_duplicate(sessions, server, client) -> None:
    server.set_feed("/feed.xml", items(*range(1, 21)), delay_s=0.1)
    feed_id = add_feed(sessions, "news", server.url("/feed.xml"))
    results = await asyncio.gather(*(refresh_feed(sessions, client, feed_id, POLL, NOW) for _ in range(4)))
    assert sum(result.new_articles for result in results) == 20
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Article)) == 20


async def test_retry_after_is_respected(session_factory, server, client) -> None:
    server.set_response("/feed.xml", 429, {"Retry-After": "3600"})
    feed_id = add_feed(session_factory, "news", server.url("/feed.xml"), etag='"keep"')
    result = await refresh_feed(session_factory, client, feed_id, POLL, NOW)
    assert result.outcome is FetchKind.RETRY_LATER
    assert result.error == "fetch: 429 too many requests (retry after 3600s)"
    feed = load_feed(session_factory, feed_id)
    assert feed.last_status == "retry_later" and feed.last_http_status == 429
    assert feed.consecutive_errors == 1 and feed.last_error == result.error
    assert feed.next_poll_at == NOW + timedelta(seconds=3600)
    assert feed.etag == '"keep"'  # validators survive failures


async def test_failures_back_off_exponentially_with_jitter_and_a_cap(session_factory, server, client) -> None:
    poll = PollSettings(backoff_base="60s", backoff_max="200s", timeout="5s", parse_workers=0)
    server.set_response("/feed.xml", 500)
    feed_id = add_feed(session_factory, "news", server.url("/feed.xml"))
    delays = []
    for attempt in range(1, 5):
        result = await refresh_feed(session_factory, client, feed_id, poll, NOW)
        assert result.outcome is FetchKind.ERROR and result.error == "fetch: 500 internal server error"
        feed = load_feed(session_factory, feed_id)
        assert feed.consecutive_errors == attempt and feed.active
        delays.append((feed.next_poll_at - NOW).total_seconds())
    assert 54 <= delays[0] <= 66
    assert 108 <= delays[1] <= 132
    assert 180 <= delays[2] <= 200 and 180 <= delays[3] <= 200
    assert load_feed(session_factory, feed_id).last_success_at is None

    server.set_feed("/feed.xml", items(1))
    recovered = await refresh_feed(session_factory, client, feed_id, poll, NOW)
    feed = load_feed(session_factory, feed_id)
    assert recovered.outcome is FetchKind.NEW_CONTENT
    assert feed.consecutive_errors == 0 and feed.last_error is None


async def test_gone_feeds_are_polled_rarely(session_factory, server, client) -> None:
    server.set_response("/feed.xml", 410)
    feed_id = add_feed(session_factory, "news", server.url("/feed.xml"))
    result = await refresh_feed(session_factory, client, feed_id, POLL, NOW)
    assert result.outcome is FetchKind.GONE
    feed = load_feed(session_factory, feed_id)
    assert feed.last_status == "gone" and feed.last_error == "fetch: 410 gone"
    assert feed.next_poll_at == NOW + timedelta(seconds=POLL.backoff_max)
    assert feed.active


async def test_a_page_that_is_not_a_feed_is_a_parse_error(session_factory, server, client) -> None:
    page = b"<!doctype html><html><body>Moved to our app!</body></html>"
    server.set_feed("/feed.xml", page, content_type="text/html")
    feed_id = add_feed(session_factory, "news", server.url("/feed.xml"))
    result = await refresh_feed(session_factory, client, feed_id, POLL, NOW)
    assert result.outcome == "parse_error"
    assert result.error == "parse: not a feed (an HTML page)"
    feed = load_feed(session_factory, feed_id)
    assert feed.last_status == "parse_error" and feed.last_http_status == 200
    assert feed.last_error == result.error and feed.consecutive_errors == 1
    # No validators from an unusable body, so the fixed feed is fetched in full next time.
    assert feed.etag is None and feed.last_modified is None
    assert 54 <= (feed.next_poll_at - NOW).total_seconds() <= 66
    assert articles(session_factory, feed_id) == []


async def test_permanent_redirect_updates_the_feed_url(session_factory, server, client) -> None:
    server.set_redirect("/old.xml", "/new.xml", status=301)
    server.set_feed("/new.xml", items(1))
    feed_id = add_feed(session_factory, "news", server.url("/old.xml"))
    result = await refresh_feed(session_factory, client, feed_id, POLL, NOW)
    assert result.outcome is FetchKind.NEW_CONTENT and result.new_articles == 1
    assert load_feed(session_factory, feed_id).url == server.url("/new.xml")
    await refresh_feed(session_factory, client, feed_id, POLL, NOW)
    assert server.requests_for("/old.xml").__len__() == 1  # the next poll goes straight there


async def test_a_restart_keeps_a_permanent_move(session_factory, server, client) -> None:
    server.set_redirect("/old.xml", "/new.xml", status=301)
    server.set_feed("/new.xml", items(1))
    config = [FeedConfig(name="news", url=server.url("/old.xml"))]
    with session_factory.begin() as session:
        sync_feeds(session, config, NOW)
    feed_id = load_feed_by_name(session_factory, "news")
    await refresh_feed(session_factory, client, feed_id, POLL, NOW)
    with session_factory.begin() as session:  # the service starts again with the same config
        sync_feeds(session, config, NOW)
    moved = load_feed(session_factory, feed_id)
    assert moved.url == server.url("/new.xml") and moved.etag is not None


def load_feed_by_name(session_factory: sessionmaker[Session], name: str) -> int:
    with session_factory() as session:
        return session.scalar(select(Feed.id).where(Feed.name == name))


async def test_temporary_redirect_keeps_the_feed_url(session_factory, server, client) -> None:
    server.set_redirect("/old.xml", "/new.xml", status=307)
    server.set_feed("/new.xml", items(1))
    feed_id = add_feed(session_factory, "news", server.url("/old.xml"))
    await refresh_feed(session_factory, client, feed_id, POLL, NOW)
    assert load_feed(session_factory, feed_id).url == server.url("/old.xml")


async def test_timeout_is_recorded(session_factory, server) -> None:
    poll = PollSettings(timeout=0.3, parse_workers=0)
    server.set_hang("/feed.xml", seconds=10)
    feed_id = add_feed(session_factory, "news", server.url("/feed.xml"))
    async with make_http_client(FetchLimits.from_settings(poll)) as client:
        result = await refresh_feed(session_factory, client, feed_id, poll, NOW)
    assert result.error == "fetch: timed out after 0.3s"
    assert load_feed(session_factory, feed_id).last_error == result.error


@pytest.mark.slow  # real timers or a process of its own: the full suite runs it, the fast tier does not
async def test_explicit_interval_is_honoured_down_to_one_second(session_factory, server, client) -> None:
    server.set_feed("/feed.xml", items(1), headers={"Cache-Control": "max-age=3600"})
    fast = add_feed(session_factory, "fast", server.url("/feed.xml"), interval_s=1.0)
    fixed = add_feed(session_factory, "fixed", server.url("/feed.xml"))
    default = add_feed(session_factory, "default", server.url("/feed.xml"))
    await refresh_feed(session_factory, client, fast, ADAPTIVE, NOW)
    await refresh_feed(session_factory, client, fixed, POLL, NOW)
    await refresh_feed(session_factory, client, default, ADAPTIVE, NOW)
    assert load_feed(session_factory, fast).next_poll_at == NOW + timedelta(seconds=1)
    # poll.interval written in the config is honoured as given, too.
    assert load_feed(session_factory, fixed).next_poll_at == NOW + timedelta(minutes=15)
    # Adaptive: the server's max-age may ask for fewer polls.
    assert load_feed(session_factory, default).next_poll_at == NOW + timedelta(hours=1)


ARTICLE_PAGE = """<!doctype html><html><head><title>{title}</title></head><body>
<nav><a href="/">Home</a> | <a href="/world">World</a> | <a href="/login">Sign in</a></nav>
<article><h1>{title}</h1>
<p>Election officials in the northern province said on Monday that investigators had traced a
series of intrusions into the voter registration system to servers abroad.</p>
<p>The full page says much more than the feed did: the ministry confirmed that the attackers copied
records of several hundred thousand voters before the breach was noticed and closed.</p>
<p>An independent review of the incident is expected to be published before the end of the month,
a spokesperson for the electoral commission told reporters at a briefing in the capital.</p>
</article><footer>Copyright Example News. All rights reserved.</footer></body></html>"""


async def test_full_text_feeds_store_the_page_text_once(session_factory, server, client) -> None:
    feed_items = [
        FeedItem(f"Page {n}", link=server.url(f"/a{n}.html"), guid=f"p{n}", description="Teaser.") for n in (1, 2)
    ]
    server.set_feed("/feed.xml", rss_document(feed_items), etag=False, last_modified=False)
    for n in (1, 2):
        server.set_feed(f"/a{n}.html", ARTICLE_PAGE.format(title=f"Page {n}"), content_type="text/html")
    feed_id = add_feed(session_factory, "full", server.url("/feed.xml"), full_text=True)

    first = await refresh_feed(session_factory, client, feed_id, POLL, NOW)
    await refresh_feed(session_factory, client, feed_id, POLL, NOW + timedelta(minutes=15))

    assert first.new_articles == 2
    texts = [article.text for article in articles(session_factory, feed_id)]
    if importlib.util.find_spec("lxml_html_clean") is not None:
        assert all("copied records of several hundred thousand voters" in text for text in texts)
        assert all("Sign in" not in text and "Copyright" not in text for text in texts)
    else:
        # trafilatura cannot load without lxml_html_clean: the feed's own text is kept.
        assert texts == ["Teaser.", "Teaser."]
    # Pages are fetched for unseen entries only.
    assert len(server.requests_for("/a1.html")) == 1


# --------------------------------------------------------------------------- refresh_feeds


async def test_one_failing_feed_never_affects_the_others(session_factory, server, client) -> None:
    for name in ("a", "b", "c"):
        server.set_feed(f"/{name}.xml", items(1, 2, site=name))
    ids = {name: add_feed(session_factory, name, server.url(f"/{name}.xml")) for name in ("a", "b", "c")}
    ids["down"] = add_feed(session_factory, "down", server.url("/missing.xml"))
    with session_factory() as session:
        # A real database failure for feed b only: its articles cannot be written.
        session.execute(
            text(
                f"CREATE TRIGGER refuse_b BEFORE INSERT ON articles WHEN NEW.feed_id = {ids['b']} "
                "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
            )
        )
        session.commit()

    results = {result.feed_name: result for result in await refresh_feeds(session_factory, client, POLL, NOW)}

    assert set(results) == {"a", "b", "c", "down"}
    assert results["a"].new_articles == results["c"].new_articles == 2
    assert results["down"].error == "fetch: 404 not found"
    crashed = results["b"]
    assert crashed.outcome is FetchKind.ERROR
    assert crashed.error == "refresh: IntegrityError: (sqlite3.IntegrityError) disk on fire"
    feed_b = load_feed(session_factory, ids["b"])
    assert feed_b.last_error == crashed.error and feed_b.consecutive_errors == 1
    assert feed_b.next_poll_at > NOW
    assert articles(session_factory, ids["b"]) == []
    assert load_feed(session_factory, ids["c"]).last_status == "ok"


async def test_only_due_feeds_are_polled(session_factory, server, client) -> None:
    server.set_feed("/due.xml", items(1))
    server.set_feed("/later.xml", items(1))
    add_feed(session_factory, "due", server.url("/due.xml"))
    add_feed(session_factory, "later", server.url("/later.xml"), next_poll_at=NOW + timedelta(minutes=5))
    results = await refresh_feeds(session_factory, client, POLL, NOW)
    assert [result.feed_name for result in results] == ["due"]
    assert await refresh_feeds(session_factory, client, POLL, NOW) == []  # rescheduled


async def test_one_named_feed_or_all_feeds_regardless_of_schedule(session_factory, server, client) -> None:
    server.set_feed("/feed.xml", items(1))
    for name in ("x", "y"):
        add_feed(session_factory, name, server.url("/feed.xml"), next_poll_at=NOW + timedelta(hours=1))
    add_feed(session_factory, "off", server.url("/feed.xml"), active=False)

    only = await refresh_feeds(session_factory, client, POLL, NOW, only_feed="y")
    assert [result.feed_name for result in only] == ["y"]
    every = await refresh_feeds(session_factory, client, POLL, NOW, all_feeds=True)
    assert sorted(result.feed_name for result in every) == ["x", "y"]
    with pytest.raises(LookupError, match="no active feed named 'nope'"):
        await refresh_feeds(session_factory, client, POLL, NOW, only_feed="nope")


@pytest.mark.parametrize(("concurrency", "per_host", "expected"), [(10, 2, 2), (3, 10, 3)])
async def test_concurrency_limits(session_factory, server, client, concurrency, per_host, expected) -> None:
    poll = PollSettings(concurrency=concurrency, per_host_concurrency=per_host, timeout="5s", parse_workers=0)
    for n in range(6):
        server.set_feed(f"/{n}.xml", items(1), delay_s=0.15)
        add_feed(session_factory, f"feed-{n}", server.url(f"/{n}.xml"))
    results = await refresh_feeds(session_factory, client, poll, NOW)
    assert len(results) == 6 and all(result.outcome is FetchKind.NEW_CONTENT for result in results)
    assert server.max_in_flight == expected
