"""One way to claim work: feeds due for a poll, new articles, alerts due for a send.

A claim is a lease written on the rows (a time until which other replicas leave them alone), taken
only while the rows still qualify, so two replicas never both win one row and the work of a replica
that dies is taken over when its lease runs out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session


def take_leases(
    session: Session,
    id_column: InstrumentedAttribute[int],
    *,
    where: ColumnElement[bool],
    values: Mapping[str, Any],
    order_by: Sequence[Any] = (),
    limit: int | None = None,
) -> list[int]:
    """Ids of the rows matching WHERE (in ORDER_BY, at most LIMIT) that this caller now holds:
    VALUES (the lease) written on each while it still matches. The caller commits, promptly: the
    lease is what keeps another replica off these rows."""
    query = select(id_column).where(where).order_by(*order_by)
    if limit is not None:
        query = query.limit(limit)
    # PostgreSQL skips rows another replica is claiming; SQLite (one process) relies on the guard.
    candidates = list(session.scalars(query.with_for_update(skip_locked=True)))
    if not candidates:
        return []
    # Only rows that still match are taken, so a replica that got there first keeps its claim.
    won = set(
        session.scalars(
            update(id_column.class_)
            .where(id_column.in_(candidates), where)
            .values(dict(values))
            .returning(id_column)
            .execution_options(synchronize_session=False)
        )
    )
    return [row_id for row_id in candidates if row_id in won]
