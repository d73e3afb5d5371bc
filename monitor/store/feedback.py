"""The analysts' feedback: each action changes what the monitor knows and writes its audit row.

Every action runs in the caller's transaction (`with sessions.begin() as session:`), so the change
and its audit row are written together or not at all. The audit row's detail keeps each changed
column as it was before and after, and the fact an action created, which is what `undo` restores.
Undo is refused when a later action, not itself undone, changed one of the same rows: undoing the
earlier one would silently overwrite the later one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.store.models import Article, FactSource, Feedback, Finding, KnownFact, Review

# Longest value, and longest "about", a fact row holds (as in monitor/store/knowledge.py).
VALUE_MAX = 300
NAME_MAX = 100
ACTIONS = ("confirm", "not_new", "wrong", "missed", "not_relevant", "retire", "merge")
FactKindName = Literal["country", "target", "denial"]
# One of the actions below with its arguments bound: (session, actor, now) -> the audit row's id.
Action = Callable[[Session, str, datetime], int]

_TRACKED: dict[str, tuple[type[Any], tuple[str, ...]]] = {
    "findings": (Finding, ("review", "reviewed_by", "reviewed_at", "review_fact_id")),
    "articles": (Article, ("review", "reviewed_by", "reviewed_at")),
    "known_facts": (KnownFact, ("retired_at", "retired_by", "merged_into_id")),
}
_DATES = frozenset({"reviewed_at", "retired_at"})


class FeedbackError(Exception):
    """An action that cannot be done; the message says why, in words for the analyst."""


class NotFound(FeedbackError):
    """The finding, article, fact or audit row named does not exist (HTTP 404)."""


class Conflict(FeedbackError):
    """The action is impossible in the present state: already reviewed, already undone (HTTP 409)."""


class Invalid(FeedbackError):
    """The analyst's input cannot make a fact: an empty value, an unknown kind (HTTP 422)."""


def clean_text(text: str) -> str:
    """TEXT as the database can keep it: no NUL (PostgreSQL refuses one in text) and no lone
    surrogate (not encodable as UTF-8), whatever a client sent."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


def _stored(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _loaded(column: str, value: Any) -> Any:
    return datetime.fromisoformat(value) if column in _DATES and value is not None else value


class _Changes:
    """The columns an action sets, each recorded as before and after, for the audit row's detail."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.created_fact: int | None = None

    def set(self, table: str, row: Any, **values: Any) -> None:
        # Recorded even when a value does not change (a second "missed" on an article): the row is
        # still this action's, so an earlier action on it cannot be undone from under it.
        before = {column: _stored(getattr(row, column)) for column in values}
        for column, value in values.items():
            setattr(row, column, value)
        after = {column: _stored(value) for column, value in values.items()}
        self.items.append({"table": table, "id": row.id, "before": before, "after": after})

    def detail(self, **extra: Any) -> dict[str, Any]:
        return {"changes": self.items, "created_fact": self.created_fact, **extra}


def _get(session: Session, model: type[Any], row_id: int, what: str) -> Any:
    row = session.get(model, row_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no {what} {row_id}")
    return row


def _audit(
    session: Session,
    actor: str,
    action: str,
    changes: _Changes,
    now: datetime,
    *,
    finding_id: int | None = None,
    article_id: int | None = None,
    fact_id: int | None = None,
    note: str = "",
    undoes_id: int | None = None,
    **extra: Any,
) -> int:
    row = Feedback(
        actor=actor[:NAME_MAX],
        action=action,
        finding_id=finding_id,
        article_id=article_id,
        fact_id=fact_id,
        detail=changes.detail(**extra),
        note=clean_text(note),
        created_at=now,
        undoes_id=undoes_id,
    )
    session.add(row)
    session.flush()
    return row.id


def _review(
    changes: _Changes, table: str, row: Finding | Article, review: Review | None, actor: str, now: datetime
) -> None:
    changes.set(table, row, review=review, reviewed_by=actor[:NAME_MAX], reviewed_at=now)


def _retire(changes: _Changes, fact: KnownFact, actor: str, now: datetime, into: int | None = None) -> None:
    changes.set("known_facts", fact, retired_at=now, retired_by=actor[:NAME_MAX], merged_into_id=into)


def _unreviewed_finding(session: Session, finding_id: int) -> Finding:
    finding: Finding = _get(session, Finding, finding_id, "finding")
    if finding.review is not None:
        raise Conflict(f"finding {finding_id} is already marked {finding.review}: undo that first")
    return finding


def taught_fact(session: Session, finding: Finding) -> KnownFact | None:
    """The fact FINDING's article taught the knowledge base when the finding was made (None when it
    taught none: another processor had learned it first, or the fact was later deleted)."""
    return session.scalar(
        select(KnownFact)
        .where(
            KnownFact.article_id == finding.article_id,
            KnownFact.kind == finding.kind,
            KnownFact.value == finding.value[:VALUE_MAX],
            KnownFact.about == finding.about[:VALUE_MAX],
        )
        .with_for_update()
    )


# ----- on a finding ---------------------------------------------------------------------------


def confirm(session: Session, finding_id: int, actor: str, now: datetime, note: str = "") -> int:
    """The finding was right: it stays, and its fact keeps suppressing repeats. The audit row's id."""
    finding = _unreviewed_finding(session, finding_id)
    changes = _Changes()
    _review(changes, "findings", finding, Review.CONFIRMED, actor, now)
    return _audit(
        session, actor, "confirm", changes, now, finding_id=finding.id, article_id=finding.article_id, note=note
    )


def not_new(
    session: Session, finding_id: int, actor: str, now: datetime, fact_id: int | None = None, note: str = ""
) -> int:
    """The finding repeats a known fact (FACT_ID, by default the closest one it was compared with):
    it is linked to that fact, and the fact it taught is merged into it, so the two count as one."""
    finding = _unreviewed_finding(session, finding_id)
    chosen = fact_id if fact_id is not None else finding.closest_fact_id
    if chosen is None:
        raise Conflict(f"finding {finding_id} was compared with no known fact: name the fact it repeats")
    known: KnownFact = _get(session, KnownFact, chosen, "fact")
    if known.retired_at is not None:
        raise Conflict(f"fact {known.id} is retired: it cannot be what the finding repeats")
    if known.kind != finding.kind:
        raise Conflict(f"fact {known.id} is a {known.kind}, the finding a {finding.kind}")
    taught = taught_fact(session, finding)
    if taught is not None and taught.id == known.id:
        raise Conflict(f"fact {known.id} is the one this finding taught: name an earlier fact")
    changes = _Changes()
    if taught is not None and taught.retired_at is None:
        _retire(changes, taught, actor, now, into=known.id)
    changes.set(
        "findings",
        finding,
        review=Review.NOT_NEW,
        reviewed_by=actor[:NAME_MAX],
        reviewed_at=now,
        review_fact_id=known.id,
    )
    return _audit(
        session,
        actor,
        "not_new",
        changes,
        now,
        finding_id=finding.id,
        article_id=finding.article_id,
        fact_id=known.id,
        note=note,
    )


def wrong(session: Session, finding_id: int, actor: str, now: datetime, note: str = "") -> int:
    """The finding is wrong: the fact it taught is retired and suppresses nothing from now on."""
    finding = _unreviewed_finding(session, finding_id)
    taught = taught_fact(session, finding)
    changes = _Changes()
    if taught is not None and taught.retired_at is None:
        _retire(changes, taught, actor, now)
    _review(changes, "findings", finding, Review.WRONG, actor, now)
    return _audit(
        session,
        actor,
        "wrong",
        changes,
        now,
        finding_id=finding.id,
        article_id=finding.article_id,
        fact_id=taught.id if taught else None,
        note=note,
    )


# ----- on an article --------------------------------------------------------------------------


def missed(
    session: Session,
    article_id: int,
    actor: str,
    now: datetime,
    *,
    kind: str,
    value: str,
    about: str = "",
    evidence: str = "",
    note: str = "",
) -> int:
    """The article should have alerted on VALUE: it becomes a fact with the analyst as its source
    (a retired fact of that key comes back instead), and the article is marked missed."""
    value, about, evidence = (clean_text(text) for text in (value, about, evidence))
    value, about = " ".join(value.split()), " ".join(about.split())
    if kind not in ("country", "target", "denial"):
        raise Invalid(f"kind must be country, target or denial, not {kind[:20]!r}")
    if not value or len(value) > VALUE_MAX or len(about) > VALUE_MAX:
        raise Invalid(f"the value must have 1 to {VALUE_MAX} characters, and about at most {VALUE_MAX}")
    if kind == "denial" and not about:
        raise Invalid("a denial needs what is denied (about)")
    if kind != "denial":
        about = ""  # only a denial's key has an "about"; a country's or a plain target's is empty
    article: Article = _get(session, Article, article_id, "article")
    if article.review not in (None, Review.MISSED):
        raise Conflict(f"article {article_id} is marked {article.review}: undo that first")
    changes = _Changes()
    fact = session.scalar(
        select(KnownFact)
        .where(KnownFact.kind == kind, KnownFact.value == value, KnownFact.about == about)
        .with_for_update()
    )
    if fact is not None and fact.retired_at is None:
        raise Conflict(f"{kind} {value!r} is already known (fact {fact.id})")
    if fact is not None:
        changes.set("known_facts", fact, retired_at=None, retired_by=None, merged_into_id=None)
    else:
        fact = KnownFact(
            kind=kind,
            value=value,
            about=about,
            evidence=evidence.strip(),
            source_kind=FactSource.ANALYST,
            source_ref=f"analyst:{actor}"[:2000],
            article_id=article.id,
            first_seen_at=now,
        )
        session.add(fact)
        session.flush()
        changes.created_fact = fact.id
    _review(changes, "articles", article, Review.MISSED, actor, now)
    return _audit(session, actor, "missed", changes, now, article_id=article.id, fact_id=fact.id, note=note)


def not_relevant(session: Session, article_id: int, actor: str, now: datetime, note: str = "") -> int:
    """The article is off the topic: marked so, and every fact it taught is retired."""
    article: Article = _get(session, Article, article_id, "article")
    if article.review is not None:
        raise Conflict(f"article {article_id} is already marked {article.review}: undo that first")
    changes = _Changes()
    taught = session.scalars(
        select(KnownFact)
        .where(KnownFact.article_id == article.id, KnownFact.retired_at.is_(None))
        .order_by(KnownFact.id)
        .with_for_update()
    )
    for fact in taught:
        _retire(changes, fact, actor, now)
    _review(changes, "articles", article, Review.NOT_RELEVANT, actor, now)
    return _audit(session, actor, "not_relevant", changes, now, article_id=article.id, note=note)


# ----- on a fact ------------------------------------------------------------------------------


def _live_fact(session: Session, fact_id: int) -> KnownFact:
    fact: KnownFact = _get(session, KnownFact, fact_id, "fact")
    if fact.retired_at is not None:
        raise Conflict(f"fact {fact_id} is already retired")
    return fact


def retire(session: Session, fact_id: int, actor: str, now: datetime, note: str = "") -> int:
    """The fact is wrong: it stays for the record and suppresses nothing from now on."""
    fact = _live_fact(session, fact_id)
    changes = _Changes()
    _retire(changes, fact, actor, now)
    return _audit(session, actor, "retire", changes, now, fact_id=fact.id, article_id=fact.article_id, note=note)


def merge(session: Session, fact_id: int, into_id: int, actor: str, now: datetime, note: str = "") -> int:
    """FACT_ID names the same thing as INTO_ID: it is retired into it, and INTO_ID stands for both."""
    if fact_id == into_id:
        raise Conflict("a fact cannot be merged into itself")
    fact = _live_fact(session, fact_id)
    into: KnownFact = _get(session, KnownFact, into_id, "fact")
    if into.retired_at is not None:
        raise Conflict(f"fact {into_id} is retired: merge into a fact still in use")
    if into.kind != fact.kind:
        raise Conflict(
            f"fact {fact_id} is a {fact.kind} and fact {into_id} a {into.kind}: only facts of one kind merge"
        )
    changes = _Changes()
    _retire(changes, fact, actor, now, into=into.id)
    return _audit(session, actor, "merge", changes, now, fact_id=fact.id, note=note, into=into.id)


# ----- undo -----------------------------------------------------------------------------------


def _touched(row: Feedback) -> set[tuple[str, int]]:
    """The rows an action changed, and the facts it pointed at (the fact a finding repeats, the one
    a merge kept): undoing an earlier action must leave none of them inconsistent."""
    detail = row.detail or {}
    touched = {(change["table"], int(change["id"])) for change in detail.get("changes", [])}
    for fact_id in (detail.get("created_fact"), detail.get("into"), row.fact_id):
        if fact_id is not None:
            touched.add(("known_facts", int(fact_id)))
    return touched


def undo(session: Session, feedback_id: int, actor: str, now: datetime, note: str = "") -> int:
    """Restore what action FEEDBACK_ID changed (a fact it created is retired) and mark it undone;
    the id of the "undo" audit row."""
    row: Feedback = _get(session, Feedback, feedback_id, "feedback")
    if row.action not in ACTIONS:
        raise Conflict(f"a {row.action} cannot be undone here")
    if row.undone_at is not None:
        raise Conflict(f"feedback {feedback_id} was already undone by {row.undone_by}")
    touched = _touched(row)
    later = session.scalars(
        select(Feedback)
        .where(Feedback.id > row.id, Feedback.undone_at.is_(None), Feedback.action.in_(ACTIONS))
        .order_by(Feedback.id)
    )
    for other in later:
        if _touched(other) & touched:
            raise Conflict(f"feedback {other.id} ({other.action}) changed the same rows later: undo it first")
    changes = _Changes()
    for change in reversed(row.detail.get("changes", [])):
        model, columns = _TRACKED[change["table"]]
        target = _get(session, model, int(change["id"]), change["table"])
        before = {c: _loaded(c, v) for c, v in change["before"].items() if c in columns}
        changes.set(change["table"], target, **before)
    created = row.detail.get("created_fact")
    if created is not None:
        fact: KnownFact = _get(session, KnownFact, int(created), "fact")
        if fact.retired_at is None:
            _retire(changes, fact, actor, now)
    row.undone_at, row.undone_by = now, actor[:NAME_MAX]
    return _audit(
        session,
        actor,
        "undo",
        changes,
        now,
        finding_id=row.finding_id,
        article_id=row.article_id,
        fact_id=row.fact_id,
        note=note,
        undoes_id=row.id,
    )


def last_action(session: Session, *, finding_id: int | None = None, article_id: int | None = None) -> int | None:
    """The newest review of a finding (or of an article: missed, not relevant) that is not undone:
    what its Undo button undoes."""
    query = select(Feedback.id).where(Feedback.undone_at.is_(None))
    if finding_id is not None:
        query = query.where(Feedback.finding_id == finding_id, Feedback.action.in_(("confirm", "not_new", "wrong")))
    else:
        query = query.where(Feedback.article_id == article_id, Feedback.action.in_(("missed", "not_relevant")))
    return session.scalar(query.order_by(Feedback.id.desc()).limit(1))


def audit_trail(
    session: Session,
    *,
    finding_id: int | None = None,
    article_id: int | None = None,
    fact_id: int | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> Sequence[Feedback]:
    """Audit rows, newest first: all, or those on one finding, article or fact; BEFORE_ID pages on."""
    query = select(Feedback)
    if finding_id is not None:
        query = query.where(Feedback.finding_id == finding_id)
    if article_id is not None:
        query = query.where(Feedback.article_id == article_id)
    if fact_id is not None:
        query = query.where(Feedback.fact_id == fact_id)
    if before_id is not None:
        query = query.where(Feedback.id < before_id)
    return list(session.scalars(query.order_by(Feedback.id.desc()).limit(limit)))


def feedback_row(session: Session, feedback_id: int) -> Feedback | None:
    return session.get(Feedback, feedback_id)
