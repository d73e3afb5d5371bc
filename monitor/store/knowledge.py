"""The knowledge repository: known facts and recent stories in, a KnowledgeBase out.

The seed part is derived from seeds/ once and replaced as a whole; facts learned from articles are
added with the article that taught them and are never replaced by a rebuild.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from monitor.analysis.facts import TargetIdentity
from monitor.analysis.knowledge import Fact, KnowledgeBase, Story
from monitor.store.db import SessionFactory
from monitor.store.models import Article, Finding, KnownFact, utcnow

# Longest value, and longest "about", a fact row holds.
VALUE_MAX = 300


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
        select(Article.id, Article.title, Article.embedding, Article.published_at, Article.fetched_at)
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
        for article_id, title, embedding, published, fetched in recent
    ]
    return KnowledgeBase(facts, stories)


def knowledge_version(session: Session) -> int:
    """The newest known fact's id: it moves whenever any processor learns something."""
    return session.scalar(select(func.coalesce(func.max(KnownFact.id), 0))) or 0


def add_learned_facts(session: Session, facts: Sequence[Fact], source_ref: str, article_id: int, now: datetime) -> None:
    """FACTS that ARTICLE_ID taught, those not known yet (the caller commits, with the article)."""

    def key(fact: Fact) -> tuple[str, str, str]:
        return fact.kind, fact.value[:VALUE_MAX], fact.about[:VALUE_MAX]

    wanted = {key(fact) for fact in facts}
    columns = (KnownFact.kind, KnownFact.value, KnownFact.about)
    rows = session.execute(select(*columns).where(tuple_(*columns).in_(wanted))) if wanted else []
    known = {(kind, value, about) for kind, value, about in rows}
    for fact in facts:
        if key(fact) in known:
            continue
        known.add(key(fact))
        kind, value, about = key(fact)
        session.add(
            KnownFact(
                kind=kind,
                value=value,
                about=about,
                evidence=fact.evidence,
                source_kind="article",
                source_ref=source_ref,
                article_id=article_id,
                first_seen_at=now,
            )
        )


def has_seed_knowledge(session: Session) -> bool:
    return bool(session.scalar(select(func.count()).select_from(KnownFact).where(KnownFact.source_kind == "seed")))


def seed_knowledge_is_current(session: Session) -> bool:
    """Whether the stored seed targets carry an identity (whose, what kind, names): seed knowledge
    derived by an earlier version of the reader is derived again, since novelty compares identities."""
    abouts = session.scalars(select(KnownFact.about).where(KnownFact.source_kind == "seed", KnownFact.kind == "target"))
    return all(TargetIdentity.parse(about or "") is not None for about in abouts)


def store_seed_knowledge(session: Session, facts: Sequence[Fact]) -> int:
    """Retire the seed-derived facts and store FACTS in their place; facts learned from articles stay."""
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
    session_factory: SessionFactory, derive: Callable[[], Sequence[Fact]], *, rebuild: bool = False
) -> int:
    """Derive the knowledge base from the seeds unless it is already stored (or REBUILD)."""
    with session_factory.begin() as session:
        if has_seed_knowledge(session) and seed_knowledge_is_current(session) and not rebuild:
            return 0
        return store_seed_knowledge(session, derive())


def known_facts(session: Session) -> list[KnownFact]:
    """Every known fact, by kind and value (what `monitor kb` shows)."""
    return list(session.scalars(select(KnownFact).order_by(KnownFact.kind, KnownFact.value, KnownFact.id)))


def knows_nothing(session: Session) -> bool:
    return session.scalar(select(KnownFact.id).limit(1)) is None
