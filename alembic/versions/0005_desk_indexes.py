"""the desk at volume: word search over articles, and the indexes the desk's lists need

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Word search (monitor/store/search.py):
- SQLite: the FTS5 table articles_fts, external content over articles(title, text), filled from
  the rows already there and kept current by triggers. The update trigger fires only when title
  or text is set, not on every verdict, lease or status write. A later migration that rebuilds
  the articles table (a batch "move and copy") drops these triggers and must create them again.
- PostgreSQL: a stored generated column search_vector, to_tsvector('simple', title || ' ' || text),
  with a GIN index; PostgreSQL computes it on insert and on update of title or text. A GIN index
  over the expression alone was measured 40 to 10,000 times slower for common words (see
  monitor/store/search.py). Adding the column rewrites the table: about 40 s per 100,000 articles.

The indexes serve the desk's lists newest first with their filters, checked with EXPLAIN on
both databases over bench/desk.py's volume (100,000 articles, 5,000 alerts, 20,000 facts).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name -> (table, columns); models.py declares the same Index entries.
_INDEXES: dict[str, tuple[str, list[str]]] = {
    "ix_articles_published_at": ("articles", ["published_at"]),
    "ix_articles_fetched_at": ("articles", ["fetched_at"]),
    "ix_articles_relevant_id": ("articles", ["relevant", "id"]),
    "ix_findings_kind_country": ("findings", ["kind", "country"]),
    "ix_findings_country": ("findings", ["country"]),
}

# Accents are kept (remove_diacritics 0), as PostgreSQL's 'simple' configuration keeps them, so
# that both databases answer a search alike.
_SQLITE_SEARCH = [
    "CREATE VIRTUAL TABLE articles_fts USING fts5(title, text, content='articles', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN "
    "INSERT INTO articles_fts(rowid, title, text) VALUES (new.id, new.title, new.text); END",
    # External content: FTS5 forgets a row by being told the values it indexed.
    "CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN "
    "INSERT INTO articles_fts(articles_fts, rowid, title, text) VALUES ('delete', old.id, old.title, old.text); END",
    "CREATE TRIGGER articles_fts_update AFTER UPDATE OF id, title, text ON articles BEGIN "
    "INSERT INTO articles_fts(articles_fts, rowid, title, text) VALUES ('delete', old.id, old.title, old.text); "
    "INSERT INTO articles_fts(rowid, title, text) VALUES (new.id, new.title, new.text); END",
    "INSERT INTO articles_fts(articles_fts) VALUES ('rebuild')",
]
_SQLITE_SEARCH_DROP = [
    "DROP TRIGGER IF EXISTS articles_fts_update",
    "DROP TRIGGER IF EXISTS articles_fts_delete",
    "DROP TRIGGER IF EXISTS articles_fts_insert",
    "DROP TABLE IF EXISTS articles_fts",
]
_PG_SEARCH = [
    "ALTER TABLE articles ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
    "(to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(text, ''))) STORED",
    "CREATE INDEX ix_articles_search_vector ON articles USING gin (search_vector)",
]
_PG_SEARCH_DROP = [
    "DROP INDEX IF EXISTS ix_articles_search_vector",
    "ALTER TABLE articles DROP COLUMN IF EXISTS search_vector",
]


def upgrade() -> None:
    for name, (table, columns) in _INDEXES.items():
        op.create_index(name, table, columns)
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _SQLITE_SEARCH if sqlite else _PG_SEARCH:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _SQLITE_SEARCH_DROP if sqlite else _PG_SEARCH_DROP:
        op.execute(statement)
    for name, (table, _columns) in reversed(_INDEXES.items()):
        op.drop_index(name, table)
