"""`monitor web`: what the desk's operator needs from the command line, password hashes for
web.users and API tokens for scripts."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click
from rich.table import Table

from monitor.cli_options import command_settings, config_option, console, migrated_store
from monitor.terminal import cell


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


@click.group()
def web() -> None:
    """The analysts' desk: password hashes and API tokens."""


@web.command("hash-password")
def hash_password_command() -> None:
    """Read a password on standard input (one line) and print its argon2 hash for web.users."""
    from monitor.desk.auth import hash_password

    if sys.stdin.isatty():
        # Typed by a person: not echoed, asked twice so a typo does not lock them out.
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        click.echo("error: the password is empty", err=True)
        raise SystemExit(2)
    click.echo(hash_password(password))


@web.group()
def token() -> None:
    """API tokens for scripts (`Authorization: Bearer TOKEN`); only their hashes are stored."""


def _valid_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100 or not name.isprintable():
        click.echo("error: a token name is 1 to 100 printable characters", err=True)
        raise SystemExit(2)
    return name


@token.command("create")
@click.argument("name")
@config_option
@click.pass_context
def token_create(ctx: click.Context, name: str, config_path: Path | None) -> None:
    """Make a token called NAME and print it; it is shown this once and never again."""
    from monitor.store.models import utcnow
    from monitor.store.tokens import create_token

    name = _valid_name(name)
    settings = command_settings(ctx, config_path)
    with migrated_store(settings) as sessions, sessions.begin() as session:
        try:
            secret = create_token(session, name, utcnow())
        except ValueError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
    click.echo(secret)
    click.echo(f"token {name!r} created: keep it now, it cannot be shown again", err=True)


@token.command("list")
@config_option
@click.pass_context
def token_list(ctx: click.Context, config_path: Path | None) -> None:
    """Every token by name: created, last used, revoked (never the token itself)."""
    from monitor.store.tokens import list_tokens

    settings = command_settings(ctx, config_path)
    with migrated_store(settings) as sessions, sessions() as session:
        rows = list_tokens(session)
        table = Table("name", "created", "last used", "revoked", title="API tokens")
        for row in rows:
            table.add_row(
                cell(row.name), cell(_when(row.created_at)), cell(_when(row.last_used_at)), cell(_when(row.revoked_at))
            )
    console().print(table)


@token.command("revoke")
@click.argument("name")
@config_option
@click.pass_context
def token_revoke(ctx: click.Context, name: str, config_path: Path | None) -> None:
    """Revoke the token called NAME: requests carrying it are refused from now on."""
    from monitor.store.models import utcnow
    from monitor.store.tokens import revoke_token

    settings = command_settings(ctx, config_path)
    with migrated_store(settings) as sessions, sessions.begin() as session:
        revoked = revoke_token(session, name, utcnow())
    if not revoked:
        click.echo(f"error: no live token named {name!r}", err=True)
        ctx.exit(1)
    click.echo(f"token {name!r} revoked")
