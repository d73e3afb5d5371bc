"""The URL guard on real servers: disguised loopback links, IDNA, rebinding, redirects, NAT64.

Each test drives the real fetch code against FeedServer on 127.0.0.1 and asserts that the
internal server never saw a request, not only what the outcome says.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select
from support.feedserver import FeedItem, FeedServer, rss_document
from support.resolver import ScriptedResolver
from support.rows import refresh_feed

from monitor.config import PollSettings
from monitor.ingest.fetch import FetchKind, FetchLimits, fetch_feed, fetch_page, make_http_client
from monitor.ingest.parse import canonical_url
from monitor.ingest.refresh import refresh_feeds
from monitor.ingest.urlguard import is_public, strict_http_url
from monitor.store.models import Article, Feed

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
# parse_workers=0: documents are parsed in a thread, as the parse workers' own tests in
# test_ingest_health.py show they parse alike; a worker process would cost every refresh a process start.
POLL = PollSettings(interval="15m", timeout="2s", parse_workers=0)
LIMITS = FetchLimits.from_settings(POLL)
PAGE = b"<!doctype html><html><body><article><p>" + b"Internal admin page. " * 20 + b"</p></article></body></html>"
ARABIC_INDIC = str.maketrans("0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_http_client(LIMITS) as http:
        yield http


@pytest.fixture
def internal() -> AsyncIterator[FeedServer]:
    """A second server: what an attacker wants reached (an admin page, a metadata service)."""
    with FeedServer() as running:
        running.set_feed("/admin", PAGE, content_type="text/html")
        running.set_feed("/feed.xml", rss_document([FeedItem("Internal", guid="i1")]))
        yield running


def port_of(server: FeedServer) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


# --------------------------------------------------------------------------- 1. parsers disagree


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:+8080/x",
        "http://localhost:\u0668\u0660/x",
        "http://127.0.0.1:8080\u0660/x",
        "http://127.0.0.1:99999/x",
        "http://127.0.0.1: 80/x",
        "http://evil.example\\@127.0.0.1/x",
        "http://exa\u202emple.com/x",
        "http://exa mple.com/x",
        "http://example.com/\x1b[31m",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "http:///x",
    ],
)
def test_urls_the_parsers_read_differently_are_refused(url: str) -> None:
    assert strict_http_url(url) is None
    assert canonical_url(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a?b=1",
        "http://127.0.0.1:8080/x",
        "http://[::1]:80/",
        "https://straße.de/wahl",
        "HTTP://Example.COM",
    ],
)
def test_plain_urls_pass(url: str) -> None:
    assert strict_http_url(url) is not None and canonical_url(url) is not None


async def test_disguised_loopback_links_in_a_full_text_feed_are_never_fetched(
    sqlite_sessions, server, internal, client, monkeypatch
) -> None:
    port = port_of(internal)
    resolver = ScriptedResolver(monkeypatch)
    # IDNA 2003 (the standard library) reads "ß" as "ss", IDNA 2008 (httpx) as "xn--zca".
    resolver.answer("ss.attacker.test", "93.184.216.34")
    resolver.answer("xn--zca.attacker.test", "127.0.0.1")
    links = {
        "plus": f"http://127.0.0.1:+{port}/admin",
        "arabic": f"http://localhost:{str(port).translate(ARABIC_INDIC)}/admin",
        "idna": f"http://ß.attacker.test:{port}/admin",
    }
    items = [FeedItem(name, link=link, guid=name, description="Teaser.") for name, link in links.items()]
    server.set_feed("/full.xml", rss_document(items))
    server.set_feed("/plain.xml", rss_document([FeedItem("Healthy", link="https://news.example.com/1", guid="h1")]))
    with sqlite_sessions.begin() as session:
        session.add(Feed(name="full", url=server.url("/full.xml"), full_text=True, next_poll_at=NOW))
        session.add(Feed(name="plain", url=server.url("/plain.xml"), next_poll_at=NOW))

    results = {r.feed_name: r for r in await refresh_feeds(sqlite_sessions, client, POLL, NOW)}

    assert internal.requests == []
    assert results["full"].error is None and results["full"].new_articles == 3
    assert results["plain"].error is None and results["plain"].new_articles == 1
    with sqlite_sessions() as session:
        stored = {a.entry_key: a for a in session.scalars(select(Article))}
    assert {stored[name].text for name in links} == {"Teaser."}
    # A link no parser agrees on is not kept at all; the IDNA one is a fine URL, refused at connect.
    assert stored["plus"].url is None and stored["arabic"].url is None


# --------------------------------------------------------------------------- 2. and 3. the name


async def test_the_guard_resolves_the_name_httpx_connects_to(internal, client, monkeypatch) -> None:
    resolver = ScriptedResolver(monkeypatch)
    resolver.answer("ss.attacker.test", "93.184.216.34")
    resolver.answer("xn--zca.attacker.test", "127.0.0.1")
    page = await fetch_page(
        client, f"http://ß.attacker.test:{port_of(internal)}/admin", limits=LIMITS, allow_private=False
    )
    assert page.kind is FetchKind.ERROR and page.error == "fetch: refused xn--zca.attacker.test: not a public address"
    assert internal.requests == []


async def test_a_rebinding_name_is_resolved_once_and_the_checked_address_is_used(internal, client, monkeypatch) -> None:
    resolver = ScriptedResolver(monkeypatch)
    # Public when checked, loopback for every lookup after: a check that resolves on its own is walked past.
    resolver.answer("rebind.test", "93.184.216.34", "127.0.0.1")
    await fetch_page(client, f"http://rebind.test:{port_of(internal)}/admin", limits=LIMITS, allow_private=False)
    # Whatever the public address answered (nothing reaches it from a test machine), the
    # internal server heard nothing, and the name was looked up once.
    assert internal.requests == []
    assert resolver.lookups("rebind.test") == 1


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("64:ff9b:1::a00:1", False),  # local-use NAT64 of 10.0.0.1
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:c0a8:101::1", False),  # 6to4 of 192.168.1.1
        ("::7f00:1", False),  # IPv4-compatible 127.0.0.1
        ("::ffff:0:7f00:1", False),  # IPv4-translated 127.0.0.1
        ("::ffff:127.0.0.1", False),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo
        ("fec0::1", False),  # site-local
        ("ff02::1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("2606:4700:4700::1111", True),
        ("93.184.216.34", True),
    ],
)
def test_embedded_private_addresses_are_private(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


async def test_a_nat64_form_of_loopback_is_refused_before_connecting(client, monkeypatch) -> None:
    resolver = ScriptedResolver(monkeypatch)
    resolver.answer("nat64.test", "64:ff9b::7f00:1")
    page = await fetch_page(client, "http://nat64.test/admin", limits=LIMITS, allow_private=False)
    assert page.error == "fetch: refused nat64.test: not a public address"


# --------------------------------------------------------------------------- 4. redirects


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("target", ["a feed", "a 404", "nothing listening"])
async def test_a_feed_redirect_to_another_private_origin_is_refused_alike(server, internal, client, target) -> None:
    where = {
        "a feed": internal.url("/feed.xml"),
        "a 404": internal.url("/missing"),
        "nothing listening": f"http://127.0.0.1:{free_port()}/feed.xml",
    }[target]
    server.set_redirect("/feed.xml", where, status=302)
    outcome = await fetch_feed(client, server.url("/feed.xml"), etag=None, last_modified=None, limits=LIMITS)
    # The same words whether the port is open, answers 404 or is closed: no map of internal ports.
    assert outcome.kind is FetchKind.ERROR and outcome.error == "fetch: refused 127.0.0.1: not a public address"
    assert internal.requests == []


async def test_a_permanent_redirect_to_a_private_origin_does_not_move_the_feed(
    sqlite_sessions, server, internal, client
) -> None:
    server.set_redirect("/feed.xml", internal.url("/feed.xml"), status=301)
    with sqlite_sessions.begin() as session:
        feed = Feed(name="moved", url=server.url("/feed.xml"), config_url=server.url("/feed.xml"), next_poll_at=NOW)
        session.add(feed)
    result = await refresh_feed(sqlite_sessions, client, feed.id, POLL, NOW)
    assert result.outcome is FetchKind.ERROR and internal.requests == []
    with sqlite_sessions() as session:
        assert session.get(Feed, feed.id).url == server.url("/feed.xml")


async def test_redirects_within_the_configured_origin_and_allowed_ones_are_followed(server, internal, client) -> None:
    server.set_feed("/new.xml", rss_document([FeedItem("Here", guid="n1")]))
    server.set_redirect("/old.xml", "/new.xml", status=301)
    same = await fetch_feed(client, server.url("/old.xml"), etag=None, last_modified=None, limits=LIMITS)
    assert same.kind is FetchKind.NEW_CONTENT and same.moved_to == server.url("/new.xml")
    server.set_redirect("/away.xml", internal.url("/feed.xml"), status=302)
    allowed = await fetch_feed(
        client, server.url("/away.xml"), etag=None, last_modified=None, limits=LIMITS, allow_private=True
    )
    assert allowed.kind is FetchKind.NEW_CONTENT and len(internal.requests) == 1


async def test_a_moved_feed_is_trusted_by_its_configured_origin_only(server, internal, client) -> None:
    # The feed moved (a 301, checked then) from its configured address to another host. Its
    # exemption stays with the configured origin: the moved-to host must be public on every poll,
    # or a name that rebinds after the move would reach the internal network.
    outcome = await fetch_feed(
        client,
        internal.url("/feed.xml"),
        etag=None,
        last_modified=None,
        limits=LIMITS,
        configured_url=server.url("/feed.xml"),
    )
    assert outcome.error == "fetch: refused 127.0.0.1: not a public address"
    assert internal.requests == []
