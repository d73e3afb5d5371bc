"""The knowledge repository: known facts and recent stories in, a KnowledgeBase out.

The seed part is derived from seeds/ once and refreshed by a rebuild; facts learned from articles
are added with the article that taught them and are never replaced by a rebuild. A fact an analyst
retires (monitor/store/feedback.py) stays in the table, for the record and for undo, but is no
longer loaded: it suppresses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from monitor.analysis.facts import TargetIdentity
from monitor.analysis.knowledge import Fact, KnowledgeBase, Story
from monitor.store.db import SessionFactory
from monitor.store.models import Article, FactMatch, FactSource, Feedback, Finding, KnownFact, utcnow

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
    """The knowledge base as stored: every fact not retired, and the recent relevant articles as
    stories (each with the facts it taught that are not retired either)."""
    rows = list(session.scalars(select(KnownFact).where(KnownFact.retired_at.is_(None)).order_by(KnownFact.id)))
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


# The newest known fact's id and the newest feedback row's id.
KnowledgeVersion = tuple[int, int]


def knowledge_version(session: Session) -> KnowledgeVersion:
    """What moves whenever the usable knowledge changes: a processor learns a fact (a new row), or an
    analyst retires, merges, names a fact or undoes one of these (each writes a feedback row, in the
    same transaction as its change; a retire changes no fact id, so the fact id alone would miss it)."""
    # One round trip: it is asked before every relevant article is committed.
    facts = select(func.coalesce(func.max(KnownFact.id), 0)).scalar_subquery()
    feedback = select(func.coalesce(func.max(Feedback.id), 0)).scalar_subquery()
    row = session.execute(select(facts, feedback)).one()
    return int(row[0]), int(row[1])


def add_learned_facts(session: Session, facts: Sequence[Fact], source_ref: str, article_id: int, now: datetime) -> None:
    """FACTS that ARTICLE_ID taught, those not known yet (the caller commits, with the article).

    A key already in the table is skipped even when that fact is retired: an analyst retired it
    because it was wrong, and the processor must not learn it again from the next article that
    repeats the same mistake (undo, or "missed", is how a retired fact comes back)."""

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
                source_kind=FactSource.ARTICLE,
                source_ref=source_ref,
                article_id=article_id,
                first_seen_at=now,
            )
        )


@dataclass(frozen=True)
class MatchRow:
    """A mention an article made that a known fact absorbed (its alert suppressed by that fact)."""

    fact_id: int
    kind: str
    value: str
    evidence: str
    similarity: float | None


def add_fact_matches(session: Session, article_id: int, matches: Sequence[MatchRow], now: datetime) -> None:
    """MATCHES of ARTICLE_ID's mentions, with its verdict (the caller commits): the desk counts them
    to say how much each fact suppresses."""
    for match in matches:
        session.add(
            FactMatch(
                article_id=article_id,
                fact_id=match.fact_id,
                kind=match.kind,
                value=match.value[:VALUE_MAX],
                evidence=match.evidence,
                similarity=match.similarity,
                created_at=now,
            )
        )


def has_seed_knowledge(session: Session) -> bool:
    return bool(
        session.scalar(select(func.count()).select_from(KnownFact).where(KnownFact.source_kind == FactSource.SEED))
    )


def seed_knowledge_is_current(session: Session) -> bool:
    """Whether the stored seed targets carry an identity (whose, what kind, names): seed knowledge
    derived by an earlier version of the reader is derived again, since novelty compares identities.
    Retired ones are not asked: they are kept only for the record."""
    abouts = session.scalars(
        select(KnownFact.about).where(
            KnownFact.source_kind == FactSource.SEED, KnownFact.kind == "target", KnownFact.retired_at.is_(None)
        )
    )
    return all(TargetIdentity.parse(about or "") is not None for about in abouts)


def _referenced_by_analysts(session: Session, ids: Sequence[int]) -> set[int]:
    """Those of IDS that the audit trail, a review or a merge points at: they cannot be deleted."""
    found: set[int] = set()
    for column in (Feedback.fact_id, Finding.review_fact_id, KnownFact.merged_into_id):
        found.update(session.scalars(select(column).where(column.in_(ids)).distinct()))
    return found


def store_seed_knowledge(session: Session, facts: Sequence[Fact]) -> int:
    """The seed-derived facts replaced by FACTS; facts learned from articles stay. A seed fact derived
    again keeps its row (its id, what it absorbed and what analysts said of it, a retire included);
    one no longer derived is deleted with its matches, or retired when an analyst's action points at
    it (the audit trail keeps every row it names). Returns how many facts FACTS stored or refreshed."""
    seeds = {
        (r.kind, r.value, r.about): r
        for r in session.scalars(select(KnownFact).where(KnownFact.source_kind == FactSource.SEED))
    }
    wanted = {(f.kind, f.value, f.about) for f in facts}
    gone = [row.id for key, row in seeds.items() if key not in wanted]
    if gone:
        kept = _referenced_by_analysts(session, gone)
        dropped = [i for i in gone if i not in kept]
        now = utcnow()
        session.execute(
            update(KnownFact)
            .where(KnownFact.id.in_(kept), KnownFact.retired_at.is_(None))
            .values(retired_at=now, retired_by="seeds")
        )
        session.execute(update(Finding).where(Finding.closest_fact_id.in_(dropped)).values(closest_fact_id=None))
        session.execute(delete(FactMatch).where(FactMatch.fact_id.in_(dropped)))
        session.execute(delete(KnownFact).where(KnownFact.id.in_(dropped)))
        session.flush()
    known = {
        (row.kind, row.value, row.about)
        for row in session.scalars(select(KnownFact).where(KnownFact.source_kind != FactSource.SEED))
    }
    stored = 0
    for fact in facts:
        key = (fact.kind, fact.value, fact.about)
        if key in seeds:
            seeds[key].evidence, seeds[key].source_ref = fact.evidence, fact.source_ref
            stored += 1
            continue
        if key in known:
            continue
        known.add(key)
        session.add(
            KnownFact(
                kind=fact.kind,
                value=fact.value,
                about=fact.about,
                evidence=fact.evidence,
                source_kind=FactSource.SEED,
                source_ref=fact.source_ref,
                first_seen_at=fact.first_seen or utcnow(),
            )
        )
        stored += 1
    return stored


def ensure_seed_knowledge(
    session_factory: SessionFactory, derive: Callable[[], Sequence[Fact]], *, rebuild: bool = False
) -> int:
    """Derive the knowledge base from the seeds unless it is already stored (or REBUILD)."""
    with session_factory.begin() as session:
        if has_seed_knowledge(session) and seed_knowledge_is_current(session) and not rebuild:
            return 0
        return store_seed_knowledge(session, derive())


def known_facts(session: Session) -> list[KnownFact]:
    """Every known fact not retired, by kind and value (what `monitor kb` shows)."""
    return list(
        session.scalars(
            select(KnownFact)
            .where(KnownFact.retired_at.is_(None))
            .order_by(KnownFact.kind, KnownFact.value, KnownFact.id)
        )
    )


def knows_nothing(session: Session) -> bool:
    return session.scalar(select(KnownFact.id).limit(1)) is None
