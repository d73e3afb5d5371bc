"""Hostile and broken input, all in ONE poll beside healthy feeds: each case has its outcome, and
the healthy feeds polled with it are stored exactly as if the others did not exist."""

from __future__ import annotations

import gzip
import ipaddress
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select
from support.feedserver import FeedItem, rss_document

from monitor.config import PollSettings
from monitor.ingest.fetch import (
    FetchKind,
    FetchLimits,
    fetch_page,
    make_http_client,
)
from monitor.ingest.refresh import refresh_feeds
from monitor.ingest.urlguard import refusal
from monitor.store.models import Article, Feed

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
# parse_workers=0: documents are parsed in a thread, as the parse workers' own tests in
# test_ingest_health.py show they parse alike; a worker process would cost every refresh a process start.
POLL = PollSettings(
    interval="15m", timeout="1s", max_bytes=300_000, max_entry_chars=1000, allow_private_addresses=True,
    concurrency=30, per_host_concurrency=30, parse_workers=0,
)  # fmt: skip

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>Laughs</title>
<item><title>Bomb &lol5;</title><guid>bomb</guid><description>Read &xxe; here</description></item>
</channel></rss>"""

RAW_ITEMS = b"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Raw</title>
<item><title>No date</title><guid isPermaLink="false">d1</guid><pubDate>yesterday-ish</pubDate></item>
<item><title>Impossible date</title><guid isPermaLink="false">d2</guid><pubDate>2025-02-31T10:00:00Z</pubDate></item>
<item><title>No guid and no link</title><description>Only words.</description></item>
<item><title>Twice</title><guid isPermaLink="false">dup</guid></item>
<item><title>Twice again</title><guid isPermaLink="false">dup</guid></item>
<item><title><![CDATA[<script>alert(1)</script><b>Bold</b> move]]></title><guid isPermaLink="false">x</guid>
<description>
<![CDATA[<p onclick="steal()">Hello <script>document.cookie</script>world</p><style>p{}</style>]]>
</description>
</item>
</channel></rss>"""


def good(name: str) -> bytes:
    return rss_document(
        [FeedItem(f"{name} story {n}", link=f"https://{name}.example.com/{n}", guid=f"{name}-{n}",
                  description=f"Healthy text {n}.") for n in range(1, 4)]
    )  # fmt: skip


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_http_client(FetchLimits.from_settings(POLL)) as http:
        yield http


async def test_hostile_feeds_in_one_poll_leave_the_healthy_ones_alone(sessions, server, client) -> None:
    cyrillic = "Выборы в Москве"
    routes = {
        "good-1": good("good1"),
        "good-2": good("good2"),
        "laughs": BILLION_LAUGHS,
        "raw": RAW_ITEMS,
        "cp1251-says-utf8": rss_document([FeedItem(cyrillic, guid="c1")], encoding="windows-1251"),
        "latin1-no-charset": rss_document(
            [FeedItem("Ação eleitoral", guid="l1")], encoding="latin-1", declared_encoding="utf-8"
        ),
        "enormous": rss_document(
            [FeedItem("Long", guid="long", description="word " * 5000), FeedItem("Short", guid="s")]
        ),
        "html-page": b"<!doctype html><html><body>Not a feed</body></html>",
    }
    for name, body in routes.items():
        content_type = "text/html" if name == "html-page" else "application/rss+xml"
        if name == "cp1251-says-utf8":
            content_type += "; charset=utf-8"
        server.set_feed(f"/{name}", body, content_type=content_type)
    server.set_feed("/too-big", b"<rss>" + b"x" * 400_000)
    server.set_stream("/endless", b"<rss>" + b"y" * 65_531, repeat=1000)
    server.set_response("/gzip-bomb", 200, {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"},
                        gzip.compress(b"<rss>" + b"\0" * 20_000_000))  # fmt: skip
    server.set_hang("/hang", seconds=10)
    names = [*routes, "too-big", "endless", "gzip-bomb", "hang"]
    with sessions.begin() as session:
        session.add_all(Feed(name=name, url=server.url(f"/{name}"), next_poll_at=NOW) for name in names)

    results = {result.feed_name: result for result in await refresh_feeds(sessions, client, POLL, NOW)}

    assert set(results) == set(names)
    with sessions() as session:
        feed_ids = {feed.name: feed.id for feed in session.scalars(select(Feed))}
        stored = list(session.scalars(select(Article).order_by(Article.id)))

    def texts(name: str) -> dict[str, Article]:
        return {a.entry_key: a for a in stored if a.feed_id == feed_ids[name]}

    # Healthy feeds: every entry, as written.
    for name, site in (("good-1", "good1"), ("good-2", "good2")):
        assert results[name].outcome is FetchKind.NEW_CONTENT and results[name].new_articles == 3
        assert [a.text for a in texts(name).values()] == ["Healthy text 1.", "Healthy text 2.", "Healthy text 3."]
        assert texts(name)[f"{site}-1"].title == f"{site} story 1"
    # Size caps, while streaming and after decompression; the total timeout.
    for name in ("too-big", "endless", "gzip-bomb"):
        assert results[name].error == "fetch: body exceeds the 300000 byte limit", name
    assert results["hang"].error == "fetch: timed out after 1s"
    assert results["html-page"].error == "parse: not a feed (an HTML page)"
    # Entity expansion and external entities: never expanded, never read.
    (laughs,) = texts("laughs").values()
    assert laughs.title == "Bomb &lol5;" and "lollol" not in laughs.title and "root:" not in laughs.text
    # Dates, guids, duplicates, markup.
    raw = texts("raw")
    assert raw["d1"].published_at is None and raw["d2"].published_at is None
    assert any(key.startswith("sha256:") and a.text == "Only words." for key, a in raw.items())
    assert raw["dup"].title == "Twice" and results["raw"].new_articles == 5
    assert raw["x"].title == "Bold move" and raw["x"].text == "Hello world"
    # Encodings: a wrong HTTP charset and undeclared Latin-1 both come out readable.
    assert texts("cp1251-says-utf8")["c1"].title == cyrillic
    assert texts("latin1-no-charset")["l1"].title == "Ação eleitoral"
    # An enormous entry is cut at poll.max_entry_chars and marked.
    enormous = texts("enormous")
    assert len(enormous["long"].text) == 1000 and enormous["long"].truncated
    assert not enormous["s"].truncated and results["enormous"].truncated == 1
    # Every failure is on its own feed row; the rest are fine.
    with sessions() as session:
        feeds = {feed.name: feed for feed in session.scalars(select(Feed))}
    for name in ("too-big", "endless", "gzip-bomb", "hang", "html-page"):
        assert feeds[name].consecutive_errors == 1 and feeds[name].last_error == results[name].error
    for name in ("good-1", "good-2", "laughs", "raw", "enormous"):
        assert feeds[name].last_status == "ok" and feeds[name].consecutive_errors == 0


ARTICLE = b"""<!doctype html><html><head><title>Page</title></head><body><article><h1>Page</h1>
<p>Investigators said on Monday that the intrusion into the registration system came from abroad.</p>
<p>The ministry confirmed that records of several hundred thousand voters were copied in the breach.</p>
<p>An independent review is expected before the end of the month, a spokesperson told reporters.</p>
</article></body></html>"""


async def test_article_pages_on_private_addresses_are_refused_by_default(sqlite_sessions, server, client) -> None:
    items = [FeedItem("Page", link=server.url("/page.html"), guid="p1", description="Teaser.")]
    server.set_feed("/feed.xml", rss_document(items))
    server.set_feed("/other.xml", good("other"))
    server.set_feed("/page.html", ARTICLE, content_type="text/html")
    with sqlite_sessions.begin() as session:
        session.add(Feed(name="full", url=server.url("/feed.xml"), full_text=True, next_poll_at=NOW))
        session.add(Feed(name="other", url=server.url("/other.xml"), next_poll_at=NOW))
    refusing = POLL.model_copy(update={"allow_private_addresses": False})

    results = await refresh_feeds(sqlite_sessions, client, refusing, NOW)

    assert all(result.error is None for result in results)
    assert server.requests_for("/page.html") == []  # never even asked
    with sqlite_sessions() as session:
        texts = {a.entry_key: a.text for a in session.scalars(select(Article))}
    assert texts["p1"] == "Teaser." and texts["other-1"] == "Healthy text 1."


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x", "http://localhost/x", "http://10.1.2.3/", "http://192.168.0.1/", "http://172.16.0.9/",
        "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://[fe80::1]/", "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/", "http://100.64.0.1/",
    ],
)  # fmt: skip
async def test_private_addresses_are_refused(url: str, client) -> None:
    limits = FetchLimits.from_settings(POLL)
    page = await fetch_page(client, url, limits=limits, allow_private=False)
    assert page.kind is FetchKind.ERROR and page.error is not None and page.error.startswith("fetch: refused ")


def test_public_addresses_pass_the_check() -> None:
    assert refusal("example.com", [ipaddress.ip_address("93.184.216.34")]) is None
    assert refusal("example.com", [ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946")]) is None


async def test_a_refused_page_is_an_error_outcome(server, client) -> None:
    server.set_feed("/page.html", ARTICLE, content_type="text/html")
    limits = FetchLimits.from_settings(POLL)
    refused = await fetch_page(client, server.url("/page.html"), limits=limits, allow_private=False)
    assert refused.kind is FetchKind.ERROR and refused.error is not None and "127.0.0.1" in refused.error
    allowed = await fetch_page(client, server.url("/page.html"), limits=limits, allow_private=True)
    assert allowed.kind is FetchKind.NEW_CONTENT and allowed.content == ARTICLE
