"""What the analysts' reviews say about each article, read for `monitor feedback export`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from monitor.store.models import Article, FactSource, Feed, Finding, KnownFact


@dataclass(frozen=True)
class Item:
    kind: str
    value: str
    about: str
    # The analyst's word on a finding (None: not reviewed); always None for a missed item.
    review: str | None = None


@dataclass
class ReviewedArticle:
    id: int
    title: str
    text: str
    url: str | None
    published: datetime
    outlet: str
    relevant: bool
    review: str | None
    same_story_as_id: int | None
    findings: list[Item] = field(default_factory=list)
    # What analysts said the article should have alerted on, still standing (not undone).
    missed: list[Item] = field(default_factory=list)


def reviewed_articles(session: Session) -> list[ReviewedArticle]:
    """Every article an analyst reviewed, itself or one of its findings, in the order they came."""
    ids = union(
        select(Article.id).where(Article.review.is_not(None)),
        select(Finding.article_id).where(Finding.review.is_not(None)),
    ).subquery()
    rows = session.execute(
        select(Article, Feed.name)
        .join(Feed, Feed.id == Article.feed_id)
        .where(Article.id.in_(select(ids.c[0])))
        .order_by(Article.id)
    )
    found = {
        article.id: ReviewedArticle(
            id=article.id,
            title=article.title,
            text=article.text,
            url=article.url,
            published=article.published_at or article.fetched_at,
            outlet=name,
            relevant=bool(article.relevant),
            review=article.review,
            same_story_as_id=article.same_story_as_id,
        )
        for article, name in rows
    }
    for finding in session.scalars(select(Finding).where(Finding.article_id.in_(found)).order_by(Finding.id)):
        found[finding.article_id].findings.append(Item(finding.kind, finding.value, finding.about, finding.review))
    missed = select(KnownFact).where(
        KnownFact.article_id.in_(found), KnownFact.source_kind == FactSource.ANALYST, KnownFact.retired_at.is_(None)
    )
    for fact in session.scalars(missed.order_by(KnownFact.id)):
        if fact.article_id is not None:
            found[fact.article_id].missed.append(Item(fact.kind, fact.value, fact.about))
    return sorted(found.values(), key=lambda a: (a.published, a.id))
