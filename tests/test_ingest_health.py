"""The adaptive schedule, operator alerts about failing feeds, and one article shared by many
feeds: refresh_feeds against a real local server and a migrated database."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from support.feedserver import FeedItem, rss_document
from support.rows import add_feed as add_feed_at
from support.rows import load_feed, refresh_feed

from monitor.config import PollSettings, Settings
from monitor.ingest.fetch import FetchKind, FetchLimits, make_http_client
from monitor.ingest.parse import Entry
from monitor.ingest.parse_pool import Parser
from monitor.ingest.refresh import refresh_feeds
from monitor.outbox import AlertContent
from monitor.store.articles import store_entries, store_many
from monitor.store.models import Alert, Article, ArticleFeed

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
add_feed = partial(add_feed_at, next_poll_at=NOW)
# parse_workers=0: documents are parsed in a thread, as the parse workers' own tests below show they
# parse alike; a worker process would cost every refresh a process start.
ADAPTIVE = PollSettings(
    timeout="5s", min_interval="5m", max_interval="2h", allow_private_addresses=True, parse_workers=0
)
FIXED = PollSettings(interval="15m", timeout="5s", allow_private_addresses=True, parse_workers=0)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_http_client(FetchLimits.from_settings(ADAPTIVE)) as http:
        yield http


def story(n: int, site: str = "news", **fields: Any) -> FeedItem:
    values = {"link": f"https://{site}.example.com/story/{n}", "guid": f"{site}-{n}", "description": f"Story {n}."}
    return FeedItem(f"Story {n}", **{**values, **fields})


# --------------------------------------------------------------------------- schedule


def test_adaptive_is_the_default_unless_an_interval_is_written() -> None:
    assert Settings.model_validate({}).poll.is_adaptive
    assert Settings.model_validate({"poll": {"min_interval": "1m"}}).poll.is_adaptive
    assert not Settings.model_validate({"poll": {"interval": "10m"}}).poll.is_adaptive
    assert Settings.model_validate({"poll": {"interval": "10m", "adaptive": True}}).poll.is_adaptive
    assert not Settings.model_validate({"poll": {"adaptive": False}}).poll.is_adaptive
    with pytest.raises(ValueError, match="min_interval"):
        PollSettings(min_interval="2h", max_interval="1h")


@pytest.mark.slow  # real timers or a process of its own: the full suite runs it, the fast tier does not
async def test_busy_feeds_speed_up_quiet_ones_slow_down_and_a_restart_resumes(sessions, server, client) -> None:
    server.set_feed("/quiet.xml", rss_document([story(1, "quiet")]))
    busy = add_feed(sessions, "busy", server.url("/busy.xml"))
    quiet = add_feed(sessions, "quiet", server.url("/quiet.xml"))
    busy_gaps, quiet_gaps = [], []
    when = NOW
    for poll_number in range(1, 6):
        server.set_feed("/busy.xml", rss_document([story(n, "busy") for n in range(poll_number * 3)]))
        results = await refresh_feeds(sessions, client, ADAPTIVE, when, all_feeds=True)
        assert all(result.error is None for result in results)
        busy_gaps.append((load_feed(sessions, busy).next_poll_at - when).total_seconds())
        quiet_gaps.append((load_feed(sessions, quiet).next_poll_at - when).total_seconds())
        when += timedelta(minutes=5)
    assert busy_gaps == [900, 450, 300, 300, 300]
    assert quiet_gaps == [900, 1350, 2025, 3037.5, 4556.25]
    # The schedule lives in the database: another process (a restart) carries on from it.
    async with make_http_client(FetchLimits.from_settings(ADAPTIVE)) as fresh_client:
        await refresh_feed(sessions, fresh_client, quiet, ADAPTIVE, when)
    assert (load_feed(sessions, quiet).next_poll_at - when).total_seconds() == 6834.375
    # With poll.interval written down, every feed keeps exactly that interval.
    server.set_feed("/busy.xml", rss_document([story(n, "busy") for n in range(40)]))
    await refresh_feed(sessions, client, busy, FIXED, when)
    assert load_feed(sessions, busy).next_poll_at == when + timedelta(minutes=15)


# --------------------------------------------------------------------------- operator alerts


async def test_a_feed_failing_too_long_alerts_once_and_once_more_on_recovery(sessions, server, client) -> None:
    poll = PollSettings(timeout="5s", failing_alert_after="1h", backoff_base="10m", parse_workers=0)
    channels = ["console", "slack"]
    server.set_response("/feed.xml", 500)
    server.set_feed("/fine.xml", rss_document([story(1, "fine")]))
    feed_id = add_feed(sessions, "Flaky News", server.url("/feed.xml"))
    add_feed(sessions, "Fine", server.url("/fine.xml"))

    def alerts() -> list[Alert]:
        with sessions() as session:
            return list(session.scalars(select(Alert).order_by(Alert.id)))

    outcomes = []
    for minutes in (0, 30, 59, 61, 90, 180):
        results = await refresh_feeds(
            sessions, client, poll, NOW + timedelta(minutes=minutes), all_feeds=True, alert_channels=channels
        )
        by_name = {result.feed_name: result for result in results}
        assert by_name["Fine"].error is None and by_name["Fine"].alert is None
        outcomes.append(by_name["Flaky News"].alert)
    assert outcomes == [None, None, None, "failing", None, None]
    failing = alerts()
    assert [alert.channel for alert in failing] == channels
    feed = load_feed(sessions, feed_id)
    assert feed.failing_since == NOW and feed.failing_alerted and feed.consecutive_errors == 6

    server.set_feed("/feed.xml", rss_document([story(1)]))
    recovered = await refresh_feed(sessions, client, feed_id, poll, NOW + timedelta(hours=4), alert_channels=channels)
    again = await refresh_feed(sessions, client, feed_id, poll, NOW + timedelta(hours=5), alert_channels=channels)
    assert (recovered.alert, again.alert) == ("recovered", None)
    feed = load_feed(sessions, feed_id)
    assert feed.failing_since is None and not feed.failing_alerted

    rows = alerts()
    assert len(rows) == 4 and all(row.article_id is None and row.status == "pending" for row in rows)
    contents = [AlertContent.model_validate(row.payload) for row in rows]
    assert contents[0].article_title == (
        "Feed failing: Flaky News (since 2025-03-01 12:00 UTC: fetch: 500 internal server error)"
    )
    assert contents[2].article_title == "Feed recovered: Flaky News"
    assert all(c.feed == "Flaky News" and c.article_url == server.url("/feed.xml") for c in contents)
    assert all(c.findings == [] and c.relevance == 0 for c in contents)


async def test_no_alert_channels_means_no_alert_rows(sqlite_sessions, server, client) -> None:
    server.set_response("/feed.xml", 410)
    feed_id = add_feed(sqlite_sessions, "gone", server.url("/feed.xml"))
    poll = PollSettings(timeout="5s", failing_alert_after="1s", parse_workers=0)
    await refresh_feed(sqlite_sessions, client, feed_id, poll, NOW)
    result = await refresh_feed(sqlite_sessions, client, feed_id, poll, NOW + timedelta(seconds=5))
    assert result.alert == "failing" and result.outcome is FetchKind.GONE
    with sqlite_sessions() as session:
        assert session.scalar(select(func.count()).select_from(Alert)) == 0
    feed = load_feed(sqlite_sessions, feed_id)
    assert feed.last_status == "gone" and feed.failing_alerted


# --------------------------------------------------------------------------- one article, many feeds


def article_links(sessions: sessionmaker[Session]) -> list[tuple[int, int, str]]:
    with sessions() as session:
        rows = session.execute(select(ArticleFeed.article_id, ArticleFeed.feed_id, ArticleFeed.entry_key))
        return sorted((row.article_id, row.feed_id, row.entry_key) for row in rows)


async def test_one_article_through_several_feeds_is_stored_once_and_linked_to_each(sessions, server, client) -> None:
    link = "https://news.example.com/world/2025/election-probe"
    server.set_feed("/a.xml", rss_document([FeedItem("Probe", link=link + "?utm_source=a", guid="a-1")]))
    server.set_feed(
        "/b.xml", rss_document([FeedItem("Probe (B)", link=link + "?utm_medium=rss&fbclid=x#top", guid="b-9")])
    )
    # Same global guid, another address (a syndication mirror).
    server.set_feed("/c.xml", rss_document([FeedItem("Probe (C)", link="https://mirror.example.org/p/1", guid="a-1")]))
    server.set_feed(
        "/d.xml",
        rss_document([FeedItem("Probe (D)", link="https://m.example.org/x", guid="tag:news.example.com,2025:1")]),
    )
    server.set_feed(
        "/e.xml",
        rss_document([FeedItem("Probe (E)", link="https://e.example.org/y", guid="tag:news.example.com,2025:1")]),
    )
    ids = {name: add_feed(sessions, name, server.url(f"/{name}.xml")) for name in "abcde"}

    first = await refresh_feed(sessions, client, ids["a"], FIXED, NOW)
    rest = await refresh_feeds(sessions, client, FIXED, NOW, all_feeds=True)
    by_name = {result.feed_name: result for result in rest}

    assert first.new_articles == 1
    assert (by_name["b"].new_articles, by_name["b"].linked) == (0, 1)
    # A bare guid ("a-1") only identifies an entry within its feed: c is another article.
    assert by_name["c"].new_articles == 1
    # A URI guid identifies the article everywhere.
    assert by_name["d"].new_articles + by_name["e"].new_articles == 1
    assert by_name["d"].linked + by_name["e"].linked == 1
    with sessions() as session:
        stored = list(session.scalars(select(Article).order_by(Article.id)))
    assert len(stored) == 3
    probe = stored[0]
    assert probe.feed_id == ids["a"] and probe.url == link and probe.title == "Probe"
    links = article_links(sessions)
    assert (probe.id, ids["a"], "a-1") in links and (probe.id, ids["b"], "b-9") in links
    assert len(links) == 5
    # Polling again links and stores nothing more.
    again = await refresh_feeds(sessions, client, FIXED, NOW + timedelta(hours=1), all_feeds=True)
    assert sum(result.new_articles + result.linked for result in again) == 0


async def test_feeds_polled_at_once_still_store_a_shared_article_once(sessions, server, client) -> None:
    doc = rss_document([story(n, "wire") for n in range(1, 11)])
    for n in range(6):
        server.set_feed(f"/{n}.xml", doc, delay_s=0.05)
        add_feed(sessions, f"outlet-{n}", server.url(f"/{n}.xml"))
    poll = PollSettings(interval="15m", timeout="5s", concurrency=6, per_host_concurrency=6, parse_workers=0)
    results = await refresh_feeds(sessions, client, poll, NOW)
    assert sum(result.new_articles for result in results) == 10
    assert sum(result.linked for result in results) == 50
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Article)) == 10
        assert session.scalar(select(func.count()).select_from(ArticleFeed)) == 60


async def test_entries_sharing_a_section_link_stay_separate_articles(sqlite_sessions, server, client) -> None:
    section = "https://news.example.com/live"
    server.set_feed("/live.xml", rss_document([FeedItem(f"Update {n}", link=section, guid=f"u{n}") for n in range(3)]))
    server.set_feed(
        "/home.xml", rss_document([FeedItem("Front page item", link="https://news.example.com/", guid="h1")])
    )
    server.set_feed(
        "/home2.xml", rss_document([FeedItem("Another front page item", link="https://news.example.com/", guid="h2")])
    )
    for name in ("live", "home", "home2"):
        add_feed(sqlite_sessions, name, server.url(f"/{name}.xml"))
    results = await refresh_feeds(sqlite_sessions, client, FIXED, NOW)
    assert sum(result.new_articles for result in results) == 5


def entry(key: str, url: str | None, title: str = "") -> Entry:
    return Entry(key=key, url=url, title=title or key, text=f"Text of {key}.", published=None)


def test_one_write_group_stores_as_the_feeds_would_one_after_another(sessions) -> None:
    """A write group stores many feeds' entries with one query or insert of each kind: an
    article two feeds of the group bring belongs to the first and is linked to the second."""
    ids = [add_feed(sessions, name, f"http://127.0.0.1:9/{name}.xml") for name in ("first", "second", "third")]
    story = "https://news.example.com/2025/shared-story"
    with sessions.begin() as session:
        earlier = store_entries(session, ids[2], [entry("old-1", "https://news.example.com/2025/old")], NOW, 10_000)
    assert (earlier.new, earlier.linked) == (1, 0)
    batch = [
        (ids[0], [entry("a-1", story), entry("a-2", "https://news.example.com/2025/a-only")]),
        # The shared story under another key and a tracking parameter's spelling, a URI guid
        # shared with the third feed, and the article the third feed stored before the group.
        (
            ids[1],
            [
                entry("b-1", story),
                entry("tag:wire,2025:7", "https://b.example.org/7"),
                entry("b-3", "https://news.example.com/2025/old"),
            ],
        ),
        (
            ids[2],
            [entry("old-1", "https://news.example.com/2025/old"), entry("tag:wire,2025:7", "https://c.example.org/7")],
        ),
    ]
    with sessions.begin() as session:
        stored = store_many(session, batch, NOW, 10_000)
    assert [(result.new, result.linked) for result in stored] == [(2, 0), (1, 2), (0, 1)]
    with sessions() as session:
        owners = {url: feed_id for url, feed_id in session.execute(select(Article.url, Article.feed_id))}
    assert owners == {
        story: ids[0],
        "https://news.example.com/2025/a-only": ids[0],
        "https://news.example.com/2025/old": ids[2],
        "https://b.example.org/7": ids[1],
    }
    links = article_links(sessions)
    assert len(links) == 1 + 2 + 3 + 1  # the earlier one, then one per new entry of each feed
    assert {(feed_id, key) for _, feed_id, key in links} >= {(ids[1], "b-1"), (ids[2], "tag:wire,2025:7")}
    # The same batch again stores and links nothing.
    with sessions.begin() as session:
        again = store_many(session, batch, NOW, 10_000)
    assert [(result.new, result.linked) for result in again] == [(0, 0)] * 3


async def test_parse_workers_give_the_same_results_as_a_thread(sqlite_sessions, server, client) -> None:
    server.set_feed("/news.xml", rss_document([story(n) for n in range(1, 6)]))
    server.set_feed("/page.html", b"<!doctype html><html><body>Not a feed</body></html>", content_type="text/html")
    names = ("news", "page")
    results = {}
    for workers in (0, 1):
        for name in names:
            add_feed(sqlite_sessions, f"{name}-{workers}", server.url(f"/{name}.{'xml' if name == 'news' else 'html'}"))
        poll = PollSettings(interval="15m", timeout="5s", parse_workers=workers)
        parser = Parser(workers)
        try:
            polled = await refresh_feeds(sqlite_sessions, client, poll, NOW, parser=parser)
            assert bool(parser.worker_pids()) == (workers > 0)
        finally:
            parser.shutdown()
        results[workers] = {
            r.feed_name.rsplit("-", 1)[0]: (r.outcome, r.entries, r.new_articles + r.linked, r.error) for r in polled
        }
    assert results[1] == results[0]
    assert results[0]["news"] == (FetchKind.NEW_CONTENT, 5, 5, None)
    assert results[0]["page"][0] == "parse_error" and "an HTML page" in (results[0]["page"][3] or "")


async def test_a_dead_parse_worker_costs_a_fresh_pool_not_a_feed() -> None:
    document = rss_document([story(1)])
    parser = Parser(1)
    try:
        parsed = await parser.parse(document, url="http://x/feed", headers={})
        for pid in parser.worker_pids():
            os.kill(pid, signal.SIGKILL)
        # Whether or not the pool has noticed yet, the document is parsed (in a thread if need be).
        again = await parser.parse(document, url="http://x/feed", headers={})
        assert again == parsed and len(parsed.entries) == 1
        fresh = await parser.parse(document, url="http://x/feed", headers={})
        assert fresh == parsed and parser.worker_pids()
    finally:
        parser.shutdown()
