"""Hostile answers from feed servers: validators, cookies, Retry-After, documents that are too
slow to parse or that take a parse worker down. Each feed keeps being polled; the others with it
are untouched."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from support.feedserver import FeedItem, rss_document

from monitor.alerts import channel, slack
from monitor.backoff import retry_after_s
from monitor.config import PollSettings
from monitor.ingest.fetch import FetchKind, FetchLimits, make_http_client
from monitor.ingest.parse import FeedParseError
from monitor.ingest.parse_pool import Parser
from monitor.ingest.refresh import refresh_feeds
from monitor.store.models import Article, Feed

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
POLL = PollSettings(interval="15m", timeout="5s", parse_workers=0)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_http_client(FetchLimits.from_settings(POLL)) as http:
        yield http


def healthy(name: str) -> bytes:
    return rss_document(
        [FeedItem(f"{name} {n}", link=f"https://{name}.example.com/{n}", guid=f"{name}-{n}") for n in (1, 2)]
    )


NUL_GUID = b"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Nul</title>
<item><title>Nul guid</title><guid isPermaLink="false">g\x00uid</guid><description>Text.</description></item>
</channel></rss>"""


async def test_hostile_validators_never_stop_a_feed_and_never_touch_the_batch(sessions, server, client) -> None:
    long_path = "/" + "n" * 2100 + ".xml"
    server.set_feed("/good-1.xml", healthy("good1"))
    server.set_feed("/good-2.xml", healthy("good2"))
    server.set_feed("/latin-etag.xml", healthy("latin"), etag='"caf\u00e9"')
    server.set_feed("/long-etag.xml", healthy("longetag"), etag='"' + "e" * 600 + '"')
    server.set_feed("/long-date.xml", healthy("longdate"), last_modified="Mon, " + "x" * 300)
    server.set_feed(long_path, healthy("moved"))
    server.set_redirect("/moved.xml", long_path, status=301)
    server.set_feed("/nul.xml", NUL_GUID)
    server.set_feed("/stored-bad.xml", healthy("stored"))
    names = ["good-1", "good-2", "latin-etag", "long-etag", "long-date", "moved", "nul", "stored-bad"]
    with sessions.begin() as session:
        for name in names:
            # "stored-bad" was polled by an older version that kept a non-ASCII ETag.
            etag = '"\u00e9t\u00e9"' if name == "stored-bad" else None
            session.add(Feed(name=name, url=server.url(f"/{name}.xml"), etag=etag, next_poll_at=NOW))

    first = {r.feed_name: r for r in await refresh_feeds(sessions, client, POLL, NOW)}
    second = {r.feed_name: r for r in await refresh_feeds(sessions, client, POLL, NOW + timedelta(days=1))}

    assert {name: (r.outcome, r.error) for name, r in first.items()} == {
        name: (FetchKind.NEW_CONTENT, None) for name in names
    }
    # The second poll is a conditional GET wherever a validator was kept: ok either way.
    assert {name: r.error for name, r in second.items()} == dict.fromkeys(names)
    assert all(r.outcome in (FetchKind.NEW_CONTENT, FetchKind.NOT_MODIFIED) for r in second.values())
    with sessions() as session:
        feeds = {feed.name: feed for feed in session.scalars(select(Feed))}
        keys = {(a.feed_id, a.entry_key) for a in session.scalars(select(Article))}
    # Good validators are kept, bad ones dropped; the moved URL that does not fit is not kept.
    assert feeds["good-1"].etag and feeds["good-1"].last_modified
    assert feeds["latin-etag"].etag is None and feeds["long-etag"].etag is None
    assert feeds["long-date"].last_modified is None and feeds["long-date"].etag
    assert feeds["moved"].url == server.url("/moved.xml")
    assert feeds["stored-bad"].etag and feeds["stored-bad"].etag.isascii()
    # The NUL guid is stored under a key that can be; the healthy feeds have all their entries.
    assert any(fid == feeds["nul"].id and key.startswith("sha256:") for fid, key in keys)
    for name, site in (("good-1", "good1"), ("good-2", "good2")):
        assert {(feeds[name].id, f"{site}-{n}") for n in (1, 2)} <= keys
    # What was sent back on the second poll was sendable: no request carried a non-ASCII value.
    for request in server.requests:
        assert all(value.isascii() for value in request.headers.values())


async def test_no_cookie_is_kept_or_sent_back(sqlite_sessions, server, client) -> None:
    server.set_feed("/a.xml", healthy("a"), headers={"Set-Cookie": "session=tracked; Path=/"})
    server.set_feed("/b.xml", healthy("b"), headers={"Set-Cookie": "other=1; Path=/; Max-Age=99999"})
    with sqlite_sessions.begin() as session:
        session.add_all([Feed(name=n, url=server.url(f"/{n}.xml"), next_poll_at=NOW) for n in ("a", "b")])
    for day in range(3):
        await refresh_feeds(sqlite_sessions, client, POLL, NOW + timedelta(days=day))
    assert len(server.requests) == 6
    assert all("cookie" not in request.headers for request in server.requests)
    assert len(client.cookies.jar) == 0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("\u00b2", None),  # superscript two: str.isdigit() says yes, float() says no
        ("\u0663", None),  # Arabic-Indic three: a digit to Python, not to HTTP
        ("1.5", None),
        ("-5", None),
        ("1e3", None),
        ("soon", None),
        ("", None),
        ("Sat, 01 Mar 2025 12:01:30 GMT", 90.0),
        ("Fri, 28 Feb 2025 12:00:00 GMT", 0.0),
        ("Sat, 01 Mar 99999 12:00:00 GMT", None),
        ("9" * 5000, float("9" * 5000)),
    ],
)
def test_retry_after_is_read_one_way(value: str, seconds: float | None) -> None:
    assert retry_after_s(value, NOW) == seconds
    # Slack and webhooks use the same function, so their rules cannot drift apart again.
    assert channel.retry_after_s is retry_after_s and slack.retry_after_s is retry_after_s


async def test_a_non_ascii_retry_after_is_a_plain_retry(sqlite_sessions, server, client) -> None:
    server.set_response("/busy.xml", 503, {"Retry-After": "\u00b2"})
    server.set_feed("/fine.xml", healthy("fine"))
    with sqlite_sessions.begin() as session:
        session.add_all([Feed(name=n, url=server.url(f"/{n}.xml"), next_poll_at=NOW) for n in ("busy", "fine")])
    results = {r.feed_name: r for r in await refresh_feeds(sqlite_sessions, client, POLL, NOW)}
    assert (results["busy"].outcome, results["busy"].error) == (FetchKind.RETRY_LATER, "fetch: 503 service unavailable")
    assert results["fine"].new_articles == 2


# --------------------------------------------------------------------------- parsing limits


def slow_document() -> bytes:
    # About 2 MB of entries: several seconds of feedparser's CPU.
    return rss_document(
        [FeedItem(f"t{n}", guid=f"g{n}", description="<p>word <b>x</b></p> " * 20) for n in range(2000)]
    )


async def test_only_the_first_entries_are_read(sqlite_sessions, server, client) -> None:
    server.set_feed("/long.xml", rss_document([FeedItem(f"n{n}", guid=f"g{n}") for n in range(10)]))
    with sqlite_sessions.begin() as session:
        session.add(Feed(name="long", url=server.url("/long.xml"), next_poll_at=NOW))
    (result,) = await refresh_feeds(sqlite_sessions, client, POLL.model_copy(update={"max_entries": 3}), NOW)
    assert result.entries == 3 and result.new_articles == 3


@pytest.mark.slow  # real timers or a process of its own: the full suite runs it, the fast tier does not
async def test_a_document_past_the_parse_timeout_is_stopped_not_waited_for() -> None:
    document = slow_document()
    parser = Parser(1, timeout_s=0.5)
    try:
        started = time.perf_counter()
        with pytest.raises(FeedParseError, match=r"parse: took longer than 0.5s; stopped"):
            await parser.parse(document, url="http://x/feed", headers={})
        # Worker start-up plus the timeout, far below the parse itself.
        assert time.perf_counter() - started < 4.0
        small = await parser.parse(rss_document([FeedItem("ok", guid="1")]), url="http://x/", headers={})
        assert len(small.entries) == 1  # a new worker took the stopped one's place
    finally:
        parser.shutdown()


def _cpu_ticks(pids: list[int]) -> int:
    """The CPU time the processes PIDS have used so far, in clock ticks (/proc/PID/stat)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime and stime, the 14th and 15th fields
    return total


async def test_a_document_that_kills_its_worker_is_never_parsed_in_the_service() -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs Linux's /proc to see the worker at work")
    parser = Parser(1, timeout_s=60)
    try:
        # Start the worker, then parse a slow document and kill the worker in the middle of it:
        # once it has spent a twentieth of a second of CPU on it (seconds are needed in all).
        await parser.parse(rss_document([FeedItem("warm", guid="1")]), url="http://x/", headers={})
        before = _cpu_ticks(parser.worker_pids())
        parsing = asyncio.ensure_future(parser.parse(slow_document(), url="http://x/feed", headers={}))
        deadline = time.monotonic() + 30
        while _cpu_ticks(parser.worker_pids()) < before + os.sysconf("SC_CLK_TCK") // 20:
            assert time.monotonic() < deadline, "the worker never started on the document"
            await asyncio.sleep(0.01)
        for pid in parser.worker_pids():
            os.kill(pid, signal.SIGKILL)
        started = time.perf_counter()
        with pytest.raises(FeedParseError, match=r"parse: the parser process died"):
            await parsing
        # Had it been parsed again here, it would have taken seconds.
        assert time.perf_counter() - started < 2.0
    finally:
        parser.shutdown()
