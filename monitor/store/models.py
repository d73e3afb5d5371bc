"""What the monitor keeps: feeds, articles, known facts, findings and the alert outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# What migrations create and the models cannot declare (migration 0005): the word search's FTS5
# table and its shadow tables (SQLite), its vector column and GIN index (PostgreSQL, left out of
# the models so that the ORM never loads the vector), and PostgreSQL's expression index on the
# alert payload's kind; and PostgreSQL's trigram index for the facts' word search (migration 0006,
# made only where the pg_trgm extension can be). Comparisons of the models with a database skip them.
MIGRATION_ONLY = frozenset(
    {"search_vector", "ix_articles_search_vector", "ix_alerts_payload_kind", "ix_known_facts_words_trgm"}
)
MIGRATION_ONLY_PREFIX = "articles_fts"


def migration_only(name: str | None) -> bool:
    """True for an object of MIGRATION_ONLY (tests/test_store.py, alembic/env.py)."""
    return bool(name) and (str(name) in MIGRATION_ONLY or str(name).startswith(MIGRATION_ONLY_PREFIX))


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ArticleStatus(StrEnum):
    NEW = "new"
    PROCESSED = "processed"
    # Its analysis failed MAX_ATTEMPTS times; kept with its error.
    FAILED = "failed"


class AlertStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    # The channel's filters show nothing of it; never sent, kept for the record.
    FILTERED = "filtered"


class Review(StrEnum):
    """An analyst's word on a finding or an article (monitor/store/feedback.py records it)."""

    CONFIRMED = "confirmed"
    # The finding repeats a known fact: it is linked to it and its own fact merged into it.
    NOT_NEW = "not_new"
    # The finding is wrong: the fact it taught is retired and suppresses nothing more.
    WRONG = "wrong"
    # The article should have alerted: the analyst named what was new.
    MISSED = "missed"
    # The article is off the topic: what it taught is retired.
    NOT_RELEVANT = "not_relevant"


class FactSource(StrEnum):
    SEED = "seed"
    ARTICLE = "article"
    # Named by an analyst on the desk ("missed"); source_ref is "analyst:NAME".
    ANALYST = "analyst"


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class Feed(Base):
    """A configured feed and its polling state: the database is the schedule."""

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Where the feed lives now (a 301/308 moves it); config_url is the URL as configured, so a
    # restart does not undo a permanent redirect.
    url: Mapped[str] = mapped_column(String(2000))
    config_url: Mapped[str | None] = mapped_column(String(2000))
    tags: Mapped[list[str]] = mapped_column(default=list)
    interval_s: Mapped[float | None] = mapped_column(Float)
    full_text: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(200))
    last_status: Mapped[str | None] = mapped_column(String(40))
    last_http_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_errors: Mapped[int] = mapped_column(default=0)
    last_polled_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    next_poll_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    entries_seen: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The adaptive schedule's current interval (poll.adaptive); None until the first poll.
    adaptive_interval_s: Mapped[float | None] = mapped_column(Float)
    # When the current run of failures began, and whether the operator was told about it.
    failing_since: Mapped[datetime | None]
    failing_alerted: Mapped[bool] = mapped_column(default=False)
    # Paused on the desk: kept, not polled, whatever the config says, until resumed there.
    paused_at: Mapped[datetime | None]
    paused_by: Mapped[str | None] = mapped_column(String(100))

    articles: Mapped[list[Article]] = relationship(back_populates="feed")


class Article(Base):
    """One feed entry, stored once, then analysed (status new -> processed or failed)."""

    __tablename__ = "articles"
    __table_args__ = (
        UniqueConstraint("feed_id", "entry_key", name="uq_articles_feed_entry"),
        Index("ix_articles_status_id", "status", "id"),
        # One article however many feeds carry it: the same canonical URL or the same global guid.
        Index("ux_articles_url_hash", "url_hash", unique=True),
        Index("ux_articles_guid_hash", "guid_hash", unique=True),
        # The desk (migration 0005): an alert's same-story articles, the lists' date filters. The
        # word search's own objects live beside them, undeclared here (see MIGRATION_ONLY).
        Index("ix_articles_same_story_as_id", "same_story_as_id"),
        Index("ix_articles_fetched_at", "fetched_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id"))
    entry_key: Mapped[str] = mapped_column(String(512))
    url: Mapped[str | None] = mapped_column(String(2000))
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime | None]
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default=ArticleStatus.NEW)
    # A processor's claim on a new article; another replica may take it once this has passed.
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None]
    relevance: Mapped[float | None] = mapped_column(Float)
    relevant: Mapped[bool | None]
    # The article's vector (float32 bytes), kept for relevant articles to recognise the same story.
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    same_story_as_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id"))
    analysis: Mapped[dict[str, Any] | None]
    # The text (or title) was longer than poll.max_entry_chars and was cut there.
    truncated: Mapped[bool] = mapped_column(default=False)
    # sha256 of the canonical URL and of a globally meaningful guid (a URI); None when unusable.
    url_hash: Mapped[str | None] = mapped_column(String(64))
    guid_hash: Mapped[str | None] = mapped_column(String(64))
    # An analyst's word on the whole article (Review.MISSED or Review.NOT_RELEVANT), and whose.
    review: Mapped[str | None] = mapped_column(String(20))
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None]

    feed: Mapped[Feed] = relationship(back_populates="articles")
    findings: Mapped[list[Finding]] = relationship(back_populates="article")


class ArticleFeed(Base):
    """Every feed an article arrived through, under that feed's own entry key (the first included)."""

    __tablename__ = "article_feeds"
    __table_args__ = (UniqueConstraint("feed_id", "entry_key", name="uq_article_feeds_feed_entry"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), index=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id"))
    entry_key: Mapped[str] = mapped_column(String(512))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class KnownFact(Base):
    """What is already known: an alleged country, a target, or a denial, with its first source."""

    __tablename__ = "known_facts"
    __table_args__ = (UniqueConstraint("kind", "value", "about", name="uq_known_facts_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(300))
    # For a denial: the allegation denied (canonical). Empty for countries and targets.
    about: Mapped[str] = mapped_column(String(300), default="")
    evidence: Mapped[str] = mapped_column(Text, default="")
    source_kind: Mapped[str] = mapped_column(String(20))  # "seed" or "article"
    source_ref: Mapped[str] = mapped_column(String(2000))  # seed file name or article URL
    article_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id"))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Retired facts stay for the record and for undo, and are not loaded into the knowledge base.
    retired_at: Mapped[datetime | None]
    retired_by: Mapped[str | None] = mapped_column(String(100))
    # Set when the fact was merged into another that names the same thing.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("known_facts.id"))


class FactMatch(Base):
    """A mention an article made of something already known: the fact that absorbed it (and so
    suppressed its alert), kept so that the desk can say how much each fact suppresses."""

    __tablename__ = "fact_matches"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), index=True)
    fact_id: Mapped[int] = mapped_column(ForeignKey("known_facts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(300))
    evidence: Mapped[str] = mapped_column(Text, default="")
    similarity: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Finding(Base):
    """Something an article brought that the knowledge base did not hold."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(300))
    about: Mapped[str] = mapped_column(String(300), default="")
    evidence: Mapped[str] = mapped_column(Text, default="")
    closest_fact_id: Mapped[int | None] = mapped_column(ForeignKey("known_facts.id"))
    closest_value: Mapped[str | None] = mapped_column(String(300))
    similarity: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The state the finding is about: the accused country, the denier, or whose target it is.
    country: Mapped[str | None] = mapped_column(String(100))
    review: Mapped[str | None] = mapped_column(String(20))
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None]
    # For Review.NOT_NEW: the known fact the finding repeats.
    review_fact_id: Mapped[int | None] = mapped_column(ForeignKey("known_facts.id"))

    article: Mapped[Article] = relationship(back_populates="findings")


class Alert(Base):
    """The outbox: an alert is a row first and a message second, one row per channel.

    monitor/outbox.py is the only code that creates or moves these rows.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("article_id", "channel", name="uq_alerts_article_channel"),
        Index("ix_alerts_status_next", "status", "next_attempt_at"),
        # The desk's alerts filtered by delivery status: a row of that status for this article.
        Index("ix_alerts_article_status", "article_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id"))
    channel: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20), default=AlertStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class Feedback(Base):
    """The audit trail of the desk: who did what, when, to which finding, article or fact, with
    what it changed (so that it can be undone). Rows are never deleted; an undo is a row too."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(100))
    # confirm, not_new, wrong, missed, not_relevant, retire, merge, pause, resume, undo
    action: Mapped[str] = mapped_column(String(20))
    finding_id: Mapped[int | None] = mapped_column(ForeignKey("findings.id"), index=True)
    article_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id"), index=True)
    fact_id: Mapped[int | None] = mapped_column(ForeignKey("known_facts.id"), index=True)
    # What the action changed, as it was before and after: what undo restores.
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[datetime | None]
    undone_by: Mapped[str | None] = mapped_column(String(100))
    # For an undo: the action it undid.
    undoes_id: Mapped[int | None] = mapped_column(ForeignKey("feedback.id"))


class ApiToken(Base):
    """A token for scripts (`monitor web token create NAME`): only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
