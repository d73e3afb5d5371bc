"""Real-world feed documents (kept outside the repository, in ../shared/feeds) through the
whole ingest path: served over HTTP, fetched, parsed and stored."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from support.feedserver import FeedItem, FeedServer, rss_document

from monitor.config import PollSettings
from monitor.ingest.fetch import FetchKind, FetchLimits, fetch_feed, make_http_client
from monitor.ingest.parse import parse_feed
from monitor.ingest.refresh import refresh_feeds
from monitor.store.models import Article, ArticleFeed, Feed

FEEDS = Path(__file__).parents[2] / "shared" / "feeds"
REAL = FEEDS / "real"
CORPUS = FEEDS / "feedparser-corpus"
ARTICLES = FEEDS / "articles-html"
POLL = PollSettings(timeout="10s")
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

_MEDIA_TYPES = {".atom": "application/atom+xml", ".rdf": "application/rdf+xml"}
_CHARSET_IN_NAME = re.compile(r"_(iso8859-\d+|windows-\d+)$")
_ITEM_TAG = re.compile(rb"<(?:[\w-]+:)?(?:item|entry)[\s>]")
_HEADER_LINE = re.compile(rb"^Header:\s+([^:]+):(.*)$", re.MULTILINE)


def real_feed_files() -> list[Path]:
    if not REAL.is_dir():
        pytest.skip(f"{REAL} is absent (real feeds live beside the clone, in ../shared/feeds)")
    return sorted(path for path in REAL.iterdir() if path.suffix in {".xml", ".rss", ".atom", ".rdf"})


def content_type_for(path: Path) -> str:
    """What the file name declares: the format by extension, the charset by suffix."""
    media_type = _MEDIA_TYPES.get(path.suffix, "application/rss+xml")
    match = _CHARSET_IN_NAME.search(path.stem)
    if match:
        return f"{media_type}; charset={match.group(1).replace('iso8859', 'iso-8859')}"
    return media_type


@pytest.fixture
def session_factory(sqlite_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    # The shared alembic-migrated SQLite database (tests/conftest.py).
    return sqlite_sessions


def test_content_type_from_file_name() -> None:
    assert content_type_for(Path("oren-ru-news_rss20_windows-1251.xml")) == "application/rss+xml; charset=windows-1251"
    assert content_type_for(Path("golem-de_rss20_iso8859-1.xml")) == "application/rss+xml; charset=iso-8859-1"
    assert content_type_for(Path("heise-developer.atom")) == "application/atom+xml"
    assert content_type_for(Path("orf-news_rss10.rdf")) == "application/rdf+xml"


@pytest.mark.slow  # reads a whole corpus: every real feed in ../shared/feeds/real
async def test_every_real_feed_fetches_and_parses(server: FeedServer) -> None:
    files = real_feed_files()
    limits = FetchLimits.from_settings(POLL)
    for path in files:
        server.set_feed(f"/{path.name}", path.read_bytes(), content_type=content_type_for(path))
    async with make_http_client(limits) as client:
        for path in files:
            url = server.url(f"/{path.name}")
            outcome = await fetch_feed(client, url, etag=None, last_modified=None, limits=limits)
            assert outcome.kind is FetchKind.NEW_CONTENT, (path.name, outcome.error)
            feed = parse_feed(outcome.content, url=outcome.url, headers=outcome.headers)
            items = len(_ITEM_TAG.findall(outcome.content))
            assert len(feed.entries) == items, path.name
            for entry in feed.entries:
                assert entry.key and entry.title, path.name
                assert "</" not in entry.title and "<p>" not in entry.text, path.name
                assert entry.url is None or entry.url.startswith(("http://", "https://")), path.name
                assert entry.published is None or entry.published.tzinfo is UTC, path.name


async def test_real_feed_details(server: FeedServer) -> None:
    files = {path.name: path for path in real_feed_files()}

    def parsed(name: str):
        path = files[name]
        headers = {"Content-Type": content_type_for(path)}
        return parse_feed(path.read_bytes(), url=server.url(f"/{name}"), headers=headers)

    # Declared windows-1251: Cyrillic comes out as Cyrillic.
    assert re.search("[А-Яа-я]{4}", parsed("oren-ru-news_rss20_windows-1251.xml").entries[0].title)
    # Latin-1 bytes with no declaration (so "UTF-8"): still readable Portuguese, flagged bozo.
    uol = parsed("uol-noticias_rss.rss")
    assert uol.bozo and any("ã" in entry.title or "é" in entry.title for entry in uol.entries)
    # Double-encoded UTF-8 ("Ð’ ÐœÐ¾Ñ\x81ÐºÐ²Ðµ") is repaired into Russian.
    yandex = parsed("yandex-news-moscow_rss20.xml")
    assert all("Ð" not in entry.title for entry in yandex.entries)
    assert re.search("[А-Яа-я]{4}", yandex.entries[0].title)
    # Relative entry links with no xml:base resolve against the feed's own address.
    tpm = parsed("talkingpointsmemo-all.atom")
    assert all(entry.url and entry.url.startswith(server.base_url + "/") for entry in tpm.entries)
    # A channel without items is an empty feed, not an error.
    assert parsed("dailymail-worldnews_rss20.xml").entries == []
    # FeedBurner tracking markup is not article text.
    reuters = parsed("reuters-worldnews_rss20.xml")
    assert all("feedflare" not in entry.text and "feeds.reuters.com" not in entry.text for entry in reuters.entries)


@pytest.mark.slow  # reads a whole corpus: every real feed in ../shared/feeds/real
async def test_every_real_feed_is_stored_once(server: FeedServer, session_factory) -> None:
    files = real_feed_files()
    with session_factory() as session:
        for path in files:
            server.set_feed(f"/{path.name}", path.read_bytes(), content_type=content_type_for(path))
            session.add(Feed(name=path.stem, url=server.url(f"/{path.name}"), next_poll_at=NOW))
        session.commit()
    async with make_http_client(FetchLimits.from_settings(POLL)) as client:
        first = await refresh_feeds(session_factory, client, POLL, NOW, all_feeds=True)
        again = await refresh_feeds(session_factory, client, POLL, NOW, all_feeds=True)

    assert len(first) == len(files)
    assert all(result.outcome is FetchKind.NEW_CONTENT for result in first), [r.error for r in first if r.error]
    assert all(result.outcome is FetchKind.NOT_MODIFIED and result.new_articles == 0 for result in again)
    with session_factory() as session:
        stored = session.scalar(select(func.count()).select_from(Article))
    assert stored == sum(result.new_articles for result in first) == sum(result.entries for result in first)


def corpus_headers(data: bytes) -> dict[str, str]:
    """The HTTP headers a corpus document declares in its leading comment."""
    return {name.decode().strip(): value.decode("latin-1").strip() for name, value in _HEADER_LINE.findall(data[:4000])}


@pytest.mark.slow  # hundreds of documents: seconds, not part of the tier run while working
async def test_the_whole_feedparser_corpus_through_fetch_parse_and_store(server: FeedServer, session_factory) -> None:
    """Every corpus document, served with the headers it declares, polled, parsed and stored."""
    if not CORPUS.is_dir():
        pytest.skip(f"{CORPUS} is absent (the corpus lives beside the clone, in ../shared/feeds)")
    files = sorted(path for path in CORPUS.rglob("*") if path.suffix in {".xml", ".json"})
    with session_factory.begin() as session:
        for path in files:
            relative = path.relative_to(CORPUS).as_posix()
            data = path.read_bytes()
            headers = {
                k: v for k, v in corpus_headers(data).items() if k.lower() not in {"content-type", "content-encoding"}
            }
            declared = {k.lower(): v for k, v in corpus_headers(data).items()}.get("content-type")
            default = "application/feed+json" if path.suffix == ".json" else "application/xml"
            server.set_feed(f"/{relative}", data, content_type=declared or default, headers=headers)
            session.add(Feed(name=relative, url=server.url(f"/{relative}"), next_poll_at=NOW))
    poll = PollSettings(interval="15m", timeout="10s", concurrency=32, per_host_concurrency=32)
    async with make_http_client(FetchLimits.from_settings(poll)) as client:
        results = await refresh_feeds(session_factory, client, poll, NOW)

    assert len(results) == len(files) == 2107
    crashed = [(r.feed_name, r.error) for r in results if r.error and not r.error.startswith("parse: ")]
    assert crashed == []  # no fetch failure, no unhandled exception (those read "refresh: ...")
    parsed = [r for r in results if r.outcome is FetchKind.NEW_CONTENT]
    rejected = {r.feed_name: r.error for r in results if r.outcome == "parse_error"}
    with session_factory() as session:
        articles = session.scalar(select(func.count()).select_from(Article))
        links = session.scalar(select(func.count()).select_from(ArticleFeed))
    report = {
        "parsed": len(parsed),
        "bozo": sum(r.bozo for r in parsed),
        "entries": sum(r.entries for r in parsed),
        "stored": articles,
        "linked": links - articles,
        "rejected": len(rejected),
    }
    print(report, rejected)
    assert report == CORPUS_COUNTS
    assert sum(r.new_articles for r in results) == articles
    # Refused: the empty document, the bare CDF channels and the JSON Feed (feedparser 6 reads no JSON).
    assert all(error.startswith("parse: not a feed (") for error in rejected.values())
    assert all(
        name.startswith("wellformed/cdf/") or name in {"illformed/rss_empty_document.xml", "json/example.json"}
        for name in rejected
    ), rejected


# What the corpus gives (it is pinned by commit in ../shared/feeds/feedparser-corpus/INDEX.md).
# Many corpus documents share their example entries, so most entries are links, not new articles.
CORPUS_COUNTS = {"parsed": 2098, "bozo": 276, "entries": 570, "stored": 146, "linked": 424, "rejected": 9}


@pytest.mark.slow  # reads a whole corpus: every saved page in ../shared/feeds/articles-html
async def test_article_pages_give_their_main_text_to_full_text_feeds(server: FeedServer, session_factory) -> None:
    """The saved news pages, linked from a full_text feed: trafilatura's main text is stored."""
    if not ARTICLES.is_dir():
        pytest.skip(f"{ARTICLES} is absent (real article pages live beside the clone in ../shared)")
    gold = json.loads((ARTICLES / "trafilatura-evaldata-subset.json").read_text(encoding="utf-8"))
    items = []
    for n, (url, page) in enumerate(sorted(gold.items())):
        server.set_feed(
            f"/pages/{n}.html", (ARTICLES / page["file"]).read_bytes(), content_type="text/html; charset=utf-8"
        )
        items.append(
            FeedItem(
                page.get("title") or page["file"], link=server.url(f"/pages/{n}.html"), guid=url, description="Teaser."
            )
        )
    server.set_feed("/full.xml", rss_document(items))
    with session_factory.begin() as session:
        session.add(Feed(name="full", url=server.url("/full.xml"), full_text=True, next_poll_at=NOW))
    poll = PollSettings(interval="15m", timeout="10s", allow_private_addresses=True)
    async with make_http_client(FetchLimits.from_settings(poll)) as client:
        (result,) = await refresh_feeds(session_factory, client, poll, NOW)
    assert result.error is None and result.new_articles == len(gold) == 15
    with session_factory() as session:
        stored = {a.entry_key: a for a in session.scalars(select(Article))}
    expected = found = leaked = 0
    for url, page in gold.items():
        article = stored[url]
        assert article.text != "Teaser." and "</" not in article.text, page["file"]
        if page.get("title"):
            assert article.title == page["title"]
        expected += len(page.get("with", []))
        found += sum(snippet in article.text for snippet in page.get("with", []))
        leaked += sum(snippet in article.text for snippet in page.get("without", []))
    assert found >= 0.8 * expected and leaked <= 2
