"""The `monitor` command line: parses, calls one function, prints."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from monitor.cli_eval import evaluate_stream
from monitor.cli_feedback import feedback
from monitor.cli_options import command_settings, config_option, console, migrated_store, offline
from monitor.cli_web import web
from monitor.config import ConfigError, Settings, displayed_settings
from monitor.redact import redact_text, redact_url
from monitor.store.models import AlertStatus
from monitor.terminal import cell, strip_controls


class MonitorGroup(click.Group):
    """Settings problems found after loading (a model backend that cannot run, say) end like
    config errors: one line naming the key, exit status 2, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=MonitorGroup)
@config_option
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """The monitor: reads news feeds and alerts only when a report brings something new."""
    offline()
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


@main.command()
@config_option
@click.pass_context
def run(ctx: click.Context, config_path: Path | None) -> None:
    """Run the service: poll feeds, analyse articles and send alerts until SIGTERM or SIGINT."""
    from monitor.service import bootstrap, run_forever

    settings = command_settings(ctx, config_path)

    async def go() -> None:
        service = bootstrap(settings)
        try:
            await run_forever(service)
        finally:
            await service.aclose()

    with _service_lock(ctx, settings):
        asyncio.run(go())


@contextmanager
def _service_lock(ctx: click.Context, settings: Settings) -> Iterator[None]:
    """With SQLite, refuse to start beside another service process on the same file."""
    from monitor.store.lock import AlreadyRunning, single_process_lock

    lock = single_process_lock(settings.database_url.get_secret_value())
    if lock is None:
        yield
        return
    try:
        lock.acquire()
    except AlreadyRunning as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(3)
    try:
        yield
    finally:
        lock.release()


@main.command()
@click.option("--once", is_flag=True, required=True, help="Run one full cycle and exit (required).")
@click.option("--feed", "feed_name", default=None, help="Poll only the feed with this name.")
@config_option
@click.pass_context
def poll(ctx: click.Context, once: bool, feed_name: str | None, config_path: Path | None) -> None:
    """Poll every feed once (or one with --feed), process what arrived, dispatch alerts, exit."""
    from monitor.service import bootstrap, run_cycle

    settings = command_settings(ctx, config_path)
    if feed_name and feed_name not in {feed.name for feed in settings.feeds}:
        click.echo(f"error: no feed named {feed_name!r} in the configuration", err=True)
        ctx.exit(2)

    async def go() -> Any:
        service = bootstrap(settings)
        try:
            return await run_cycle(service, only_feed=feed_name)
        finally:
            await service.aclose()

    with _service_lock(ctx, settings):
        report = asyncio.run(go())
    table = Table("feed", "outcome", "entries", "new", "error", title="poll")
    for result in report.polls:
        table.add_row(
            cell(result.feed_name),
            cell(result.outcome),
            cell(result.entries),
            cell(result.new_articles),
            cell(redact_text(result.error or "")),
        )
    console().print(table)
    p, d = report.processed, report.dispatched
    console().print(
        f"processed {p.processed} articles ({p.relevant} relevant, {p.failed} failed); "
        f"{len(p.alert_ids)} alerts queued; delivered {d.delivered}, retrying {d.retried}, dead {d.dead}"
    )


@main.command()
@click.argument("source", type=click.File("r", encoding="utf-8", errors="replace"))
@click.option(
    "--title", default=None, help="Article title (default: the page's headline, else the first line of the file)."
)
@click.option(
    "--published", type=click.DateTime(), default=None, help="Publication date (default: the page's, if it gives one)."
)
@config_option
@click.pass_context
def analyze(
    ctx: click.Context, source: Any, title: str | None, published: datetime | None, config_path: Path | None
) -> None:
    """Show, as JSON, what an article (a text or an HTML page; FILE, or - for stdin) would trigger.
    Nothing is stored."""
    from monitor.analysis.detector import ArticleInput
    from monitor.ingest.text import looks_like_html, read_page
    from monitor.process.findings import analysis_summary
    from monitor.service import build_analysis

    settings = command_settings(ctx, config_path)
    text = source.read()
    if looks_like_html(text):
        page = read_page(text)
        if page is None:
            raise click.ClickException("the page has no article text")
        title, text, published = title or page.title, page.text, published or page.published
    elif title is None:
        first, _, rest = text.strip().partition("\n")
        title, text = first.strip(), rest.strip() or first
    stage = build_analysis(settings)
    kb = _read_only_knowledge(settings, stage)
    when = published.replace(tzinfo=published.tzinfo or UTC) if published else None
    analysis = stage.detector.analyze(ArticleInput(title=title or "", text=text, published=when), kb)
    click.echo(json.dumps(analysis_summary(analysis), indent=2, ensure_ascii=False))


def _read_only_knowledge(settings: Settings, stage: Any) -> Any:
    """The stored knowledge base, or the one derived from the seeds when nothing is stored yet."""
    from monitor.analysis.detector import seed_knowledge
    from monitor.analysis.knowledge import KnowledgeBase
    from monitor.store.db import has_schema, make_engine, make_session_factory, sqlite_file_missing
    from monitor.store.knowledge import has_seed_knowledge, load_knowledge

    if sqlite_file_missing(settings.database_url.get_secret_value()):
        return KnowledgeBase(seed_knowledge(stage.detector, stage.documents))
    engine = make_engine(settings.database_url.get_secret_value())
    try:
        if has_schema(engine):
            with make_session_factory(engine)() as session:
                if has_seed_knowledge(session):
                    return load_knowledge(session, story_days=settings.analysis.same_story_days)
        return KnowledgeBase(seed_knowledge(stage.detector, stage.documents))
    finally:
        engine.dispose()


@main.command()
@click.option("--rebuild", is_flag=True, help="Derive the seed knowledge again from seeds/.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@config_option
@click.pass_context
def kb(ctx: click.Context, rebuild: bool, as_json: bool, config_path: Path | None) -> None:
    """Show what is known (countries, targets, denials) with evidence and source."""
    from monitor.analysis.detector import seed_knowledge
    from monitor.service import build_analysis
    from monitor.store.knowledge import ensure_seed_knowledge, known_facts, knows_nothing

    settings = command_settings(ctx, config_path)
    with migrated_store(settings) as sessions:
        with sessions() as session:
            empty = knows_nothing(session)
        if rebuild or empty:
            stage = build_analysis(settings)
            derive = partial(seed_knowledge, stage.detector, stage.documents)
            added = ensure_seed_knowledge(sessions, derive, rebuild=True)
            click.echo(f"derived {added} facts from {settings.seeds_dir}", err=True)
        with sessions() as session:
            rows = known_facts(session)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "kind": r.kind,
                        "value": r.value,
                        "about": r.about,
                        "evidence": r.evidence,
                        "source": r.source_ref,
                        "first_seen": r.first_seen_at.isoformat(),
                    }
                    for r in rows
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    table = Table("kind", "value", "about", "evidence", "source", "first seen", title="knowledge base", show_lines=True)
    for r in rows:
        table.add_row(
            cell(r.kind),
            cell(r.value),
            cell(r.about),
            cell(r.evidence),
            cell(redact_url(r.source_ref)),
            cell(r.first_seen_at.strftime("%Y-%m-%d %H:%M")),
        )
    console().print(table)


@main.command()
@config_option
@click.pass_context
def feeds(ctx: click.Context, config_path: Path | None) -> None:
    """Show each feed: last success, last status and error, consecutive errors, next poll."""
    from monitor.store.feeds import active_feeds, sync_feeds
    from monitor.store.models import utcnow

    settings = command_settings(ctx, config_path)
    with migrated_store(settings) as sessions, sessions.begin() as session:
        sync_feeds(session, settings.feeds, utcnow())
        rows = active_feeds(session)
        table = Table(
            "feed", "url", "last success", "status", "errors", "next poll", "entries", "last error", title="feeds"
        )
        for f in rows:
            # Names, URLs and errors come from the configuration and from feed servers: shown as
            # plain text (no Rich markup, no terminal controls), with credentials in URLs masked.
            table.add_row(
                cell(f.name),
                cell(redact_url(f.url)),
                cell(_when(f.last_success_at)),
                cell(f"paused by {f.paused_by}" if f.paused_at else f.last_status or "never polled"),
                cell(f.consecutive_errors),
                cell(_when(f.next_poll_at)),
                cell(f.entries_seen),
                cell(redact_text(f.last_error or "")),
            )
    console().print(table)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


@main.command("test-alert")
@config_option
@click.pass_context
def test_alert(ctx: click.Context, config_path: Path | None) -> None:
    """Send a sample alert to each configured channel now and report how each went."""
    from monitor.alerts.channels import build_channels, sample_alert
    from monitor.alerts.deadline import send_deadline_s, within_deadline
    from monitor.ingest.fetch import FetchLimits, make_http_client
    from monitor.outbox import DeliveryStatus

    settings = command_settings(ctx, config_path)

    async def go() -> dict[str, Any]:
        async with make_http_client(FetchLimits.from_settings(settings.poll), private_addresses=True) as http:
            channels = build_channels(settings.alerts, http)
            sends = (
                within_deadline(name, send_deadline_s(settings.alerts, name), channel.send(0, sample_alert()))
                for name, channel in channels.items()
            )
            results = await asyncio.gather(*sends)
            return dict(zip(channels, results, strict=True))

    results = asyncio.run(go())
    if not results:
        click.echo("no channel is configured", err=True)
        ctx.exit(1)
    failed = False
    for name, delivery in results.items():
        error = f" ({strip_controls(redact_text(delivery.error))})" if delivery.error else ""
        click.echo(f"{name}: {delivery.status}{error}")
        failed |= delivery.status != DeliveryStatus.DELIVERED
    ctx.exit(1 if failed else 0)


@main.group(invoke_without_command=True)
@click.option(
    "--status", type=click.Choice([str(status) for status in AlertStatus]), default=None, help="Only this status."
)
@click.option("--limit", default=50, show_default=True, help="How many, newest first.")
@config_option
@click.pass_context
def alerts(ctx: click.Context, status: str | None, limit: int, config_path: Path | None) -> None:
    """List alerts with channel, status, attempts and last error (`alerts retry` requeues)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj["config_path"] = config_path or ctx.obj.get("config_path")
        return
    from monitor.outbox import list_alerts

    settings = command_settings(ctx, config_path)
    with migrated_store(settings) as sessions, sessions() as session:
        rows = list_alerts(session, status, limit)
    table = Table(
        "id", "channel", "status", "attempts", "next attempt", "created", "title", "last error", title="alerts"
    )
    for a in rows:
        table.add_row(
            cell(a.id),
            cell(a.channel),
            cell(a.status),
            cell(a.attempts),
            cell(_when(a.next_attempt_at) if a.status == AlertStatus.PENDING else "-"),
            cell(_when(a.created_at)),
            cell(a.payload.get("article_title", "")),
            cell(redact_text(a.last_error or "")),
        )
    console().print(table)


@alerts.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True, help="Requeue every dead alert.")
@config_option
@click.pass_context
def alerts_retry(ctx: click.Context, ids: tuple[int, ...], all_failed: bool, config_path: Path | None) -> None:
    """Requeue dead alerts (IDS, or --all-failed) with a fresh attempt budget."""
    from monitor.outbox import requeue_dead

    if not ids and not all_failed:
        click.echo("error: give alert ids or --all-failed", err=True)
        ctx.exit(2)
    settings = command_settings(ctx, config_path)
    with migrated_store(settings) as sessions, sessions() as session:
        count = requeue_dead(session, list(ids), all_failed)
    click.echo(f"requeued {count} alerts")


@main.command("check-config")
@config_option
@click.pass_context
def check_config(ctx: click.Context, config_path: Path | None) -> None:
    """Validate the configuration and print it with secrets hidden."""
    settings = command_settings(ctx, config_path)
    click.echo(json.dumps(displayed_settings(settings), indent=2))
    click.echo(f"ok: {len(settings.feeds)} feeds", err=True)


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@config_option
@click.pass_context
def db_upgrade(ctx: click.Context, config_path: Path | None) -> None:
    """Apply pending migrations to the configured database."""
    from monitor.store.db import current_revision

    settings = command_settings(ctx, config_path)
    with migrated_store(settings) as sessions:
        click.echo(f"database at revision {current_revision(sessions.kw['bind'])}")


main.add_command(evaluate_stream)
main.add_command(feedback)
main.add_command(web)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
