"""What the desk reads: alerts (the articles that alerted) and articles, as pages of plain models.

Read-only. Lists are newest first and paged by keyset: the cursor is the last id of a page, so a
page costs the same however deep it is and rows arriving meanwhile never shift a page. An alert's
id is its article's id: one per article however many channels carry it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import ColumnElement, and_, exists, false, func, not_, or_, select
from sqlalchemy.orm import Session, aliased

from monitor.outbox import ClosestAllegation, FindingView, PayloadKind
from monitor.store.models import Alert, Article, ArticleFeed, ArticleStatus, Feed, Finding
from monitor.store.search import search_article_ids

# Same-story articles shown on an alert's page; a story carried by more outlets is cut here.
SAME_STORY_MAX = 50


class Verdict(StrEnum):
    RELEVANT = "relevant"
    OFF_TOPIC = "off_topic"
    FAILED = "failed"
    NEW = "new"


@dataclass(frozen=True)
class AlertFilters:
    kind: str | None = None
    country: str | None = None
    feed: str | None = None
    tag: str | None = None
    status: str | None = None
    since: datetime | None = None
    # Exclusive: the first moment not wanted.
    until: datetime | None = None


@dataclass(frozen=True)
class ArticleFilters:
    words: str | None = None
    verdict: Verdict | None = None
    since: datetime | None = None
    until: datetime | None = None


# --- what comes back ---------------------------------------------------------------------------


class DeliveryRow(BaseModel):
    """One outbox row: how a message fared on one channel. An alert's page lists its own rows and
    the "also reported" lines of its repeats (threaded under it), each with its article's id."""

    article_id: int
    channel: str
    kind: PayloadKind
    status: str
    attempts: int
    last_error: str | None
    delivered_at: datetime | None


class AlertRow(BaseModel):
    id: int
    title: str
    url: str | None
    feed: str
    published: datetime | None
    fetched: datetime
    relevance: float | None
    what_is_new: str
    findings: int
    # channel -> status of its alert row
    delivery: dict[str, str]


class FindingDetail(BaseModel):
    id: int
    kind: str
    value: str
    about: str
    evidence: str
    country: str | None
    closest_value: str | None
    closest_fact_id: int | None
    similarity: float | None
    reason: str
    review: str | None
    reviewed_by: str | None

    def headline(self) -> str:
        return headline(self.kind, self.value, self.about)


class StoryArticle(BaseModel):
    id: int
    title: str
    url: str | None
    feed: str
    published: datetime | None
    # "original": the article this one repeats; "repeat": an article that repeats this one.
    relation: str


class ArticleRow(BaseModel):
    id: int
    title: str
    url: str | None
    feed: str
    published: datetime | None
    fetched: datetime
    verdict: Verdict
    reason: str
    relevance: float | None


class ArticleDetail(ArticleRow):
    feeds: list[str]
    processed: datetime | None
    findings: list[FindingDetail]
    closest_allegation: ClosestAllegation | None
    alerted: bool
    review: str | None
    reviewed_by: str | None


class AlertDetail(ArticleDetail):
    same_story: list[StoryArticle]
    delivery: list[DeliveryRow]


# --- shared pieces -------------------------------------------------------------------------------


def headline(kind: str, value: str, about: str) -> str:
    """What a finding brought, in the words of the alert that announced it."""
    # model_construct: the words only, without validating a kind the store already checked.
    return FindingView.model_construct(kind=kind, value=value, about=about, evidence="").headline()


def _is_alert_row() -> ColumnElement[bool]:
    # Alert payloads carry no "kind" (AlertContent); "also reported" lines say theirs.
    kind = Alert.payload["kind"].as_string()
    return or_(kind.is_(None), kind == PayloadKind.ALERT.value)


def _in_time(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    conditions = []
    if since is not None:
        conditions.append(Article.fetched_at >= since)
    if until is not None:
        conditions.append(Article.fetched_at < until)
    return conditions


def _feed_ids(session: Session, name: str | None, tag: str | None) -> list[int] | None:
    """The feeds a filter names (by name, by tag, or both), or None when it names none. Tags are a
    JSON list per feed, so they are matched here: the feeds are few, their articles many."""
    if name is None and tag is None:
        return None
    wanted = tag.casefold() if tag is not None else None
    ids = []
    for feed_id, feed_name, tags in session.execute(select(Feed.id, Feed.name, Feed.tags)):
        if name is not None and feed_name != name:
            continue
        if wanted is not None and wanted not in {str(t).casefold() for t in tags or []}:
            continue
        ids.append(feed_id)
    return ids


def _verdict(status: str, relevant: bool | None) -> Verdict:
    if status == ArticleStatus.FAILED:
        return Verdict.FAILED
    if status == ArticleStatus.NEW:
        return Verdict.NEW
    return Verdict.RELEVANT if relevant else Verdict.OFF_TOPIC


def _verdict_condition(verdict: Verdict) -> ColumnElement[bool]:
    if verdict is Verdict.RELEVANT:
        return and_(Article.status == ArticleStatus.PROCESSED, Article.relevant.is_(True))
    if verdict is Verdict.OFF_TOPIC:
        return and_(Article.status == ArticleStatus.PROCESSED, Article.relevant.is_not(True))
    return Article.status == (ArticleStatus.FAILED if verdict is Verdict.FAILED else ArticleStatus.NEW)


def _reason(article: Article) -> str:
    if article.status == ArticleStatus.FAILED:
        return article.error or ""
    analysis = article.analysis if isinstance(article.analysis, dict) else {}
    return str(analysis.get("reason") or "")


def _page(ids: list[int], limit: int) -> tuple[list[int], str | None]:
    """The first LIMIT of LIMIT+1 ids asked for, and the cursor to the rest (None at the end)."""
    return (ids[:limit], str(ids[limit - 1])) if len(ids) > limit else (ids, None)


# --- alerts ------------------------------------------------------------------------------------------


def list_alerts(
    session: Session, filters: AlertFilters, *, limit: int, before: int | None = None
) -> tuple[list[AlertRow], str | None]:
    """A page of alerts, newest first, and the cursor to the next page (None at the end).

    Read from the outbox's alert rows, newest article first, each filter a test of that row's
    article: the rows are a twentieth of the articles, and ix_alerts_article_status walks them in
    article order (SQLite: 25 -> 1 ms unfiltered, 30 -> 2 ms by delivery status)."""
    conditions = [Alert.article_id.is_not(None), _is_alert_row()]
    if before is not None:
        conditions.append(Alert.article_id < before)
    of_article = _in_time(filters.since, filters.until)
    feeds = _feed_ids(session, filters.feed, filters.tag)
    if feeds is not None:
        of_article.append(Article.feed_id.in_(feeds))
    if of_article:
        conditions.append(exists().where(Article.id == Alert.article_id, *of_article))
    if filters.kind is not None:
        conditions.append(exists().where(Finding.article_id == Alert.article_id, Finding.kind == filters.kind))
    if filters.country is not None:
        country = filters.country.casefold()
        # The state a finding is about, or the country a "country" finding names.
        about_it = or_(
            func.lower(Finding.country) == country,
            and_(Finding.kind == "country", func.lower(Finding.value) == country),
        )
        conditions.append(exists().where(Finding.article_id == Alert.article_id, about_it))
    if filters.status is not None:
        # Any of the article's rows in that status (an "also reported" line's too, as before).
        other = aliased(Alert)
        conditions.append(Alert.article_id.in_(select(other.article_id).where(other.status == filters.status)))
    query = select(Alert.article_id).where(*conditions).distinct().order_by(Alert.article_id.desc())
    found = [int(article_id) for article_id in session.scalars(query.limit(limit + 1))]
    ids, cursor = _page(found, limit)
    return _alert_rows(session, ids), cursor


def _alert_rows(session: Session, ids: Sequence[int]) -> list[AlertRow]:
    if not ids:
        return []
    headlines: dict[int, list[str]] = defaultdict(list)
    findings = select(Finding.article_id, Finding.kind, Finding.value, Finding.about).where(Finding.article_id.in_(ids))
    for article_id, kind, value, about in session.execute(findings.order_by(Finding.id)):
        headlines[article_id].append(headline(kind, value, about))
    delivery: dict[int, dict[str, str]] = defaultdict(dict)
    outbox = select(Alert.article_id, Alert.channel, Alert.status).where(Alert.article_id.in_(ids), _is_alert_row())
    for article_id, channel, status in session.execute(outbox.order_by(Alert.channel)):
        delivery[article_id][channel] = status
    articles = session.execute(
        select(Article, Feed.name).join(Feed, Feed.id == Article.feed_id).where(Article.id.in_(ids))
    )
    by_id = {article.id: (article, feed) for article, feed in articles}
    rows = []
    for article_id in ids:
        article, feed = by_id[article_id]
        lines = headlines.get(article_id, [])
        new = (f"{lines[0]} (+{len(lines) - 1} more)" if len(lines) > 1 else lines[0]) if lines else "New report"
        rows.append(
            AlertRow(
                id=article.id, title=article.title, url=article.url, feed=feed, published=article.published_at,
                fetched=article.fetched_at, relevance=article.relevance, what_is_new=new, findings=len(lines),
                delivery=delivery.get(article_id, {}),
            )
        )  # fmt: skip
    return rows


def alert_detail(session: Session, article_id: int) -> AlertDetail | None:
    """The alert of article ARTICLE_ID with its findings, story and delivery; None when the article
    does not exist or never alerted."""
    detail = article_detail(session, article_id)
    if detail is None or not detail.alerted:
        return None
    story = _same_story(session, article_id)
    repeats = [item.id for item in story if item.relation == "repeat"]
    also = and_(Alert.article_id.in_(repeats), not_(_is_alert_row())) if repeats else false()
    rows = select(Alert).where(or_(Alert.article_id == article_id, also)).order_by(Alert.channel, Alert.id)
    delivery = [
        DeliveryRow(
            article_id=article_id if row.article_id is None else row.article_id,
            channel=row.channel, kind=PayloadKind(row.payload.get("kind") or PayloadKind.ALERT), status=row.status,
            attempts=row.attempts, last_error=row.last_error, delivered_at=row.delivered_at,
        )
        for row in session.scalars(rows)
    ]  # fmt: skip
    return AlertDetail(**detail.model_dump(), same_story=story, delivery=delivery)


def _same_story(session: Session, article_id: int) -> list[StoryArticle]:
    original = session.scalar(select(Article.same_story_as_id).where(Article.id == article_id))
    related = Article.same_story_as_id == article_id
    if original is not None:
        related = or_(related, Article.id == original)
    rows = session.execute(
        select(Article.id, Article.title, Article.url, Feed.name, Article.published_at)
        .join(Feed, Feed.id == Article.feed_id)
        .where(related, Article.id != article_id)
        .order_by(Article.id)
        .limit(SAME_STORY_MAX)
    )
    return [
        StoryArticle(
            id=id_, title=title, url=url, feed=feed, published=published,
            relation="original" if id_ == original else "repeat",
        )
        for id_, title, url, feed, published in rows
    ]  # fmt: skip


# --- articles ---------------------------------------------------------------------------------------


def _article_row(article: Article, feed: str) -> dict[str, Any]:
    return {
        "id": article.id,
        "title": article.title,
        "url": article.url,
        "feed": feed,
        "published": article.published_at,
        "fetched": article.fetched_at,
        "verdict": _verdict(article.status, article.relevant),
        "reason": _reason(article),
        "relevance": article.relevance,
    }


def list_articles(
    session: Session, filters: ArticleFilters, *, limit: int, before: int | None = None
) -> tuple[list[ArticleRow], str | None]:
    """A page of articles, newest first, and the cursor to the next page (None at the end)."""
    conditions = _in_time(filters.since, filters.until)
    if filters.verdict is not None:
        conditions.append(_verdict_condition(filters.verdict))
    words = (filters.words or "").strip()
    if words:
        ids, cursor = _searched(session, words, conditions, limit=limit, before=before)
    else:
        if before is not None:
            conditions.append(Article.id < before)
        query = select(Article.id).where(*conditions).order_by(Article.id.desc()).limit(limit + 1)
        ids, cursor = _page(list(session.scalars(query)), limit)
    if not ids:
        return [], cursor
    rows = session.execute(select(Article, Feed.name).join(Feed, Feed.id == Article.feed_id).where(Article.id.in_(ids)))
    by_id = {article.id: ArticleRow(**_article_row(article, feed)) for article, feed in rows}
    return [by_id[article_id] for article_id in ids], cursor


def _searched(
    session: Session, words: str, conditions: list[ColumnElement[bool]], *, limit: int, before: int | None
) -> tuple[list[int], str | None]:
    """The ids of a page of articles that match WORDS and CONDITIONS, newest first: one query, the
    other filters applied by the search itself (so that a filter few hits pass costs no rounds)."""
    hits = search_article_ids(session, words, limit=limit + 1, before_id=before, where=conditions)
    return _page(hits, limit)


def article_detail(session: Session, article_id: int) -> ArticleDetail | None:
    """Article ARTICLE_ID with its verdict, findings and the feeds that brought it; None if unknown."""
    row = session.execute(
        select(Article, Feed.name).join(Feed, Feed.id == Article.feed_id).where(Article.id == article_id)
    ).first()
    if row is None:
        return None
    article, feed = row
    feeds = list(
        session.scalars(
            select(Feed.name)
            .join(ArticleFeed, ArticleFeed.feed_id == Feed.id)
            .where(ArticleFeed.article_id == article_id)
            .order_by(ArticleFeed.id)
        )
    )
    findings = [
        FindingDetail(
            id=f.id, kind=f.kind, value=f.value, about=f.about, evidence=f.evidence, country=f.country,
            closest_value=f.closest_value, closest_fact_id=f.closest_fact_id, similarity=f.similarity,
            reason=f.reason, review=f.review, reviewed_by=f.reviewed_by,
        )
        for f in session.scalars(select(Finding).where(Finding.article_id == article_id).order_by(Finding.id))
    ]  # fmt: skip
    alerted = session.scalar(select(exists().where(Alert.article_id == article_id, _is_alert_row())))
    return ArticleDetail(
        **_article_row(article, feed),
        feeds=feeds or [feed],
        processed=article.processed_at,
        findings=findings,
        closest_allegation=_closest_allegation(article.analysis),
        alerted=bool(alerted),
        review=article.review,
        reviewed_by=article.reviewed_by,
    )


def _closest_allegation(analysis: Any) -> ClosestAllegation | None:
    # The analysis summary is the store's own JSON, but an old row may lack the field or differ.
    value = analysis.get("closest_allegation") if isinstance(analysis, dict) else None
    try:
        return ClosestAllegation.model_validate(value) if value else None
    except ValidationError:
        return None
