"""the analysts' desk: reviews, retired facts, the facts that absorbed mentions, the audit trail,
API tokens, paused feeds

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

known_facts: retired_at, retired_by, merged_into_id (retired facts are kept, not loaded).
findings: country, review, reviewed_by, reviewed_at, review_fact_id.
articles: review, reviewed_by, reviewed_at.
feeds: paused_at, paused_by.
fact_matches: each mention an article made of a known fact, with the fact that absorbed it.
feedback: the audit trail of every desk action, and what undo restores.
api_tokens: tokens for scripts, stored as SHA-256 digests.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("known_facts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retired_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("retired_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_known_facts_merged_into", "known_facts", ["merged_into_id"], ["id"])
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("country", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("review", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("reviewed_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("reviewed_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("review_fact_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_findings_review_fact", "known_facts", ["review_fact_id"], ["id"])
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("review", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("reviewed_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("reviewed_at", _TIME, nullable=True))
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("paused_by", sa.String(length=100), nullable=True))
    op.create_table(
        "fact_matches",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("article_id", sa.Integer(), sa.ForeignKey("articles.id"), nullable=False),
        sa.Column("fact_id", sa.Integer(), sa.ForeignKey("known_facts.id"), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=300), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_index("ix_fact_matches_article_id", "fact_matches", ["article_id"])
    op.create_index("ix_fact_matches_fact_id", "fact_matches", ["fact_id"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("finding_id", sa.Integer(), sa.ForeignKey("findings.id"), nullable=True),
        sa.Column("article_id", sa.Integer(), sa.ForeignKey("articles.id"), nullable=True),
        sa.Column("fact_id", sa.Integer(), sa.ForeignKey("known_facts.id"), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("undone_at", _TIME, nullable=True),
        sa.Column("undone_by", sa.String(length=100), nullable=True),
        sa.Column("undoes_id", sa.Integer(), sa.ForeignKey("feedback.id"), nullable=True),
    )
    op.create_index("ix_feedback_finding_id", "feedback", ["finding_id"])
    op.create_index("ix_feedback_article_id", "feedback", ["article_id"])
    op.create_index("ix_feedback_fact_id", "feedback", ["fact_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("last_used_at", _TIME, nullable=True),
        sa.Column("revoked_at", _TIME, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_index("ix_feedback_fact_id", "feedback")
    op.drop_index("ix_feedback_article_id", "feedback")
    op.drop_index("ix_feedback_finding_id", "feedback")
    op.drop_table("feedback")
    op.drop_index("ix_fact_matches_fact_id", "fact_matches")
    op.drop_index("ix_fact_matches_article_id", "fact_matches")
    op.drop_table("fact_matches")
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.drop_column("paused_by")
        batch_op.drop_column("paused_at")
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("reviewed_by")
        batch_op.drop_column("review")
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_constraint("fk_findings_review_fact", type_="foreignkey")
        for column in ("review_fact_id", "reviewed_at", "reviewed_by", "review", "country"):
            batch_op.drop_column(column)
    with op.batch_alter_table("known_facts", schema=None) as batch_op:
        batch_op.drop_constraint("fk_known_facts_merged_into", type_="foreignkey")
        for column in ("merged_into_id", "retired_by", "retired_at"):
            batch_op.drop_column(column)
