"""Alembic environment: the engine comes from the caller, or from the monitor settings."""

from __future__ import annotations

from sqlalchemy import Engine

from alembic import context
from monitor.store.models import Base, migration_only

target_metadata = Base.metadata


def _declared_in_the_models(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    # Autogenerate must not propose dropping what the models cannot declare (models.MIGRATION_ONLY).
    return not migration_only(name)


def _engine() -> Engine:
    engine = context.config.attributes.get("engine")
    if engine is not None:
        return engine
    # `alembic upgrade head` from a shell: use the monitor's own settings.
    from monitor.config import load_settings
    from monitor.store.db import make_engine

    return make_engine(load_settings().database_url.get_secret_value())


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=_declared_in_the_models,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run against a database")
run_migrations_online()
