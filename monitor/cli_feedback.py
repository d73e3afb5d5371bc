"""`monitor feedback export FILE.jsonl`: the analysts' reviews as a labelled stream for `monitor eval`."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli_options import command_settings, config_option, migrated_store


@click.group("feedback")
def feedback() -> None:
    """The analysts' feedback from the desk."""


@feedback.command("export")
@click.argument("path", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@config_option
@click.pass_context
def export(ctx: click.Context, path: Path, config_path: Path | None) -> None:
    """Write every reviewed article, labelled as the analysts judged it, in the stream format
    `monitor eval` scores (JSON lines)."""
    from monitor.feedback_export import export_feedback

    settings = command_settings(ctx, config_path)
    with migrated_store(settings) as sessions:
        written = export_feedback(sessions, path)
    click.echo(f"wrote {written} reviewed articles to {path}", err=True)
