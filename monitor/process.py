"""Process stored articles: analyse each one and commit what it teaches, with its alerts.

Each article is committed in one transaction: its analysis, its findings, the facts it adds to the
knowledge base and one outbox row per alert channel. A crash between two articles loses nothing
(the next run picks up the articles still marked new) and cannot alert twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import bindparam, delete, func, select, tuple_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from monitor.alerts.content import AlertContent, ClosestAllegation, FindingView
from monitor.alerts.followups import also_reported_rows
from monitor.analysis.detector import Analysis, ArticleInput, Detector
from monitor.analysis.facts import TargetIdentity
from monitor.analysis.knowledge import Fact, KnowledgeBase, Story
from monitor.metrics import Metrics
from monitor.store.db import SessionFactory
from monitor.store.models import Alert, Article, Feed, Finding, KnownFact, utcnow

log = logging.getLogger(__name__)

# An article whose analysis keeps failing is set aside after this many tries, with its error.
MAX_ATTEMPTS = 3


@dataclass
class ProcessReport:
    processed: int = 0
    relevant: int = 0
    alerted: int = 0
    failed: int = 0
    alert_ids: list[int] = field(default_factory=list)


def _fact_from_row(row: KnownFact) -> Fact:
    return Fact(
        kind=row.kind,  # type: ignore[arg-type]
        value=row.value,
        about=row.about,
        evidence=row.evidence,
        source_kind=row.source_kind,  # type: ignore[arg-type]
        source_ref=row.source_ref,
        first_seen=row.first_seen_at,
        id=row.id,
    )


def load_knowledge(session: Session, *, story_days: float, now: datetime | None = None) -> KnowledgeBase:
    """The knowledge base as stored: every known fact, and the recent relevant articles as stories."""
    rows = list(session.scalars(select(KnownFact).order_by(KnownFact.id)))
    facts = [_fact_from_row(row) for row in rows]
    by_article: dict[int, list[Fact]] = {}
    for row, fact in zip(rows, facts, strict=True):
        if row.article_id is not None:
            by_article.setdefault(row.article_id, []).append(fact)
    since = (now or utcnow()) - timedelta(days=story_days)
    recent = session.execute(
        select(Article.id, Article.title, Article.url, Article.embedding, Article.published_at, Article.fetched_at)
        .where(Article.relevant.is_(True), Article.embedding.is_not(None), Article.fetched_at >= since)
        .order_by(Article.id)
    )
    stories = [
        Story(
            ref=str(article_id),
            title=title,
            vector=np.frombuffer(embedding, dtype=np.float32),
            published=published or fetched,
            facts=by_article.get(article_id, []),
        )
        for article_id, title, _url, embedding, published, fetched in recent
    ]
    return KnowledgeBase(facts, stories)


def has_seed_knowledge(session: Session) -> bool:
    return bool(session.scalar(select(func.count()).select_from(KnownFact).where(KnownFact.source_kind == "seed")))


def seed_knowledge_is_current(session: Session) -> bool:
    """Whether the stored seed targets carry an identity (whose, what kind, names): seed knowledge
    derived by an earlier version of the reader is derived again, since novelty compares identities."""
    abouts = session.scalars(select(KnownFact.about).where(KnownFact.source_kind == "seed", KnownFact.kind == "target"))
    return all(TargetIdentity.parse(about or "") is not None for about in abouts)


def store_seed_knowledge(session: Session, facts: Sequence[Fact]) -> int:
    """Replace the seed-derived facts with FACTS; facts learned from articles stay."""
    seed_ids = select(KnownFact.id).where(KnownFact.source_kind == "seed")
    session.execute(update(Finding).where(Finding.closest_fact_id.in_(seed_ids)).values(closest_fact_id=None))
    session.execute(delete(KnownFact).where(KnownFact.source_kind == "seed"))
    session.flush()
    known = {(row.kind, row.value, row.about) for row in session.scalars(select(KnownFact))}
    added = 0
    for fact in facts:
        key = (fact.kind, fact.value, fact.about)
        if key in known:
            continue
        known.add(key)
        session.add(
            KnownFact(
                kind=fact.kind,
                value=fact.value,
                about=fact.about,
                evidence=fact.evidence,
                source_kind="seed",
                source_ref=fact.source_ref,
                first_seen_at=fact.first_seen or utcnow(),
            )
        )
        added += 1
    return added


def ensure_seed_knowledge(
    session_factory: SessionFactory,
    derive: Callable[[], Sequence[Fact]],
    *,
    rebuild: bool = False,
) -> int:
    """Derive the knowledge base from the seeds unless it is already stored (or REBUILD)."""
    with session_factory.begin() as session:
        if has_seed_knowledge(session) and seed_knowledge_is_current(session) and not rebuild:
            return 0
        return store_seed_knowledge(session, derive())


def _describe_fact(fact: Fact) -> str:
    if fact.kind == "denial" and fact.about:
        return f"{fact.value} denied {fact.about}"
    return fact.value


def alert_content(article: Article, feed_name: str, analysis: Analysis) -> AlertContent:
    seed = analysis.closest_seed
    return AlertContent(
        article_title=article.title,
        article_url=article.url,
        feed=feed_name,
        published=article.published_at,
        relevance=round(float(analysis.relevance), 4),
        findings=[
            FindingView(
                kind=finding.kind,
                value=finding.value,
                about=finding.about,
                evidence=finding.evidence,
                closest_known=_describe_fact(finding.closest) if finding.closest else None,
                closest_source=finding.closest.source_ref if finding.closest else None,
                similarity=None if finding.similarity is None else round(float(finding.similarity), 4),
                reason=finding.reason,
            )
            for finding in analysis.findings
        ],
        closest_allegation=(
            ClosestAllegation(source=seed.source, sentence=seed.sentence, score=round(float(seed.score), 4))
            if seed
            else None
        ),
    )


def analysis_summary(analysis: Analysis) -> dict[str, object]:
    """What `monitor analyze` prints and what the article row keeps of its analysis."""
    seed = analysis.closest_seed
    return {
        "relevance": round(float(analysis.relevance), 4),
        "relevant": analysis.relevant,
        "reason": analysis.reason,
        "same_story_as": analysis.same_story_as,
        "closest_allegation": (
            {"source": seed.source, "sentence": seed.sentence, "score": round(float(seed.score), 4)} if seed else None
        ),
        "mentions": [
            {"kind": m.kind, "value": m.value, "about": m.about, "evidence": m.evidence} for m in analysis.mentions
        ],
        "findings": [
            {
                "kind": f.kind,
                "value": f.value,
                "about": f.about,
                "evidence": f.evidence,
                "closest_known": _describe_fact(f.closest) if f.closest else None,
                "closest_source": f.closest.source_ref if f.closest else None,
                "similarity": None if f.similarity is None else round(float(f.similarity), 4),
                "reason": f.reason,
            }
            for f in analysis.findings
        ],
    }


def _story_id(ref: str | None) -> int | None:
    return int(ref) if ref and ref.isdigit() else None


def _stored_keys(session: Session, wanted: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """Which of these (kind, value, about) keys the knowledge base already holds."""
    if not wanted:
        return set()
    columns = (KnownFact.kind, KnownFact.value, KnownFact.about)
    rows = session.execute(select(*columns).where(tuple_(*columns).in_(wanted)))
    return {(kind, value, about) for kind, value, about in rows}


def _commit_analysis(
    session: Session,
    article: Article,
    feed_name: str,
    analysis: Analysis,
    channels: Sequence[str],
    also_reported: Sequence[str] = (),
) -> list[Alert] | None:
    """Record ANALYSIS of ARTICLE in SESSION (the caller commits): its verdict, findings, new facts
    and outbox rows. None, with nothing recorded, when the article is no longer new: another
    processor got to it after this one's lease ran out."""
    now = utcnow()
    verdict = _verdict(analysis, now)
    if not _record_verdict(session, article.id, verdict):
        return None
    if analysis.relevant:
        # What the also-reported rows below read of the article, without making it dirty again.
        set_committed_value(article, "same_story_as_id", verdict["same_story_as_id"])
    for finding in analysis.findings:
        session.add(
            Finding(
                article_id=article.id,
                kind=finding.kind,
                value=finding.value[:300],
                about=finding.about[:300],
                evidence=finding.evidence,
                closest_fact_id=finding.closest.id if finding.closest else None,
                closest_value=_describe_fact(finding.closest)[:300] if finding.closest else None,
                similarity=None if finding.similarity is None else float(finding.similarity),
                reason=finding.reason,
            )
        )
    known = _stored_keys(session, {(fact.kind, fact.value[:300], fact.about[:300]) for fact in analysis.new_facts})
    for fact in analysis.new_facts:
        if (fact.kind, fact.value[:300], fact.about[:300]) in known:
            continue
        known.add((fact.kind, fact.value[:300], fact.about[:300]))
        session.add(
            KnownFact(
                kind=fact.kind,
                value=fact.value[:300],
                about=fact.about[:300],
                evidence=fact.evidence,
                source_kind="article",
                source_ref=article.url or f"article:{article.id}",
                article_id=article.id,
                first_seen_at=now,
            )
        )
    alerts: list[Alert] = []
    if analysis.relevant and analysis.findings:
        payload = alert_content(article, feed_name, analysis).model_dump(mode="json")
        for channel in channels:
            alert = Alert(article_id=article.id, channel=channel, payload=payload, next_attempt_at=now)
            session.add(alert)
            alerts.append(alert)
    elif analysis.relevant and also_reported:
        # A repeat of an alerted story that brings nothing new: an "also reported by" line on the
        # channels that can attach one to that alert (a Slack thread, the email digest), never an alert.
        for alert in also_reported_rows(session, article, feed_name, also_reported):
            session.add(alert)
            alerts.append(alert)
    return alerts


def _verdict(analysis: Analysis, now: datetime) -> dict[str, object]:
    """The article row's new values: processed, with what the analysis found."""
    verdict: dict[str, object] = {
        "status": "processed",
        "lease_until": None,
        "processed_at": now,
        "error": None,
        "relevance": float(analysis.relevance),
        "relevant": bool(analysis.relevant),
        "analysis": analysis_summary(analysis),
    }
    if analysis.relevant:
        verdict["embedding"] = np.asarray(analysis.vector, dtype=np.float32).tobytes()
        verdict["same_story_as_id"] = _story_id(analysis.same_story_as)
    return verdict


def _record_verdict(target: Session, article_id: int, verdict: dict[str, object]) -> bool:
    """Write VERDICT if the article is still new; False when another processor recorded it first
    (its lease ran out while this one worked). A plain guarded UPDATE rather than the ORM's unit of
    work: the guard is what keeps two processors from both recording, and alerting on, one article."""
    recorded = target.execute(
        update(Article)
        .where(Article.id == article_id, Article.status == "new")
        .values(verdict)
        .execution_options(synchronize_session=False)
    )
    return bool(recorded.rowcount == 1)  # type: ignore[attr-defined]


@dataclass
class _OffTopic:
    """An article judged off-topic, its verdict not yet written."""

    article_id: int
    verdict: dict[str, object]
    analysis: Analysis
    seconds: float


def _record_off_topic(session: Session, judged: Sequence[_OffTopic]) -> set[int]:
    """Write the verdicts of articles judged off-topic, each if its article is still new, in one
    transaction: the rows still new, locked, then one statement run for all of them (on PostgreSQL a
    round trip and a commit per article cost more than the rest of the loop). They bring no alerts,
    so a crash before the commit only costs their analysis again once their lease runs out.
    Returns the ids recorded."""
    if not judged:
        return set()
    still_new = set(
        session.scalars(
            select(Article.id)
            .where(Article.id.in_([j.article_id for j in judged]), Article.status == "new")
            .with_for_update()
        )
    )
    chosen = [j for j in judged if j.article_id in still_new]
    if chosen:
        columns = list(chosen[0].verdict)
        statement = (
            update(Article)
            .where(Article.id == bindparam("verdict_article_id"), Article.status == "new")
            .values({column: bindparam(f"verdict_{column}") for column in columns})
        )
        session.connection().execute(
            statement,
            [{"verdict_article_id": j.article_id, **{f"verdict_{c}": j.verdict[c] for c in columns}} for j in chosen],
        )
    session.commit()
    return still_new


def claim_new_articles(session: Session, now: datetime, limit: int, lease_s: float) -> list[int]:
    """Ids of new articles in arrival order, leased to this processor; the caller commits."""
    free = (Article.lease_until.is_(None)) | (Article.lease_until <= now)
    candidates = list(
        session.scalars(
            select(Article.id)
            .where(Article.status == "new", free)
            .order_by(Article.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; the guarded update below covers SQLite
        )
    )
    if not candidates:
        return []
    claimed = set(
        session.scalars(
            update(Article)
            .where(Article.id.in_(candidates), Article.status == "new", free)
            .values(lease_until=now + timedelta(seconds=lease_s))
            .returning(Article.id)
            .execution_options(synchronize_session=False)
        )
    )
    return [article_id for article_id in candidates if article_id in claimed]


def release_articles(session_factory: SessionFactory, ids: Sequence[int]) -> None:
    """Hand claimed, unstarted articles back at once instead of at lease expiry."""
    with session_factory.begin() as session:
        session.execute(
            update(Article).where(Article.id.in_(ids), Article.status == "new").values(lease_until=None)
        )


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
) -> ProcessReport:
    """Analyse up to LIMIT new articles in arrival order; each one learns before the next.

    The batch is loaded in one query and pre-screened at once, and the articles that pass are
    embedded ahead (_EmbedAhead): an off-topic article costs the model its title and lead only.
    Then the verdicts of the articles that are not relevant are written together at the end, one
    statement for all; a relevant one also asks whether the knowledge base has moved, and writes its
    verdict, findings, facts and outbox rows in one transaction."""
    report = ProcessReport()
    with session_factory() as session:
        ids = claim_new_articles(session, utcnow(), limit, lease_s)
        session.commit()
        if not ids:
            return report
    with _batch_connection(session_factory) as session:
        off_topic: list[_OffTopic] = []
        _analyse_batch(
            session_factory,
            session,
            detector,
            channels,
            ids,
            off_topic,
            report,
            story_days=story_days,
            metrics=metrics,
            should_stop=should_stop,
            also_reported=also_reported,
        )
        recorded = _record_off_topic(session, off_topic)
    for judged in off_topic:
        if judged.article_id in recorded:
            _count(report, metrics, judged.article_id, judged.analysis, [], judged.seconds)
        else:
            log.info("article already processed elsewhere", extra={"article_id": judged.article_id})
    return report


def _analyse_batch(
    session_factory: SessionFactory,
    session: Session,
    detector: Detector,
    channels: Sequence[str],
    ids: Sequence[int],
    off_topic: list[_OffTopic],
    report: ProcessReport,
    *,
    story_days: float,
    metrics: Metrics | None,
    should_stop: Callable[[], bool],
    also_reported: Sequence[str],
) -> None:
    """The loop of process_articles over the claimed IDS: relevant articles are committed one by one
    in SESSION, off-topic verdicts are appended to OFF_TOPIC for the caller to write."""
    batch = _load_batch(session, ids)
    session.commit()
    ahead = _EmbedAhead(detector, [article_input(batch[i][0]) if i in batch else None for i in ids])
    kb, kb_version = KnowledgeBase(), -1
    for position, article_id in enumerate(ids):
        if should_stop():
            release_articles(session_factory, ids[position:])
            break
        if article_id not in batch:
            continue
        ahead.before(position)
        started = time.perf_counter()
        article, feed_name = batch[article_id]
        if kb_version < 0:  # first use, or this processor's last commit taught it something
            kb, kb_version = _knowledge(session, story_days)
            session.commit()
        try:
            analysis = detector.analyze(article_input(article), kb)
            if analysis.relevant:
                # Only a relevant article is judged against the knowledge base, so only now does
                # it matter whether another processor has learned something since it was loaded.
                if _knowledge_version(session) != kb_version:
                    kb, kb_version = _knowledge(session, story_days)
                    analysis = detector.analyze(article_input(article), kb)
                alerts = _commit_analysis(session, article, feed_name, analysis, channels, also_reported)
                if alerts is not None:
                    session.commit()
                else:
                    session.rollback()
            else:
                # Nothing to write but the verdict: with the others of the batch, and counted then.
                seconds = time.perf_counter() - started
                off_topic.append(_OffTopic(article.id, _verdict(analysis, utcnow()), analysis, seconds))
                continue
            if alerts is None:
                log.info("article already processed elsewhere", extra={"article_id": article_id})
                continue
        except Exception as exc:  # the batch boundary: one bad article must not stop the rest
            session.rollback()
            _record_failure(session_factory, article_id, exc)
            report.failed += 1
            log.exception("analyze failed", extra={"article_id": article_id})
            continue
        if analysis.new_facts:
            kb_version = -1
        if analysis.relevant and not analysis.new_facts:
            # No new fact moves the version, yet the story must be remembered for the next one.
            analysis.teach(
                kb,
                source_ref=article.url or f"article:{article.id}",
                published=article.published_at,
                story_ref=str(article.id),
            )
        _count(report, metrics, article_id, analysis, alerts, time.perf_counter() - started)


def _count(
    report: ProcessReport, metrics: Metrics | None, article_id: int, analysis: Analysis, alerts: Sequence[Alert], seconds: float
) -> None:
    """An article's verdict is recorded: count it, in the report, the metrics and the log."""
    if metrics is not None:
        metrics.article_processed(analysis.relevant, seconds)
        for finding in analysis.findings:
            metrics.finding(finding.kind)
    report.processed += 1
    report.relevant += int(analysis.relevant)
    report.alerted += int(bool(alerts))
    report.alert_ids.extend(alert.id for alert in alerts)
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


@contextmanager
def _batch_connection(session_factory: SessionFactory) -> Iterator[Session]:
    """A session that keeps one database connection for the whole batch. A session bound to the
    engine hands its connection back after every commit and takes one, pinged first, for the next
    transaction: round trips that cost more than the statements of an off-topic article."""
    with session_factory() as probe:
        engine = probe.get_bind()
    with engine.connect() as connection, session_factory(bind=connection) as session:
        yield session


def _knowledge_version(session: Session) -> int:
    """The newest known fact's id: it moves whenever any processor learns something."""
    return session.scalar(select(func.coalesce(func.max(KnownFact.id), 0))) or 0


def _knowledge(session: Session, story_days: float) -> tuple[KnowledgeBase, int]:
    """The knowledge base as stored now, and its version (read first: a fact stored in between
    only makes the next check reload)."""
    version = _knowledge_version(session)
    return load_knowledge(session, story_days=story_days), version


def _load_batch(session: Session, ids: Sequence[int]) -> dict[int, tuple[Article, str]]:
    """The claimed articles still new, each with its feed's name, in one query."""
    rows = session.execute(
        select(Article, Feed.name).join(Feed, Feed.id == Article.feed_id).where(Article.id.in_(ids), Article.status == "new")
    )
    return {article.id: (article, name) for article, name in rows}


# Embedding ahead covers this many articles that passed the pre-screen at a time: enough sentences
# for full model batches, little enough that a stop request waits for one short model call.
AHEAD_ARTICLES = 8


class _EmbedAhead:
    """Cheap first, then in bulk: the claimed batch is pre-screened at once (the title and lead of
    every article without an allegation in one model call), and the sentences of the articles that
    pass are embedded AHEAD_ARTICLES at a time before the loop reaches them. Analysing an article
    then finds its vectors in the embedder's memo; an article the pre-screen rejects is never
    embedded beyond its title and lead. Any failure here only loses the head start: each article's
    own analysis redoes the work and reports its error."""

    def __init__(self, detector: Detector, articles: Sequence[ArticleInput | None]) -> None:
        self.detector = detector
        self.articles: list[ArticleInput | None] = [None] * len(articles)
        self.done = 0
        try:
            present = [a for a in articles if a is not None]
            screens = iter(detector.prescreen(present))
            self.articles = [a if a is not None and next(screens).passed else None for a in articles]
        except Exception:  # only the head start is lost
            log.warning("pre-screen ahead failed", exc_info=True)

    def before(self, position: int) -> None:
        """Embed ahead from POSITION unless that article's vectors are already there."""
        if position < self.done:
            return
        chosen: list[ArticleInput] = []
        end = position
        while end < len(self.articles) and len(chosen) < AHEAD_ARTICLES:
            if self.articles[end] is not None:
                chosen.append(self.articles[end])  # type: ignore[arg-type]
            end += 1
        self.done = end
        if not chosen:
            return
        try:
            self.detector.embed_ahead(chosen)
        except Exception:  # only the head start is lost
            log.warning("embed ahead failed", exc_info=True)


def _record_failure(session_factory: SessionFactory, article_id: int, exc: Exception) -> None:
    with session_factory.begin() as session:
        article = session.get(Article, article_id)
        if article is None:
            return
        article.attempts += 1
        article.lease_until = None
        article.error = f"analyze: {type(exc).__name__}: {exc}"[:2000]
        if article.attempts >= MAX_ATTEMPTS:
            article.status = "failed"
