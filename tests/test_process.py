"""Processing stored articles: each article's verdict is recorded once, by one processor."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

import pytest
from sqlalchemy import func, select, update

from monitor.analysis.detector import Analysis, ArticleInput, Detector, Screen
from monitor.analysis.knowledge import KnowledgeBase
from monitor.process import process_articles
from monitor.store.db import SessionFactory
from monitor.store.models import Alert, Article, Feed, Finding
from tests.analysis_fixtures import detector, seed_facts

pytestmark = pytest.mark.slow

NOW = datetime(2025, 3, 1, tzinfo=UTC)

ACCUSATION = ArticleInput(
    title="Officials say Venezuelan hackers targeted the county election office",
    text=(
        "Officials said Venezuelan hackers targeted the county's election office in an attempt to "
        "interfere in the vote and undermine confidence in the results.\n\n"
        "Caracas denied any involvement on Wednesday."
    ),
    url="https://news.example/venezuela-hackers",
    published=NOW,
)
MARKETS = ArticleInput(
    title="Stocks close higher as oil prices ease",
    text="Shares rose on Tuesday as oil prices eased and investors weighed earnings.\n\nBond yields were flat.",
    url="https://news.example/markets",
    published=NOW,
)


class Overtaken:
    """The real detector, except that while it analyses the accusation another processor records
    that article first: what happens when a lease runs out in the middle of an analysis."""

    def __init__(self, sessions: SessionFactory) -> None:
        self.detector = detector()
        self.sessions = sessions
        self.analysed: list[Analysis] = []

    def prescreen(self, articles: Sequence[ArticleInput]) -> list[Screen]:
        return self.detector.prescreen(articles)

    def embed_ahead(self, articles: Sequence[ArticleInput]) -> None:
        self.detector.embed_ahead(articles)

    def analyze(self, article: ArticleInput, kb: KnowledgeBase) -> Analysis:
        analysis = self.detector.analyze(article, kb)
        self.analysed.append(analysis)
        if article.url == ACCUSATION.url:
            with self.sessions.begin() as session:
                session.execute(
                    update(Article)
                    .where(Article.url == article.url)
                    .values(status="processed", relevant=True, analysis={"reason": "the other processor"})
                )
        return analysis


def test_an_article_recorded_by_another_processor_meanwhile_is_left_as_it_recorded(sessions: SessionFactory) -> None:
    with sessions.begin() as session:
        feed = Feed(name="wire", url="http://feeds.local/wire.xml")
        session.add(feed)
        session.flush()
        session.add_all(
            Article(feed_id=feed.id, entry_key=a.url or "", url=a.url, title=a.title, text=a.text, published_at=a.published)
            for a in (ACCUSATION, MARKETS)
        )
    seed_facts()
    overtaken = Overtaken(sessions)

    report = process_articles(sessions, cast(Detector, overtaken), ["slack", "email"], story_days=7, limit=10)

    # Both were analysed, and the accusation had something new to alert on ...
    accusation, _markets = overtaken.analysed
    assert accusation.relevant and accusation.findings, accusation.reason
    # ... but only the markets article is this processor's to record.
    assert (report.processed, report.alerted, report.failed) == (1, 0, 0)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Alert)) == 0
        assert session.scalar(select(func.count()).select_from(Finding)) == 0
        recorded = session.scalars(select(Article).order_by(Article.id)).all()
        assert [a.status for a in recorded] == ["processed", "processed"]
        assert recorded[0].analysis == {"reason": "the other processor"}
        assert recorded[1].relevant is False
