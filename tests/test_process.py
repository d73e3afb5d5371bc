"""Processing stored articles: each article's verdict is recorded once, by one processor."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

import pytest
from sqlalchemy import Engine, event, func, select, update

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
    """The real detector, except that while it analyses the article at URL another processor
    records that article first: what happens when a lease runs out in the middle of an analysis."""

    def __init__(self, sessions: SessionFactory, url: str | None) -> None:
        self.detector = detector()
        self.sessions = sessions
        self.url = url
        self.analysed: list[Analysis] = []

    def prescreen(self, articles: Sequence[ArticleInput]) -> list[Screen]:
        return self.detector.prescreen(articles)

    def embed_ahead(self, articles: Sequence[ArticleInput]) -> None:
        self.detector.embed_ahead(articles)

    def analyze(self, article: ArticleInput, kb: KnowledgeBase) -> Analysis:
        analysis = self.detector.analyze(article, kb)
        self.analysed.append(analysis)
        if article.url == self.url:
            with self.sessions.begin() as session:
                session.execute(
                    update(Article)
                    .where(Article.url == article.url)
                    .values(status="processed", relevant=True, analysis={"reason": "the other processor"})
                )
        return analysis


@pytest.mark.parametrize("overtaken", [ACCUSATION, MARKETS], ids=["relevant", "off-topic"])
def test_an_article_recorded_by_another_processor_meanwhile_is_left_as_it_recorded(
    sessions: SessionFactory, overtaken: ArticleInput
) -> None:
    with sessions.begin() as session:
        feed = Feed(name="wire", url="http://feeds.local/wire.xml")
        session.add(feed)
        session.flush()
        session.add_all(
            Article(
                feed_id=feed.id, entry_key=a.url or "", url=a.url, title=a.title, text=a.text, published_at=a.published
            )
            for a in (ACCUSATION, MARKETS)
        )
    seed_facts()
    run = Overtaken(sessions, overtaken.url)

    desk = "https://desk.example.org"
    report = process_articles(sessions, cast(Detector, run), ["slack", "email"], story_days=7, limit=10, base_url=desk)

    # Both were analysed, and the accusation had something new to alert on.
    accusation, markets = run.analysed
    assert accusation.relevant and accusation.findings, accusation.reason
    assert not markets.relevant
    # The overtaken article is not this processor's to record; the other one is.
    assert (report.processed, report.failed) == (1, 0)
    with sessions() as session:
        recorded = {a.url: a for a in session.scalars(select(Article))}
        assert recorded[overtaken.url].analysis == {"reason": "the other processor"}
        assert all(a.status == "processed" for a in recorded.values())
        alerts = session.scalar(select(func.count()).select_from(Alert))
        findings = session.scalar(select(func.count()).select_from(Finding))
        links = {(a.article_id, a.payload.get("review_url")) for a in session.scalars(select(Alert))}
    if overtaken is ACCUSATION:
        assert report.alerted == 0 and alerts == 0 and findings == 0
        assert recorded[MARKETS.url].relevant is False
    else:
        assert report.alerted == 1 and alerts == 2 and findings
        assert recorded[ACCUSATION.url].relevant is True
        # With web.base_url the alert links to its page on the desk: the article's id.
        alerted = recorded[ACCUSATION.url].id
        assert links == {(alerted, f"{desk}/alerts/{alerted}")}


def test_off_topic_verdicts_are_written_together_in_one_statement(sessions: SessionFactory, engine: Engine) -> None:
    with sessions.begin() as session:
        feed = Feed(name="wire", url="http://feeds.local/wire.xml")
        session.add(feed)
        session.flush()
        session.add_all(
            Article(
                feed_id=feed.id,
                entry_key=f"m{i}",
                url=f"{MARKETS.url}/{i}",
                title=f"{MARKETS.title} ({i})",
                text=MARKETS.text,
            )
            for i in range(5)
        )
    seed_facts()
    verdicts: list[bool] = []

    def watch(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE") and "processed_at" in statement:
            verdicts.append(executemany)

    event.listen(engine, "before_cursor_execute", watch)
    try:
        report = process_articles(sessions, detector(), ["slack"], story_days=7, limit=10)
    finally:
        event.remove(engine, "before_cursor_execute", watch)

    assert (report.processed, report.relevant, report.failed) == (5, 0, 0)
    # Five verdicts, one statement run for all of them.
    assert verdicts == [True]
    with sessions() as session:
        rows = list(session.scalars(select(Article)))
    assert [(a.status, a.relevant, a.lease_until) for a in rows] == [("processed", False, None)] * 5
    assert all(a.analysis and a.analysis["reason"] for a in rows)
