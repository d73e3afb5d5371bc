"""Shared fixtures: a migrated database on SQLite and on the local PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from support.feedserver import FeedServer

from monitor.store.db import SessionFactory, make_engine, make_session_factory, upgrade

# The Slack, SMTP and webhook receiver fixtures, for every test module.
pytest_plugins = ["support.receivers"]

# The test suite's own setting (not the service's): which PostgreSQL server to use.
POSTGRES_URL = os.environ.get("MONITOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def reset_postgres(url: str = POSTGRES_URL) -> None:
    """An empty public schema, so each test migrates from nothing."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind; the schema is whatever the test builds (usually migrations)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitor.db'}"
    reset_postgres()
    return POSTGRES_URL


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> SessionFactory:
    return make_session_factory(engine)


@pytest.fixture
def sqlite_sessions(tmp_path: Path) -> Iterator[SessionFactory]:
    """A migrated SQLite database, for tests of one stage that need not run on both backends."""
    engine = make_engine(f"sqlite:///{tmp_path / 'stage.db'}")
    upgrade(engine)
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
def analysis_stage(tmp_path_factory: pytest.TempPathFactory, model_cache: Path):  # type: ignore[no-untyped-def]
    """The real model and seed corpus, loaded once for the whole run."""
    from monitor.config import Settings
    from monitor.service import build_analysis

    cache = with_models(tmp_path_factory.mktemp("cache"), model_cache)
    settings = Settings.model_validate({"seeds_dir": str(REPO / "seeds"), "cache_dir": str(cache)})
    return build_analysis(settings)
