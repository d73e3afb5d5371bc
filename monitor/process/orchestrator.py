"""Process stored articles: analyse each one and commit what it teaches, with its alerts.

process_articles reads top to bottom: claim new articles, load them, pre-screen and embed ahead,
analyse each against the knowledge base, commit each relevant one at once and the off-topic
verdicts together at the end, count.

Each relevant article is committed in one transaction: its analysis, its findings, the facts it
adds to the knowledge base and one outbox row per alert channel. A crash between two articles
loses nothing (the next run picks up the articles still marked new) and cannot alert twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy.orm import Session

from monitor.analysis.detector import Analysis, ArticleInput, Detector
from monitor.analysis.knowledge import KnowledgeBase
from monitor.metrics import Metrics
from monitor.process.commit import commit_analysis, verdict_of
from monitor.process.embed_ahead import EmbedAhead
from monitor.store.db import SessionFactory, batch_session
from monitor.store.knowledge import KnowledgeVersion, knowledge_version, load_knowledge
from monitor.store.models import Alert, Article, utcnow
from monitor.store.verdicts import (
    claim_new_articles,
    load_new_articles,
    record_failure,
    record_verdicts,
    release_articles,
)

log = logging.getLogger(__name__)


@dataclass
class ProcessReport:
    processed: int = 0
    relevant: int = 0
    alerted: int = 0
    failed: int = 0
    alert_ids: list[int] = field(default_factory=list)

    def __iadd__(self, other: ProcessReport) -> ProcessReport:
        for counted in fields(self):
            setattr(self, counted.name, getattr(self, counted.name) + getattr(other, counted.name))
        return self


@dataclass
class _OffTopic:
    """An article judged off-topic, its verdict not yet written."""

    article_id: int
    verdict: dict[str, Any]
    analysis: Analysis
    seconds: float


def article_input(article: Article) -> ArticleInput:
    return ArticleInput(title=article.title, text=article.text, url=article.url, published=article.published_at)


def process_articles(
    session_factory: SessionFactory,
    detector: Detector,
    channels: Sequence[str],
    *,
    story_days: float,
    limit: int = 64,
    lease_s: float = 300.0,
    metrics: Metrics | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    also_reported: Sequence[str] = (),
    base_url: str | None = None,
) -> ProcessReport:
    """Analyse up to LIMIT new articles in arrival order; each one learns before the next.

    The batch is loaded in one query and pre-screened at once, and the articles that pass are
    embedded ahead: an off-topic article costs the model its title and lead only. The verdicts of
    the articles that are not relevant are written together at the end, one statement for all; a
    relevant one also asks whether the knowledge base has moved, and writes its verdict, findings,
    facts and outbox rows in one transaction."""
    with session_factory.begin() as session:
        ids = claim_new_articles(session, utcnow(), limit, lease_s)
    if not ids:
        return ProcessReport()
    batch = _Batch(session_factory, detector, channels, also_reported, story_days, metrics, base_url)
    with batch_session(session_factory) as session:
        off_topic = batch.analyse(session, ids, should_stop)
        recorded = record_verdicts(session, [(judged.article_id, judged.verdict) for judged in off_topic])
    for judged in off_topic:
        if judged.article_id in recorded:
            batch.count(judged.article_id, judged.analysis, [], judged.seconds)
        else:
            log.info("article already processed elsewhere", extra={"article_id": judged.article_id})
    return batch.report


class _Batch:
    """One claimed batch: the knowledge base as this processor last read it, and the counts."""

    def __init__(
        self,
        session_factory: SessionFactory,
        detector: Detector,
        channels: Sequence[str],
        also_reported: Sequence[str],
        story_days: float,
        metrics: Metrics | None,
        base_url: str | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.detector = detector
        self.channels = channels
        self.also_reported = also_reported
        self.story_days = story_days
        self.metrics = metrics
        # web.base_url: alerts link to their page on the desk.
        self.base_url = base_url
        self.report = ProcessReport()
        # None: to be loaded (first use, or this processor's last commit taught it something).
        self.kb: KnowledgeBase = KnowledgeBase()
        self.kb_version: KnowledgeVersion | None = None

    def analyse(self, session: Session, ids: Sequence[int], should_stop: Callable[[], bool]) -> list[_OffTopic]:
        """Relevant articles are committed one by one in SESSION; the off-topic ones are returned,
        their verdicts for the caller to write together."""
        articles = load_new_articles(session, ids)
        session.commit()
        ahead = EmbedAhead(self.detector, [article_input(articles[i][0]) if i in articles else None for i in ids])
        off_topic: list[_OffTopic] = []
        for position, article_id in enumerate(ids):
            if should_stop():
                release_articles(self.session_factory, ids[position:])
                break
            if article_id not in articles:
                continue
            ahead.before(position)
            started = time.perf_counter()
            article, feed_name = articles[article_id]
            if self.kb_version is None:
                self._reload(session)
            try:
                analysis, alerts = self._analyse_one(session, article, feed_name)
            except Exception as exc:  # the batch boundary: one bad article must not stop the rest
                session.rollback()
                record_failure(self.session_factory, article_id, f"analyze: {type(exc).__name__}: {exc}")
                self.report.failed += 1
                log.exception("analyze failed", extra={"article_id": article_id})
                continue
            seconds = time.perf_counter() - started
            if not analysis.relevant:
                # Nothing to write but the verdict: with the others of the batch, and counted then.
                off_topic.append(_OffTopic(article_id, verdict_of(analysis, utcnow()), analysis, seconds))
            elif alerts is None:
                log.info("article already processed elsewhere", extra={"article_id": article_id})
            else:
                self._learned(article, analysis)
                self.count(article_id, analysis, alerts, seconds)
        return off_topic

    def _analyse_one(self, session: Session, article: Article, feed_name: str) -> tuple[Analysis, list[Alert] | None]:
        """The article's analysis, and for a relevant one its committed outbox rows (None when
        another processor recorded it first)."""
        analysis = self.detector.analyze(article_input(article), self.kb)
        if not analysis.relevant:
            return analysis, []
        # Only a relevant article is judged against the knowledge base, so only now does it matter
        # whether another processor has learned something, or an analyst retired, merged or named a
        # fact on the desk, since it was loaded.
        if knowledge_version(session) != self.kb_version:
            self._reload(session)
            analysis = self.detector.analyze(article_input(article), self.kb)
        alerts = commit_analysis(
            session, article, feed_name, analysis, self.channels, self.also_reported, self.base_url
        )
        if alerts is None:
            session.rollback()
        else:
            session.commit()
        return analysis, alerts

    def _reload(self, session: Session) -> None:
        # The version is read first: a fact stored in between only makes the next check reload.
        self.kb_version = knowledge_version(session)
        self.kb = load_knowledge(session, story_days=self.story_days)
        session.commit()

    def _learned(self, article: Article, analysis: Analysis) -> None:
        if analysis.new_facts:
            self.kb_version = None
        else:
            # No new fact moves the version, yet the story must be remembered for the next one.
            analysis.teach(
                self.kb,
                source_ref=article.url or f"article:{article.id}",
                published=article.published_at,
                story_ref=str(article.id),
            )

    def count(self, article_id: int, analysis: Analysis, alerts: Sequence[Alert], seconds: float) -> None:
        """An article's verdict is recorded: count it, in the report, the metrics and the log."""
        if self.metrics is not None:
            self.metrics.article_processed(analysis.relevant, seconds)
            for finding in analysis.findings:
                self.metrics.finding(finding.kind)
        self.report.processed += 1
        self.report.relevant += int(analysis.relevant)
        self.report.alerted += int(bool(alerts))
        self.report.alert_ids.extend(alert.id for alert in alerts)
        log.info(
            "article processed",
            extra={
                "article_id": article_id,
                "relevant": analysis.relevant,
                "relevance": round(float(analysis.relevance), 3),
                "findings": len(analysis.findings),
                "alerts": len(alerts),
                "duration_ms": round(seconds * 1000, 1),
            },
        )
