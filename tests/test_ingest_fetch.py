"""fetch_feed against a real local HTTP server: every HTTP situation becomes an outcome."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from support.feedserver import FeedItem, FeedServer, rss_document

from monitor.config import PollSettings
from monitor.ingest.fetch import FetchKind, FetchLimits, fetch_feed, make_http_client

LIMITS = FetchLimits(timeout_s=5.0, max_bytes=200_000, max_redirects=5, user_agent="monitor-test/1.0")
FEED = rss_document([FeedItem("One", link="http://example.com/1", guid="1")])


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_http_client(LIMITS) as http:
        yield http


async def fetch(client: httpx.AsyncClient, url: str, limits: FetchLimits = LIMITS, **validators: str | None):
    return await fetch_feed(
        client,
        url,
        etag=validators.get("etag"),
        last_modified=validators.get("last_modified"),
        limits=limits,
    )


def test_limits_come_from_poll_settings() -> None:
    limits = FetchLimits.from_settings(PollSettings(timeout="7s", max_bytes=1234, max_redirects=2))
    assert (limits.timeout_s, limits.max_bytes, limits.max_redirects) == (7.0, 1234, 2)
    assert limits.user_agent.startswith("monitor/")


async def test_new_content_carries_body_validators_and_headers(server: FeedServer, client) -> None:
    server.set_feed("/feed.xml", FEED, headers={"X-Extra": "yes"})
    outcome = await fetch(client, server.url("/feed.xml"))
    assert outcome.kind is FetchKind.NEW_CONTENT
    assert outcome.ok and outcome.error is None
    assert outcome.status == 200
    assert outcome.content == FEED
    assert outcome.etag and outcome.etag.startswith('"')
    assert outcome.last_modified and outcome.last_modified.endswith("GMT")
    assert outcome.headers["x-extra"] == "yes"
    assert outcome.headers["content-type"].startswith("application/rss+xml")
    assert outcome.url == server.url("/feed.xml") and outcome.moved_to is None
    assert outcome.duration_ms > 0
    sent = server.requests_for("/feed.xml")[0].headers
    assert sent["user-agent"] == "monitor-test/1.0"
    assert "application/rss+xml" in sent["accept"]
    assert "if-none-match" not in sent and "if-modified-since" not in sent


async def test_conditional_get_gives_not_modified_until_the_feed_changes(server: FeedServer, client) -> None:
    server.set_feed("/feed.xml", FEED)
    first = await fetch(client, server.url("/feed.xml"))

    second = await fetch(client, server.url("/feed.xml"), etag=first.etag, last_modified=first.last_modified)
    assert second.kind is FetchKind.NOT_MODIFIED
    assert second.status == 304 and second.content == b""
    assert (second.etag, second.last_modified) == (first.etag, first.last_modified)
    sent = server.requests_for("/feed.xml")[1].headers
    assert sent["if-none-match"] == first.etag
    assert sent["if-modified-since"] == first.last_modified

    changed = rss_document([FeedItem("Two", link="http://example.com/2", guid="2")])
    server.set_feed("/feed.xml", changed)
    third = await fetch(client, server.url("/feed.xml"), etag=first.etag, last_modified=first.last_modified)
    assert third.kind is FetchKind.NEW_CONTENT
    assert third.content == changed and third.etag != first.etag


async def test_last_modified_alone_is_enough_for_304(server: FeedServer, client) -> None:
    stamp = format_datetime(datetime(2024, 5, 1, tzinfo=UTC), usegmt=True)
    server.set_feed("/feed.xml", FEED, etag=False, last_modified=stamp)
    first = await fetch(client, server.url("/feed.xml"))
    assert first.etag is None and first.last_modified == stamp
    again = await fetch(client, server.url("/feed.xml"), last_modified=first.last_modified)
    assert again.kind is FetchKind.NOT_MODIFIED
    assert again.last_modified == stamp


async def test_announced_body_over_the_cap_is_refused(server: FeedServer, client) -> None:
    server.set_feed("/big.xml", b"x" * (LIMITS.max_bytes + 1))
    outcome = await fetch(client, server.url("/big.xml"))
    assert outcome.kind is FetchKind.ERROR
    assert outcome.error == f"fetch: body exceeds the {LIMITS.max_bytes} byte limit"
    assert outcome.content == b""


async def test_unannounced_body_is_cut_off_while_streaming(server: FeedServer, client) -> None:
    # 64 MB offered without a Content-Length: the cap must stop reading long before the end.
    server.set_stream("/endless.xml", b"<rss>" + b"y" * 65_531, repeat=1024)
    started = time.perf_counter()
    outcome = await fetch(client, server.url("/endless.xml"))
    assert outcome.kind is FetchKind.ERROR
    assert outcome.error is not None and "byte limit" in outcome.error
    assert time.perf_counter() - started < 3


async def test_gzip_body_is_inflated(server: FeedServer, client) -> None:
    server.set_feed("/feed.xml", FEED, gzip=True)
    outcome = await fetch(client, server.url("/feed.xml"))
    assert outcome.kind is FetchKind.NEW_CONTENT
    assert outcome.content == FEED
    assert "gzip" in server.requests_for("/feed.xml")[0].headers["accept-encoding"]


async def test_gzip_bomb_is_stopped_by_the_cap_after_decompression(server: FeedServer, client) -> None:
    bomb = gzip.compress(b"\0" * 50_000_000)  # about 50 KB on the wire
    assert len(bomb) < LIMITS.max_bytes
    server.set_response("/bomb.xml", 200, {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}, bomb)
    outcome = await fetch(client, server.url("/bomb.xml"))
    assert outcome.kind is FetchKind.ERROR
    assert outcome.error == f"fetch: body exceeds the {LIMITS.max_bytes} byte limit"


async def test_corrupt_gzip_is_an_error(server: FeedServer, client) -> None:
    server.set_response("/bad.xml", 200, {"Content-Encoding": "gzip"}, b"not gzip at all")
    outcome = await fetch(client, server.url("/bad.xml"))
    assert outcome.kind is FetchKind.ERROR
    assert outcome.error is not None and outcome.error.startswith("fetch: cannot decode body")


async def test_hanging_server_times_out(server: FeedServer) -> None:
    server.set_hang("/slow.xml", seconds=10)
    limits = FetchLimits(timeout_s=0.3, max_bytes=1000, max_redirects=5, user_agent="t")
    started = time.perf_counter()
    async with make_http_client(limits) as client:
        outcome = await fetch(client, server.url("/slow.xml"), limits=limits)
    assert outcome.kind is FetchKind.ERROR
    assert outcome.error == "fetch: timed out after 0.3s"
    assert time.perf_counter() - started < 2


async def test_default_timeout_message_reads_in_whole_seconds() -> None:
    limits = FetchLimits.from_settings(PollSettings())
    assert f"fetch: timed out after {limits.timeout_s:g}s" == "fetch: timed out after 20s"


async def test_429_with_retry_after_seconds(server: FeedServer, client) -> None:
    server.set_response("/feed.xml", 429, {"Retry-After": "120"})
    outcome = await fetch(client, server.url("/feed.xml"))
    assert outcome.kind is FetchKind.RETRY_LATER
    assert outcome.status == 429
    assert outcome.retry_after_s == 120
    assert outcome.error == "fetch: 429 too many requests (retry after 120s)"


async def test_503_with_retry_after_http_date(server: FeedServer, client) -> None:
    when = datetime.now(UTC) + timedelta(minutes=10)
    server.set_response("/feed.xml", 503, {"Retry-After": format_datetime(when, usegmt=True)})
    outcome = await fetch(client, server.url("/feed.xml"))
    assert outcome.kind is FetchKind.RETRY_LATER
    assert outcome.retry_after_s is not None and 590 <= outcome.retry_after_s <= 600


async def test_429_without_usable_retry_after(server: FeedServer, client) -> None:
    server.set_response("/feed.xml", 429, {"Retry-After": "soon-ish"})
    outcome = await fetch(client, server.url("/feed.xml"))
    assert outcome.kind is FetchKind.RETRY_LATER
    assert outcome.retry_after_s is None
    assert outcome.error == "fetch: 429 too many requests"


async def test_410_is_gone(server: FeedServer, client) -> None:
    server.set_response("/feed.xml", 410)
    outcome = await fetch(client, server.url("/feed.xml"))
    assert outcome.kind is FetchKind.GONE
    assert outcome.error == "fetch: 410 gone"


@pytest.mark.parametrize(
    ("status", "message"),
    [(404, "fetch: 404 not found"), (500, "fetch: 500 internal server error"), (403, "fetch: 403 forbidden")],
)
async def test_other_statuses_are_errors(server: FeedServer, client, status: int, message: str) -> None:
    server.set_response("/feed.xml", status, body="oops")
    outcome = await fetch(client, server.url("/feed.xml"))
    assert outcome.kind is FetchKind.ERROR
    assert outcome.status == status
    assert outcome.error == message
    assert outcome.content == b""


async def test_unknown_path_is_404(server: FeedServer, client) -> None:
    outcome = await fetch(client, server.url("/nothing-here"))
    assert (outcome.kind, outcome.error) == (FetchKind.ERROR, "fetch: 404 not found")


async def test_permanent_redirect_reports_the_new_address(server: FeedServer, client) -> None:
    server.set_redirect("/old.xml", "/new.xml", status=301)
    server.set_feed("/new.xml", FEED)
    outcome = await fetch(client, server.url("/old.xml"))
    assert outcome.kind is FetchKind.NEW_CONTENT
    assert outcome.content == FEED
    assert outcome.url == server.url("/new.xml")
    assert outcome.moved_to == server.url("/new.xml")


async def test_308_is_permanent_too(server: FeedServer, client) -> None:
    server.set_redirect("/old.xml", "/new.xml", status=308)
    server.set_feed("/new.xml", FEED)
    outcome = await fetch(client, server.url("/old.xml"))
    assert outcome.moved_to == server.url("/new.xml")


async def test_temporary_redirect_is_followed_but_not_a_move(server: FeedServer, client) -> None:
    server.set_redirect("/old.xml", "/new.xml", status=302)
    server.set_feed("/new.xml", FEED)
    outcome = await fetch(client, server.url("/old.xml"))
    assert outcome.kind is FetchKind.NEW_CONTENT
    assert outcome.url == server.url("/new.xml")
    assert outcome.moved_to is None


async def test_permanent_then_temporary_moves_only_to_the_permanent_target(server: FeedServer, client) -> None:
    server.set_redirect("/a.xml", "/b.xml", status=301)
    server.set_redirect("/b.xml", "/c.xml", status=302)
    server.set_feed("/c.xml", FEED)
    outcome = await fetch(client, server.url("/a.xml"))
    assert outcome.url == server.url("/c.xml")
    assert outcome.moved_to == server.url("/b.xml")


async def test_redirect_loop_is_an_error(server: FeedServer, client) -> None:
    server.set_redirect("/loop.xml", "/loop.xml", status=302)
    outcome = await fetch(client, server.url("/loop.xml"))
    assert outcome.kind is FetchKind.ERROR
    assert outcome.error == "fetch: too many redirects (more than 5)"


async def test_connection_refused(client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = await fetch(client, f"http://127.0.0.1:{port}/feed.xml")
    assert outcome.kind is FetchKind.ERROR
    assert outcome.status is None
    assert outcome.error is not None and outcome.error.startswith("fetch: cannot connect: ")


@pytest.mark.parametrize("url", ["ftp://example.com/feed", "not a url", "http://"])
async def test_unusable_url_is_an_error(client, url: str) -> None:
    outcome = await fetch(client, url)
    assert outcome.kind is FetchKind.ERROR
    assert outcome.error is not None and outcome.error.startswith("fetch: ")


@pytest.mark.parametrize(
    ("cache_control", "expected"),
    [("public, max-age=600", 600.0), ("max-age=0", 0.0), ("no-cache, max-age=600", None), (None, None)],
)
async def test_cache_control_max_age(server: FeedServer, client, cache_control: str | None, expected) -> None:
    server.set_feed("/feed.xml", FEED, headers={"Cache-Control": cache_control} if cache_control else None)
    outcome = await fetch(client, server.url("/feed.xml"))
    assert outcome.max_age_s == expected


async def test_expires_gives_the_freshness_when_there_is_no_max_age(server: FeedServer, client) -> None:
    # Measured against the server's own Date header (which the test server always sends).
    expires = format_datetime(datetime.now(UTC) + timedelta(minutes=30), usegmt=True)
    server.set_feed("/feed.xml", FEED, headers={"Expires": expires})
    freshness = (await fetch(client, server.url("/feed.xml"))).max_age_s
    assert freshness is not None and 1790 <= freshness <= 1800
    server.set_feed("/feed.xml", FEED, headers={"Expires": expires, "Cache-Control": "max-age=60"})
    assert (await fetch(client, server.url("/feed.xml"))).max_age_s == 60  # max-age wins
    server.set_feed("/feed.xml", FEED, headers={"Expires": "0"})
    assert (await fetch(client, server.url("/feed.xml"))).max_age_s == 0  # invalid: already stale


async def test_answers_without_a_used_body_leave_the_connection_open_for_the_next_request() -> None:
    """A 304, a 429 or a short error page is read to its end, so the connection is reused:
    a poll cycle where half the feeds answer 304 must not reconnect for each of them."""
    connections = 0
    answers = [
        b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n',
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 60\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops",
        b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: %d\r\n\r\n%s" % (len(FEED), FEED),
    ]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            for answer in answers * 2:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, make_http_client(LIMITS) as http:
        kinds = [(await fetch(http, f"http://127.0.0.1:{port}/feed.xml", etag='"v1"')).kind for _ in range(8)]
    assert kinds == [FetchKind.NOT_MODIFIED, FetchKind.RETRY_LATER, FetchKind.ERROR, FetchKind.NEW_CONTENT] * 2
    assert connections == 1
