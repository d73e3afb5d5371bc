"""Storage on SQLite and PostgreSQL: migrations build the schema, models and migrations agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError

from monitor.store.db import SessionFactory, current_revision, make_engine, upgrade
from monitor.store.models import Alert, Article, Base, Feed, KnownFact, migration_only


def _declared_in_the_models(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """The objects only migrations make (models.MIGRATION_ONLY): FTS5's virtual tables, the search
    vector, PostgreSQL's expression index."""
    return not migration_only(name)


def test_migrations_create_every_table_and_match_the_models(engine: Engine) -> None:
    assert {"feeds", "articles", "known_facts", "findings", "alerts"} <= set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": _declared_in_the_models}
        )
        drift = compare_metadata(context, Base.metadata)
    assert drift == [], f"models and migrations differ; write a migration: {drift}"


def test_upgrade_is_idempotent(engine: Engine) -> None:
    before = current_revision(engine)
    upgrade(engine)
    assert current_revision(engine) == before is not None


def test_sqlite_runs_in_wal_mode(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'nested' / 'monitor.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def _feed(sessions: SessionFactory) -> int:
    with sessions.begin() as session:
        feed = Feed(name="Wire", url="http://wire.example/rss")
        session.add(feed)
        session.flush()
        return feed.id


def test_an_entry_is_stored_once_per_feed(sessions: SessionFactory) -> None:
    feed_id = _feed(sessions)
    with sessions.begin() as session:
        session.add(Article(feed_id=feed_id, entry_key="guid-1", title="t", text="x"))
    with pytest.raises(IntegrityError):
        with sessions.begin() as session:
            session.add(Article(feed_id=feed_id, entry_key="guid-1", title="t", text="x"))


def test_one_alert_per_article_and_channel(sessions: SessionFactory) -> None:
    feed_id = _feed(sessions)
    with sessions.begin() as session:
        article = Article(feed_id=feed_id, entry_key="k", title="t", text="x")
        session.add(article)
        session.flush()
        session.add(Alert(article_id=article.id, channel="slack", payload={"a": 1}))
        article_id = article.id
    with pytest.raises(IntegrityError):
        with sessions.begin() as session:
            session.add(Alert(article_id=article_id, channel="slack", payload={"a": 1}))


def test_a_known_fact_is_unique_by_kind_value_and_about(sessions: SessionFactory) -> None:
    with sessions.begin() as session:
        session.add(KnownFact(kind="country", value="Iran", source_kind="seed", source_ref="003.txt"))
    with pytest.raises(IntegrityError):
        with sessions.begin() as session:
            session.add(KnownFact(kind="country", value="Iran", source_kind="article", source_ref="u"))


def test_times_come_back_aware_and_in_utc(sessions: SessionFactory) -> None:
    feed_id = _feed(sessions)
    moment = datetime(2024, 8, 10, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with sessions.begin() as session:
        session.get(Feed, feed_id).next_poll_at = moment
    with sessions() as session:
        stored = session.scalar(select(Feed.next_poll_at).where(Feed.id == feed_id))
    assert stored == moment and stored.tzinfo is not None
    assert stored.utcoffset() == timedelta(0)
    with pytest.raises(Exception, match="naive datetime"):
        with sessions.begin() as session:
            session.get(Feed, feed_id).next_poll_at = datetime(2024, 1, 1)
    assert datetime.now(UTC).tzinfo is UTC


def test_seed_knowledge_from_an_earlier_reader_is_derived_again(sessions: SessionFactory) -> None:
    """Seed targets stored before targets carried an identity would never match a new one: the
    service derives the seed knowledge again instead of keeping them."""
    from monitor.analysis.facts import Fact, TargetIdentity
    from monitor.store.knowledge import ensure_seed_knowledge

    old = [Fact("target", "national elections", "", "evidence", "seed", "seed.txt")]
    new = [
        Fact(
            "target",
            "national elections",
            TargetIdentity("United States", "election", "2020").key(),
            "evidence",
            "seed",
            "seed.txt",
        )
    ]
    assert ensure_seed_knowledge(sessions, lambda: old) == 1
    assert ensure_seed_knowledge(sessions, lambda: new) == 1  # the identity-less seed fact is replaced
    assert ensure_seed_knowledge(sessions, lambda: new) == 0  # current seed knowledge is kept
    with sessions() as session:
        abouts = list(session.scalars(select(KnownFact.about).where(KnownFact.source_kind == "seed")))
    assert abouts == [new[0].about]
