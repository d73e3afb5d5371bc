"""the desk at volume: word search over articles, and the indexes the desk's lists need

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Word search (monitor/store/search.py):
- SQLite: the FTS5 table articles_fts, external content over articles(title, text), filled from
  the rows already there and kept current by triggers. The update trigger fires only when title
  or text is set, not on every verdict, lease or status write. A later migration that rebuilds
  the articles table (a batch "move and copy") drops these triggers and must create them again.
  Indexing the rows already there takes about 10 s per 100,000 articles.
- PostgreSQL: a stored generated column search_vector, to_tsvector('simple', title || ' ' || text),
  with a GIN index; PostgreSQL computes it on insert and on update of title or text. A GIN index
  over the expression alone was measured 40 to 10,000 times slower for common words (see
  monitor/store/search.py). Adding the column rewrites the table, locked meanwhile: about 40 s
  per 100,000 articles.

The indexes serve the desk's lists newest first with their filters, checked with EXPLAIN on
both databases over bench/desk.py's volume (100,000 articles, 5,000 alerts, 20,000 facts).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name -> (table, columns); models.py declares the same Index entries. Each was chosen from
# EXPLAIN over bench/desk.py's volume; the times are one query's, before -> after.
_INDEXES: dict[str, tuple[str, list[str]]] = {
    # An alert's page lists the same story's articles: a scan of every article without it
    # (SQLite 105 -> 1 ms, PostgreSQL 56 -> 1 ms).
    "ix_articles_same_story_as_id": ("articles", ["same_story_as_id"]),
    # The lists' date filters (fetched_at, newest first by id).
    "ix_articles_fetched_at": ("articles", ["fetched_at"]),
    # The alerts list filtered by delivery status asks, per article, for a row of that status;
    # without it SQLite walks every row of the status (ix_alerts_status_next) for each article.
    "ix_alerts_article_status": ("alerts", ["article_id", "status"]),
}
# PostgreSQL only: the alerts lists keep rows whose payload kind is "alert" (JSON). PostgreSQL
# guesses 1% of rows pass such a test and hashes the whole outbox (105 ms); an index on the
# expression gives it the true share, and it walks the newest articles instead (1 ms). SQLite's
# planner does not weigh it; the models cannot declare it (tests/test_store.py skips it).
_PG_ALERT_KIND = "CREATE INDEX ix_alerts_payload_kind ON alerts ((payload ->> 'kind'))"

# Accents are kept (remove_diacritics 0), as PostgreSQL's 'simple' configuration keeps them, so
# that both databases answer a search alike.
# IF NOT EXISTS: SQLite runs this DDL outside a transaction, so a migration stopped half-way is
# run again over what it made.
_SQLITE_SEARCH = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS articles_fts USING fts5(title, text, content='articles', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER IF NOT EXISTS articles_fts_insert AFTER INSERT ON articles BEGIN "
    "INSERT INTO articles_fts(rowid, title, text) VALUES (new.id, new.title, new.text); END",
    # External content: FTS5 forgets a row by being told the values it indexed.
    "CREATE TRIGGER IF NOT EXISTS articles_fts_delete AFTER DELETE ON articles BEGIN "
    "INSERT INTO articles_fts(articles_fts, rowid, title, text) VALUES ('delete', old.id, old.title, old.text); END",
    "CREATE TRIGGER IF NOT EXISTS articles_fts_update AFTER UPDATE OF id, title, text ON articles BEGIN "
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
_PG_ONLY = [
    _PG_ALERT_KIND,
    "ALTER TABLE articles ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
    "(to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(text, ''))) STORED",
    "CREATE INDEX ix_articles_search_vector ON articles USING gin (search_vector)",
]
_PG_ONLY_DROP = [
    "DROP INDEX IF EXISTS ix_alerts_payload_kind",
    "DROP INDEX IF EXISTS ix_articles_search_vector",
    "ALTER TABLE articles DROP COLUMN IF EXISTS search_vector",
]


def upgrade() -> None:
    for name, (table, columns) in _INDEXES.items():
        op.create_index(name, table, columns)
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _SQLITE_SEARCH if sqlite else _PG_ONLY:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _SQLITE_SEARCH_DROP if sqlite else _PG_ONLY_DROP:
        op.execute(statement)
    for name, (table, _columns) in reversed(_INDEXES.items()):
        op.drop_index(name, table)
