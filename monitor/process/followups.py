""" "Also reported by": when another outlet repeats a story already alerted and adds nothing new.

Such an article is never a new alert. On a channel that can attach it to the alert it follows
(Slack through the Web API: a threaded reply; email with a digest: a line in the next digest; the
generic webhook: an ``also_reported`` event) it becomes an outbox row of kind "also_reported",
written in the article's own transaction like any alert row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from monitor import outbox
from monitor.outbox import AlsoReported
from monitor.store.models import Alert, Article
from monitor.store.verdicts import same_story_of

# How far a chain of same-story links is followed back to the article that was alerted.
CHAIN_MAX = 20


def _alerted_original(session: Session, article_id: int | None) -> tuple[int, str, set[str]] | None:
    """(article id, title, channels) of the alerted article a same-story chain leads back to."""
    seen: set[int] = set()
    while article_id is not None and article_id not in seen and len(seen) < CHAIN_MAX:
        seen.add(article_id)
        title, alerted, follows = outbox.alerted_channels(session, article_id)
        if alerted:
            return article_id, title, alerted
        article_id = follows if follows is not None else same_story_of(session, article_id)
    return None


def add_also_reported(
    session: Session, article: Article, feed_name: str, channels: Sequence[str], now: datetime
) -> list[Alert]:
    """Outbox rows for ARTICLE, a repeat of an alerted story: one per channel in CHANNELS on which
    that story's alert exists. None when the article is no repeat or the story was never alerted.
    Added to SESSION, to be committed with the article."""
    if not channels or article.same_story_as_id is None:
        return []
    original = _alerted_original(session, article.same_story_as_id)
    if original is None:
        return []
    original_id, original_title, alerted = original
    item = AlsoReported(
        article_title=article.title,
        article_url=article.url,
        feed=feed_name,
        published=article.published_at,
        original_article_id=original_id,
        original_title=original_title,
    )
    return outbox.add_alerts(session, item, [name for name in channels if name in alerted], article.id, now)
