""" "Also reported by": when another outlet repeats a story already alerted and adds nothing new.

Such an article is never a new alert. On a channel that can attach it to the alert it follows
(Slack through the Web API: a threaded reply; email with a digest: a line in the next digest; the
generic webhook: an ``also_reported`` event) it becomes an outbox row of kind "also_reported",
written in the article's own transaction like any alert row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.alerts.content import ALSO_REPORTED, AlsoReported, payload_kind
from monitor.config import AlertSettings
from monitor.store.models import Alert, Article, utcnow

# How far a chain of same-story links is followed back to the article that was alerted.
CHAIN_MAX = 20


def also_reported_channels(settings: AlertSettings, active: Iterable[str]) -> list[str]:
    """The active channels that take "also reported by" lines."""
    active = set(active)
    wanted = {
        "slack": settings.slack.threads,
        "email": settings.email.digest is not None,
        "webhook": True,
    }
    return [name for name, takes in wanted.items() if takes and name in active]


def _alerted_original(
    session: Session, article_id: int | None
) -> tuple[int, str, set[str]] | None:
    """(article id, title, channels) of the alerted article a same-story chain leads back to."""
    seen: set[int] = set()
    while article_id is not None and article_id not in seen and len(seen) < CHAIN_MAX:
        seen.add(article_id)
        rows = list(
            session.execute(
                select(Alert.channel, Alert.payload).where(
                    Alert.article_id == article_id
                )
            )
        )
        alerted = {
            channel
            for channel, payload in rows
            if payload_kind(payload) != ALSO_REPORTED
        }
        if alerted:
            title = next(
                p.get("article_title", "")
                for c, p in rows
                if payload_kind(p) != ALSO_REPORTED
            )
            return article_id, str(title), alerted
        follows = [
            p.get("original_article_id")
            for _, p in rows
            if payload_kind(p) == ALSO_REPORTED
        ]
        if follows and isinstance(follows[0], int):
            article_id = follows[0]
        else:
            article_id = session.scalar(
                select(Article.same_story_as_id).where(Article.id == article_id)
            )
    return None


def also_reported_rows(
    session: Session, article: Article, feed_name: str, channels: Sequence[str]
) -> list[Alert]:
    """Outbox rows for ARTICLE, a repeat of an alerted story: one per channel in CHANNELS on which
    that story's alert exists. Empty when the article is no repeat or the story was never alerted.
    The caller adds them to its session (and commits them with the article)."""
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
    payload = item.model_dump(mode="json")
    return [
        Alert(
            article_id=article.id,
            channel=name,
            payload=payload,
            next_attempt_at=utcnow(),
        )
        for name in channels
        if name in alerted
    ]
