"""Full-text feeds: the article page's main text in place of the feed's teaser."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace

import httpx

from monitor.config import PollSettings
from monitor.ingest.fetch import FetchKind, FetchLimits, fetch_page
from monitor.ingest.parse import Entry, ParsedFeed
from monitor.ingest.text import extract_article_text
from monitor.store.articles import unseen_entries
from monitor.store.db import SessionFactory

logger = logging.getLogger(__name__)

# Article pages fetched per refresh of a full_text feed; later entries keep the feed's text.
MAX_PAGES_PER_REFRESH = 30


async def with_page_text(
    session_factory: SessionFactory,
    client: httpx.AsyncClient,
    feed_id: int,
    parsed: ParsedFeed,
    limits: FetchLimits,
    poll: PollSettings,
) -> ParsedFeed:
    """Each unseen entry's text becomes its page's main text, when found.

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
    entries = [replace(entry, text=text) if (text := texts.get(entry.key)) else entry for entry in parsed.entries]
    return replace(parsed, entries=entries)


def _unseen(session_factory: SessionFactory, feed_id: int, entries: Sequence[Entry]) -> list[Entry]:
    with session_factory() as session:
        return unseen_entries(session, feed_id, entries)  # type: ignore[return-value]


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
