"""A hostile world, through the real command line: `monitor poll --once`, twice, against servers on
127.0.0.1, on SQLite and PostgreSQL.

One feed server carries healthy feeds beside hostile ones: links that disguise loopback (a port
with a sign, a port in Arabic-Indic digits, an IDNA 2008 name, a name that rebinds, a NAT64
name), redirects to another internal server, a non-ASCII ETag, validators longer than their
columns, a NUL in a guid, `Retry-After: ²` and cookies. A second server stands for what an
attacker wants to reach; it must hear nothing. The healthy feeds must come out as if the hostile
ones were not there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select
from support.feedserver import FeedItem, FeedServer, rss_document
from support.resolver import ScriptedResolver

from monitor.cli import main
from monitor.store.db import make_engine, make_session_factory
from monitor.store.models import Article, Feed

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("exported_models")]

REPO = Path(__file__).resolve().parents[1]
ARABIC_INDIC = str.maketrans("0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669")
REFUSED = "fetch: refused 127.0.0.1: not a public address"
NUL_GUID = b"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Nul</title>
<item><title>Nul guid</title><guid isPermaLink="false">g\x00uid</guid><description>Text.</description></item>
</channel></rss>"""


def healthy(name: str) -> bytes:
    items = [FeedItem(f"{name} report {n}", link=f"https://{name}.example.com/{n}", guid=f"{name}-{n}") for n in (1, 2)]
    return rss_document(items)


@pytest.fixture
def internal() -> FeedServer:
    with FeedServer() as running:
        running.set_feed("/admin", b"<html><body><p>secret admin page</p></body></html>", content_type="text/html")
        running.set_feed("/feed.xml", rss_document([FeedItem("Internal", guid="internal-1")]))
        yield running


def poll_once(config: Path) -> str:
    result = CliRunner().invoke(main, ["poll", "--once", "--config", str(config)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output


def test_a_hostile_world_reaches_nothing_internal_and_leaves_healthy_feeds_alone(
    tmp_path, database_url, server, internal, monkeypatch
) -> None:
    port = internal.base_url.rsplit(":", 1)[1]
    resolver = ScriptedResolver(monkeypatch)
    resolver.answer("ss.attacker.test", "93.184.216.34")  # what IDNA 2003 makes of "ß"
    resolver.answer("xn--zca.attacker.test", "127.0.0.1")  # what IDNA 2008 (httpx) makes of it
    resolver.answer("rebind.test", "93.184.216.34", "127.0.0.1")
    resolver.answer("nat64.test", "64:ff9b::7f00:1")
    disguised = [
        f"http://127.0.0.1:+{port}/admin",
        f"http://localhost:{port.translate(ARABIC_INDIC)}/admin",
        f"http://ß.attacker.test:{port}/admin",
        f"http://rebind.test:{port}/admin",
        f"http://nat64.test:{port}/admin",
    ]
    server.set_feed("/healthy-1.xml", healthy("one"))
    server.set_feed("/healthy-2.xml", healthy("two"))
    server.set_feed(
        "/links.xml",
        rss_document(
            [
                FeedItem(f"Link {n}", link=link, guid=f"link-{n}", description="Teaser.")
                for n, link in enumerate(disguised)
            ]
        ),
    )
    server.set_redirect("/redirect.xml", internal.url("/feed.xml"), status=302)
    server.set_redirect("/moved.xml", internal.url("/feed.xml"), status=301)
    server.set_feed("/latin-etag.xml", healthy("latin"), etag='"caf\u00e9"', headers={"Set-Cookie": "s=1; Path=/"})
    server.set_feed(
        "/long-validators.xml", healthy("long"), etag='"' + "e" * 600 + '"', last_modified="Mon, " + "x" * 300
    )
    server.set_feed("/nul.xml", NUL_GUID)
    server.set_response("/busy.xml", 503, {"Retry-After": "\u00b2"})
    names = ["healthy-1", "healthy-2", "links", "redirect", "moved", "latin-etag", "long-validators", "nul", "busy"]
    feeds = [{"name": name, "url": server.url(f"/{name}.xml"), "full_text": name == "links"} for name in names]
    config = tmp_path / "monitor.yaml"
    settings = {
        "database_url": database_url,
        "seeds_dir": str(REPO / "seeds"),
        "cache_dir": str(tmp_path / "cache"),
        "feeds": feeds,
        "poll": {"timeout": "3s"},
        "alerts": {"console": {"enabled": False}},
    }
    config.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")

    first = poll_once(config)
    second = poll_once(config)

    # Nothing internal was reached, by any link or redirect, in either poll.
    assert internal.requests == []
    assert resolver.lookups("rebind.test") == 1
    # No cookie went back, and every value sent back was sendable.
    for request in server.requests:
        assert "cookie" not in request.headers
        assert all(value.isascii() for value in request.headers.values())
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            rows = {feed.name: feed for feed in session.scalars(select(Feed))}
            articles = {(a.feed_id, a.entry_key): a for a in session.scalars(select(Article))}
    finally:
        engine.dispose()
    # Healthy feeds, and the hostile ones whose content is fine, are polled without an error.
    for name in ("healthy-1", "healthy-2", "links", "latin-etag", "long-validators", "nul"):
        assert (rows[name].consecutive_errors, rows[name].last_error) == (0, None), name
    for name, site in (("healthy-1", "one"), ("healthy-2", "two")):
        assert {(rows[name].id, f"{site}-{n}") for n in (1, 2)} <= set(articles)
    # The disguised links kept their teaser text; none became a stored URL to fetch later.
    for n in range(len(disguised)):
        article = articles[(rows["links"].id, f"link-{n}")]
        assert article.text == "Teaser."
    assert articles[(rows["links"].id, "link-0")].url is None and articles[(rows["links"].id, "link-1")].url is None
    # Redirects into the internal network: refused in the same words, and the feed is not moved.
    assert rows["redirect"].last_error == REFUSED and rows["moved"].last_error == REFUSED
    assert rows["moved"].url == server.url("/moved.xml")
    # Validators that cannot be sent back or stored are not kept; the NUL guid is stored hashed.
    assert rows["latin-etag"].etag is None and rows["long-validators"].etag is None
    assert rows["long-validators"].last_modified is None
    assert any(fid == rows["nul"].id and key.startswith("sha256:") for fid, key in articles)
    # Retry-After: ² is a plain retry, not a crash.
    assert rows["busy"].last_status == "retry_later" and rows["busy"].last_error == "fetch: 503 service unavailable"
    assert "refresh:" not in first + second  # no feed ended at the crash boundary
