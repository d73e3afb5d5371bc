"""What every `monitor` subcommand shares: the --config option, loading the settings, the console."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from monitor.config import ConfigError, Settings, load_settings
from monitor.store.db import SessionFactory

F = TypeVar("F", bound=Callable[..., Any])


def offline() -> None:
    # The model ships inside an installed package; never reach for a model hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def config_option(command: F) -> F:
    """--config on every subcommand as well as on the group (`monitor poll --once --config X`)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        expose_value=True,
        is_eager=True,
        help="YAML settings file (default: $MONITOR_CONFIG, else config/monitor.yaml if present).",
    )(command)


def command_settings(ctx: click.Context, config_path: Path | None) -> Settings:
    chosen = config_path or ctx.obj.get("config_path")
    try:
        settings = load_settings(chosen)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    from monitor.logs import configure_logging

    configure_logging(settings.log_level)
    return settings


def console() -> Console:
    """Where tables go. Piped output (logs, grep, tests) gets wide lines instead of rich's 80 columns."""
    return Console(width=None if sys.stdout.isatty() else 200)


@contextmanager
def migrated_store(settings: Settings) -> Iterator[SessionFactory]:
    """A session factory on the migrated database, disposed of afterwards."""
    from monitor.store.db import make_engine, make_session_factory, upgrade

    engine = make_engine(settings.database_url.get_secret_value())
    try:
        upgrade(engine)
        yield make_session_factory(engine)
    finally:
        engine.dispose()
