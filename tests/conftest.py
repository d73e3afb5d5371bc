"""Shared fixtures: a migrated database on SQLite and on the local PostgreSQL server.

Each backend is migrated once per run (alembic upgrade from nothing); a test gets a copy of the
migrated SQLite file, or the PostgreSQL database with its tables emptied.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from support.feedserver import FeedServer

from monitor.store.db import SessionFactory, make_engine, make_session_factory, upgrade
from monitor.store.models import Base

# The Slack, SMTP and webhook receiver fixtures, for every test module.
pytest_plugins = ["support.receivers"]

# The test suite's own setting (not the service's): which PostgreSQL server to use.
BASE_POSTGRES_URL = os.environ.get("MONITOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _worker_database(base: str) -> str:
    """Under pytest-xdist (`-n 2`), each worker its own database beside the configured one
    (`test_gw0`, `test_gw1`), created when missing: workers never empty each other's tables."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return base
    url = make_url(base)
    name = f"{url.database}_{worker}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            if connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


POSTGRES_URL = _worker_database(BASE_POSTGRES_URL)
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# A module whose every test is slow says so in one line (pytestmark = pytest.mark.slow).
_WHOLLY_SLOW = re.compile(r"^pytestmark = \[?pytest\.mark\.slow\b", re.MULTILINE)


def _fast_tier(config: pytest.Config) -> bool:
    return config.option.markexpr.strip() == "not slow"


def pytest_configure(config: pytest.Config) -> None:
    if _fast_tier(config):
        # Every test that uses hypothesis is slow (and not imported, below), yet its plugin imports
        # it at the end of every process to report: over a second in each worker.
        config.pluginmanager.set_blocked("hypothesispytest")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under -m "not slow", a module slow as a whole is not imported at all: each of its tests would
    be deselected anyway, and their imports (hypothesis, schemathesis, Playwright) cost seconds in
    every worker. The full suite collects it as usual."""
    if not _fast_tier(config) or collection_path.suffix != ".py":
        return None
    if collection_path.name.startswith("test_") and _WHOLLY_SLOW.search(collection_path.read_text(encoding="utf-8")):
        return True
    return None


def reset_postgres(url: str = POSTGRES_URL) -> None:
    """An empty public schema: the migrations then run from nothing."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


def empty_tables(engine: Engine) -> None:
    """Every row of the PostgreSQL database gone, the schema kept: isolation between tests without
    migrating again, in two or three round trips."""
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as connection:
        # DELETE, not TRUNCATE: on tables this small it is ten times faster.
        connection.execute(text("; ".join(f"DELETE FROM {table}" for table in tables)))
        # ids start at 1 again, as in a fresh database. Only the sequences a test drew from: a
        # restart gives the sequence a new file, which most tests never need.
        used = connection.execute(
            text(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"
                " AND last_value IS NOT NULL AND sequencename = ANY(:names)"
            ),
            {"names": [f"{table}_id_seq" for table in tables]},
        ).scalars()
        restarts = [f"ALTER SEQUENCE {name} RESTART" for name in used]
        if restarts:
            connection.execute(text("; ".join(restarts)))


@pytest.fixture(scope="session")
def migrated_postgres() -> str:
    """The test PostgreSQL database, migrated from nothing once for the whole run."""
    reset_postgres()
    engine = make_engine(POSTGRES_URL)
    upgrade(engine)
    engine.dispose()
    return POSTGRES_URL


@pytest.fixture(scope="session")
def postgres_engine(migrated_postgres: str) -> Iterator[Engine]:
    """One engine on the test PostgreSQL database for the run: it empties the tables between tests
    and is their `engine`. An engine for each test opened new connections, each a new server
    process with cold caches: some 20 ms a test, more than the emptying."""
    engine = make_engine(migrated_postgres)
    yield engine
    engine.dispose()


@pytest.fixture
def empty_postgres(migrated_postgres: str, postgres_engine: Engine) -> str:
    """The migrated PostgreSQL database with no rows in it."""
    empty_tables(postgres_engine)
    return migrated_postgres


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated from nothing once for the whole run; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection to close folds the write-ahead log into the file
    return path


def migrated_sqlite(template: Path, path: Path) -> str:
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated database of each kind, with no rows in it."""
    if request.param == "sqlite":
        return migrated_sqlite(sqlite_template, tmp_path / "monitor.db")
    return str(request.getfixturevalue("empty_postgres"))


@pytest.fixture
def engine(request: pytest.FixtureRequest, database_url: str) -> Iterator[Engine]:
    if make_url(database_url).get_backend_name() != "postgresql":
        engine = make_engine(database_url)
        yield engine
        engine.dispose()
        return
    shared: Engine = request.getfixturevalue("postgres_engine")
    yield shared
    if shared.pool.checkedout():  # a connection the test left open: the next test gets a new pool
        shared.dispose()


@pytest.fixture
def sessions(engine: Engine) -> SessionFactory:
    return make_session_factory(engine)


@pytest.fixture
def sqlite_sessions(tmp_path: Path, sqlite_template: Path) -> Iterator[SessionFactory]:
    """A migrated SQLite database, for tests of one stage that need not run on both backends."""
    engine = make_engine(migrated_sqlite(sqlite_template, tmp_path / "stage.db"))
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    """A local HTTP server whose routes serve feeds, pages and failures (tests/support/feedserver.py)."""
    with FeedServer() as running:
        yield running


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """A cache directory holding the default backend's export of the default model."""
    from tests.analysis_fixtures import MODEL_CACHE, embedder

    embedder()  # exports on first use
    return MODEL_CACHE


@pytest.fixture
def exported_models(tmp_path: Path, model_cache: Path) -> Path:
    """``tmp_path / "cache"`` (the cache_dir that tests' configurations name) with the model already
    exported, so a service started by a test does not spend seconds exporting it again."""
    return with_models(tmp_path / "cache", model_cache)


def with_models(cache: Path, model_cache: Path) -> Path:
    cache.mkdir(exist_ok=True)
    (cache / "models").symlink_to(model_cache / "models", target_is_directory=True)
    return cache


@pytest.fixture(scope="session")
def analysis_stage(model_cache: Path):  # type: ignore[no-untyped-def]
    """The real model and seed corpus: the same instances the analysis tests use, loaded once."""
    from monitor.service import AnalysisStage
    from tests.analysis_fixtures import detector, embedder, seed_documents

    return AnalysisStage(embedder(), list(seed_documents()), detector().corpus, detector())


@pytest.fixture
def cli_shares_the_model(monkeypatch: pytest.MonkeyPatch, analysis_stage: object) -> None:
    """Commands run here get the run's one model instead of loading their own: the model is real,
    only its loading is shared (test_analyze_prints_... covers a command building its own)."""
    monkeypatch.setattr("monitor.service.build_analysis", lambda settings: analysis_stage)
