"""One clock for leases: the database server's, so that replicas with skewed clocks agree.

A lease written by one replica ("mine until T") is read by another ("is T past?"); if each used its
own wall clock, a replica running a minute fast would take work another still holds. PostgreSQL's
clock_timestamp() is the one clock every replica sees. SQLite runs one process on one machine,
whose clock is already the only one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session


def database_now(session: Session) -> datetime:
    """Now, by the database server's clock where it has one of its own (PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        # clock_timestamp(), not now(): now() is frozen at the start of the transaction.
        value = session.scalar(text("SELECT clock_timestamp()"))
        if isinstance(value, datetime):
            return value.astimezone(UTC)
    return datetime.now(UTC)
