"""the knowledge page's word search: a trigram index on PostgreSQL, where pg_trgm can be had

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

The knowledge page and /api/facts find facts whose value, about or evidence contain every word,
in any case (monitor/store/facts_view.py): on PostgreSQL a LIKE on lower(value || ' ' || about ||
' ' || evidence). Without an index that reads every fact twice per page (the list and the counts
per kind); a GIN trigram index on the same expression answers a word of three letters or more from
the index (bench/desk.py's 20,000 facts: the list 46 -> 8 ms, the counts 33 -> 8 ms).

The index needs the pg_trgm extension. It is created here when the database allows it (it ships
with PostgreSQL's contrib, and creating it needs a superuser or, from PostgreSQL 13, CREATE on the
database: it is a trusted extension); where it cannot be, the migration says so and goes on without
the index: the search is the same, only slower. Downgrade drops the index and leaves the extension,
which other things may use. SQLite: nothing (its LIKE on 20,000 facts takes about 20 ms).
"""

import logging
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

# The expression must be facts_view's own, character for character, for the planner to use it.
_PG_FACT_WORDS = (
    "CREATE INDEX ix_known_facts_words_trgm ON known_facts "
    "USING gin (lower(value || ' ' || about || ' ' || evidence) gin_trgm_ops)"
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        # A savepoint: a refused CREATE EXTENSION would otherwise abort the whole migration's transaction.
        with bind.begin_nested():
            bind.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except DBAPIError as error:
        log.warning("pg_trgm is not available (%s): the facts' word search runs without its index", error.orig)
        return
    op.execute(_PG_FACT_WORDS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_known_facts_words_trgm")
