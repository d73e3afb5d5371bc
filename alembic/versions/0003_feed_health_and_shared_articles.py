"""feed health and adaptive schedule; one article linked to every feed that carried it

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

feeds: adaptive_interval_s, failing_since, failing_alerted.
articles: truncated, url_hash, guid_hash (unique: one article per canonical URL or global guid).
article_feeds: every (feed, entry key) an article arrived through; filled from the existing
articles, whose first feed stays in articles.feed_id. Existing articles get their hashes too,
the oldest article keeping a hash that several share.
"""

import hashlib
from collections.abc import Sequence
from urllib.parse import urlsplit

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("adaptive_interval_s", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("failing_alerted", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("truncated", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("url_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("guid_hash", sa.String(length=64), nullable=True))
    # The defaults only filled the existing rows; the application always sets these columns.
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.alter_column("failing_alerted", server_default=None)
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.alter_column("truncated", server_default=None)

    op.create_table(
        "article_feeds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("entry_key", sa.String(length=512), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"]),
        sa.ForeignKeyConstraint(["feed_id"], ["feeds.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("feed_id", "entry_key", name="uq_article_feeds_feed_entry"),
    )
    with op.batch_alter_table("article_feeds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_article_feeds_article_id"), ["article_id"], unique=False)

    op.execute(
        "INSERT INTO article_feeds (article_id, feed_id, entry_key, first_seen_at) "
        "SELECT id, feed_id, entry_key, fetched_at FROM articles"
    )
    _backfill_hashes()

    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.create_index("ux_articles_url_hash", ["url_hash"], unique=True)
        batch_op.create_index("ux_articles_guid_hash", ["guid_hash"], unique=True)


def _backfill_hashes() -> None:
    # The same rules as monitor.ingest.refresh (a migration must not import the application).
    connection = op.get_bind()
    articles = sa.table(
        "articles",
        sa.column("id", sa.Integer),
        sa.column("url", sa.String),
        sa.column("entry_key", sa.String),
        sa.column("url_hash", sa.String),
        sa.column("guid_hash", sa.String),
    )
    seen_urls: set[str] = set()
    seen_guids: set[str] = set()
    updates = []
    rows = connection.execute(sa.select(articles.c.id, articles.c.url, articles.c.entry_key).order_by(articles.c.id))
    for row in rows:
        url_hash = _url_hash(row.url)
        guid_hash = _guid_hash(row.entry_key)
        if url_hash in seen_urls:
            url_hash = None
        if guid_hash in seen_guids:
            guid_hash = None
        if url_hash or guid_hash:
            seen_urls.add(url_hash or "")
            seen_guids.add(guid_hash or "")
            updates.append({"row_id": row.id, "url_hash": url_hash, "guid_hash": guid_hash})
    if updates:
        connection.execute(
            articles.update()
            .where(articles.c.id == sa.bindparam("row_id"))
            .values(url_hash=sa.bindparam("url_hash"), guid_hash=sa.bindparam("guid_hash")),
            updates,
        )


def _url_hash(url: str | None) -> str | None:
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.path in ("", "/") and not parts.query:
        return None
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


def _guid_hash(key: str | None) -> str | None:
    if not key or ":" not in key.strip(":"):
        return None
    if key.lower().startswith(("http://", "https://")):
        return _url_hash(key)
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def downgrade() -> None:
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_index("ux_articles_guid_hash")
        batch_op.drop_index("ux_articles_url_hash")
    with op.batch_alter_table("article_feeds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_article_feeds_article_id"))
    op.drop_table("article_feeds")
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_column("guid_hash")
        batch_op.drop_column("url_hash")
        batch_op.drop_column("truncated")
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.drop_column("failing_alerted")
        batch_op.drop_column("failing_since")
        batch_op.drop_column("adaptive_interval_s")
