"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

import monitor
from alembic import command

SessionFactory = sessionmaker[Session]


def make_engine(url: str) -> Engine:
    """An engine for URL; SQLite gets WAL, foreign keys and a busy timeout, its folder created."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the CLI read while the service writes; NORMAL is durable at each checkpoint.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_session_factory(engine: Engine) -> SessionFactory:
    return sessionmaker(engine, expire_on_commit=False)


def migrations_dir() -> Path:
    """alembic/ beside the package (a checkout) or in the working directory (an installed copy)."""
    for candidate in (Path(monitor.__file__).resolve().parent.parent / "alembic", Path.cwd() / "alembic"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError("db: cannot find the alembic/ migrations folder")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["engine"] = engine
    return config


# Any fixed number: PostgreSQL advisory locks are named by integers.
_STARTUP_LOCK_KEY = 0x6D6F6E69746F72


@contextmanager
def startup_lock(engine: Engine) -> Iterator[None]:
    """Serialise start-up work (migrations, seed knowledge, feed sync) across replicas.

    On PostgreSQL a session advisory lock held on its own connection; SQLite runs one process.
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _STARTUP_LOCK_KEY})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _STARTUP_LOCK_KEY})
            connection.commit()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply pending migrations; a no-op when the schema is current."""
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def sqlite_file_missing(url: str) -> bool:
    """True for a SQLite URL whose file does not exist yet (connecting would create it)."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and not (parsed.database and Path(parsed.database).exists())


def has_schema(engine: Engine) -> bool:
    return inspect(engine).has_table("alembic_version")


@contextmanager
def batch_session(session_factory: SessionFactory) -> Iterator[Session]:
    """A session that keeps one database connection for a whole batch. A session bound to the
    engine hands its connection back after every commit and takes one, pinged first, for the next
    transaction: round trips that cost more than the statements of an off-topic article."""
    with session_factory() as probe:
        engine = probe.get_bind()
    with engine.connect() as connection, session_factory(bind=connection) as session:
        yield session


def ping(engine: Engine) -> None:
    """SELECT 1: raises when the database does not answer."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
