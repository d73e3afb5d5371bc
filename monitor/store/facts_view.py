"""What the knowledge page and /api/facts read: the known facts with their source and how many later
mentions each absorbed, filtered, searched and paged by key (never by offset)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, and_, case, func, literal_column, or_, select
from sqlalchemy.orm import Session

from monitor.store.feedback import clean_text
from monitor.store.models import Article, FactMatch, KnownFact

FactKindName = Literal["country", "target", "denial"]
SourceName = Literal["seed", "article", "analyst"]
# The page shows countries, then targets, then denials: the order an analyst reads an alert in.
KIND_ORDER = ("country", "target", "denial")
_RANK = case({kind: rank for rank, kind in enumerate(KIND_ORDER)}, value=KnownFact.kind, else_=len(KIND_ORDER))


@dataclass(frozen=True)
class FactFilter:
    words: str = ""
    kind: FactKindName | None = None
    source: SourceName | None = None
    # True: only retired facts; False: only those in use; None: both.
    retired: bool | None = False
    # One fact by its id (a link from the audit trail).
    fact_id: int | None = None


@dataclass(frozen=True)
class FactView:
    id: int
    kind: str
    value: str
    about: str
    evidence: str
    source_kind: str
    source_ref: str
    article_id: int | None
    article_title: str | None
    first_seen_at: datetime
    retired_at: datetime | None
    retired_by: str | None
    merged_into_id: int | None
    # Later mentions judged known because of this fact: alerts it suppressed.
    absorbed: int


@dataclass(frozen=True)
class MatchView:
    article_id: int
    article_title: str
    value: str
    evidence: str
    similarity: float | None
    created_at: datetime


def _like(words: str, dialect: str) -> list[ColumnElement[bool]]:
    """Each word must occur (any case) in the value, the about or the evidence."""
    found: list[ColumnElement[bool]] = []
    if dialect == "sqlite":
        # SQLite's LIKE ignores case as its lower() does (ASCII letters only): the same matches,
        # without lowering three columns of every fact (40 -> 23 ms over 20,000 facts).
        columns = [KnownFact.value, KnownFact.about, KnownFact.evidence]
    else:
        # One text per fact, the expression of PostgreSQL's trigram index (migration 0006); the
        # separator is a space, which no word (split on whitespace) contains.
        space = literal_column("' '")
        text = KnownFact.value.op("||")(space).op("||")(KnownFact.about).op("||")(space).op("||")(KnownFact.evidence)
        columns = [func.lower(text)]
    for word in clean_text(words).lower().split()[:8]:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        found.append(or_(*(column.like(pattern, escape="\\") for column in columns)))
    return found


def _where(chosen: FactFilter, dialect: str) -> list[ColumnElement[bool]]:
    where = _like(chosen.words, dialect)
    if chosen.fact_id is not None:
        where.append(KnownFact.id == chosen.fact_id)
    if chosen.kind:
        where.append(KnownFact.kind == chosen.kind)
    if chosen.source:
        where.append(KnownFact.source_kind == chosen.source)
    if chosen.retired is True:
        where.append(KnownFact.retired_at.is_not(None))
    elif chosen.retired is False:
        where.append(KnownFact.retired_at.is_(None))
    return where


def absorbed_counts(session: Session, fact_ids: list[int]) -> dict[int, int]:
    """How many mentions each of FACT_IDS absorbed: one grouped query for a whole page."""
    if not fact_ids:
        return {}
    rows = session.execute(
        select(FactMatch.fact_id, func.count()).where(FactMatch.fact_id.in_(fact_ids)).group_by(FactMatch.fact_id)
    )
    return {int(fact_id): int(count) for fact_id, count in rows}


def _views(session: Session, rows: list[tuple[KnownFact, str | None]]) -> list[FactView]:
    counts = absorbed_counts(session, [fact.id for fact, _ in rows])
    return [
        FactView(
            id=fact.id,
            kind=fact.kind,
            value=fact.value,
            about=fact.about,
            evidence=fact.evidence,
            source_kind=fact.source_kind,
            source_ref=fact.source_ref,
            article_id=fact.article_id,
            article_title=title,
            first_seen_at=fact.first_seen_at,
            retired_at=fact.retired_at,
            retired_by=fact.retired_by,
            merged_into_id=fact.merged_into_id,
            absorbed=counts.get(fact.id, 0),
        )
        for fact, title in rows
    ]


def parse_cursor(cursor: str | None) -> tuple[int, int] | None:
    """A cursor from list_facts ("RANK.ID"); None for the first page or one that does not parse."""
    if not cursor:
        return None
    rank, _, fact_id = cursor.partition(".")
    # Digits only, and no more than the database's integers hold.
    if not (rank.isascii() and rank.isdigit() and fact_id.isascii() and fact_id.isdigit()):
        return None
    if len(rank) > 2 or len(fact_id) > 10 or int(fact_id) > 2**31 - 1:
        return None
    return int(rank), int(fact_id)


def list_facts(
    session: Session, chosen: FactFilter, *, after: str | None = None, limit: int = 50
) -> tuple[list[FactView], str | None]:
    """One page of facts, countries then targets then denials, each kind oldest first; and the
    cursor of the next page (None on the last)."""
    query = select(KnownFact.id).where(*_where(chosen, session.get_bind().dialect.name))
    start = parse_cursor(after)
    if start is not None:
        rank, fact_id = start
        query = query.where(or_(_RANK > rank, and_(_RANK == rank, KnownFact.id > fact_id)))
    page = query.order_by(_RANK, KnownFact.id).limit(limit + 1).subquery()
    rows = list(
        session.execute(
            select(KnownFact, Article.title, _RANK.label("rank"))
            .join(page, page.c.id == KnownFact.id)
            .outerjoin(Article, Article.id == KnownFact.article_id)
            .order_by(_RANK, KnownFact.id)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    following = f"{rows[-1].rank}.{rows[-1][0].id}" if more and rows else None
    return _views(session, [(row[0], row[1]) for row in rows]), following


def kind_counts(session: Session, chosen: FactFilter) -> dict[str, int]:
    """How many facts of each kind the filter (its kind aside) finds: the page's tab labels."""
    every_kind = FactFilter(words=chosen.words, source=chosen.source, retired=chosen.retired, fact_id=chosen.fact_id)
    where = _where(every_kind, session.get_bind().dialect.name)
    rows = session.execute(select(KnownFact.kind, func.count()).where(*where).group_by(KnownFact.kind))
    return {str(kind): int(count) for kind, count in rows}


def fact_view(session: Session, fact_id: int) -> FactView | None:
    row = session.execute(
        select(KnownFact, Article.title)
        .outerjoin(Article, Article.id == KnownFact.article_id)
        .where(KnownFact.id == fact_id)
    ).first()
    return _views(session, [(row[0], row[1])])[0] if row else None


def fact_matches(session: Session, fact_id: int, limit: int = 20) -> list[MatchView]:
    """The latest mentions FACT_ID absorbed, with their article."""
    rows = session.execute(
        select(FactMatch, Article.title)
        .join(Article, Article.id == FactMatch.article_id)
        .where(FactMatch.fact_id == fact_id)
        .order_by(FactMatch.id.desc())
        .limit(limit)
    )
    return [
        MatchView(match.article_id, title, match.value, match.evidence, match.similarity, match.created_at)
        for match, title in rows
    ]
