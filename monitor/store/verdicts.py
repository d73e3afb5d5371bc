"""The articles repository, processing side: claim new articles, write each one's verdict (and its
findings), set aside one whose analysis keeps failing.

A verdict is written only while its article is still new: a processor whose lease ran out in the
middle of an analysis leaves another processor's verdict and alerts alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from monitor.store.db import SessionFactory
from monitor.store.lease import take_leases
from monitor.store.models import Article, ArticleStatus, Feed, Finding

# An article whose analysis keeps failing is set aside after this many tries, with its error.
MAX_ATTEMPTS = 3


def claim_new_articles(session: Session, now: datetime, limit: int, lease_s: float) -> list[int]:
    """Ids of new articles in arrival order, leased to this processor; the caller commits."""
    free = (Article.lease_until.is_(None)) | (Article.lease_until <= now)
    return take_leases(
        session,
        Article.id,
        where=(Article.status == ArticleStatus.NEW) & free,
        values={"lease_until": now + timedelta(seconds=lease_s)},
        order_by=(Article.id,),
        limit=limit,
    )


def release_articles(session_factory: SessionFactory, ids: Sequence[int]) -> None:
    """Hand claimed, unstarted articles back at once instead of at lease expiry."""
    with session_factory.begin() as session:
        session.execute(
            update(Article).where(Article.id.in_(ids), Article.status == ArticleStatus.NEW).values(lease_until=None)
        )


def load_new_articles(session: Session, ids: Sequence[int]) -> dict[int, tuple[Article, str]]:
    """The claimed articles still new, each with its feed's name, in one query."""
    rows = session.execute(
        select(Article, Feed.name)
        .join(Feed, Feed.id == Article.feed_id)
        .where(Article.id.in_(ids), Article.status == ArticleStatus.NEW)
    )
    return {article.id: (article, name) for article, name in rows}


def verdict(*, relevance: float, relevant: bool, summary: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The article row's new values: processed, with what the analysis found."""
    return {
        "status": ArticleStatus.PROCESSED,
        "lease_until": None,
        "processed_at": now,
        "error": None,
        "relevance": relevance,
        "relevant": relevant,
        "analysis": summary,
    }


def record_verdict(session: Session, article_id: int, values: dict[str, Any]) -> bool:
    """Write VALUES if the article is still new; False when another processor recorded it first
    (its lease ran out while this one worked). A plain guarded UPDATE rather than the ORM's unit of
    work: the guard is what keeps two processors from both recording, and alerting on, one article."""
    recorded = session.execute(
        update(Article)
        .where(Article.id == article_id, Article.status == ArticleStatus.NEW)
        .values(values)
        .execution_options(synchronize_session=False)
    )
    return bool(recorded.rowcount == 1)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class FindingRow:
    kind: str
    value: str
    about: str
    evidence: str
    closest_fact_id: int | None
    closest_value: str | None
    similarity: float | None
    reason: str
    # The state the finding is about (see finding_country in monitor/process/findings.py).
    country: str | None = None


def add_findings(session: Session, article_id: int, findings: Iterable[FindingRow]) -> None:
    """The findings of a verdict just recorded (the caller commits them together)."""
    for finding in findings:
        session.add(
            Finding(
                article_id=article_id,
                kind=finding.kind,
                value=finding.value[:300],
                about=finding.about[:300],
                evidence=finding.evidence,
                closest_fact_id=finding.closest_fact_id,
                closest_value=finding.closest_value[:300] if finding.closest_value else None,
                similarity=finding.similarity,
                reason=finding.reason,
                country=finding.country[:100] if finding.country else None,
            )
        )


def record_verdicts(session: Session, verdicts: Sequence[tuple[int, dict[str, Any]]]) -> set[int]:
    """Write several verdicts, each if its article is still new, in one transaction: the rows still
    new, locked, then one statement run for all of them (on PostgreSQL a round trip and a commit per
    article cost more than the rest of the loop). Commits; returns the ids recorded."""
    if not verdicts:
        return set()
    still_new = set(
        session.scalars(
            select(Article.id)
            .where(Article.id.in_([article_id for article_id, _ in verdicts]), Article.status == ArticleStatus.NEW)
            .with_for_update()
        )
    )
    chosen = [(article_id, values) for article_id, values in verdicts if article_id in still_new]
    if chosen:
        columns = list(chosen[0][1])
        statement = (
            update(Article)
            .where(Article.id == bindparam("verdict_article_id"), Article.status == ArticleStatus.NEW)
            .values({column: bindparam(f"verdict_{column}") for column in columns})
        )
        session.connection().execute(
            statement,
            [{"verdict_article_id": i, **{f"verdict_{c}": values[c] for c in columns}} for i, values in chosen],
        )
    session.commit()
    return still_new


def record_failure(session_factory: SessionFactory, article_id: int, error: str) -> None:
    """One more failed analysis: the article is tried again until MAX_ATTEMPTS, then set aside."""
    with session_factory.begin() as session:
        article = session.get(Article, article_id)
        if article is None:
            return
        article.attempts += 1
        article.lease_until = None
        article.error = error[:2000]
        if article.attempts >= MAX_ATTEMPTS:
            article.status = ArticleStatus.FAILED


def same_story_of(session: Session, article_id: int) -> int | None:
    """The earlier article this one was judged to repeat, if any."""
    return session.scalar(select(Article.same_story_as_id).where(Article.id == article_id))
