"""The `monitor` command line: parses, calls one function, prints."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from monitor.config import ConfigError, Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])

# Piped output (logs, grep, tests) gets wide lines instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 200)


def _offline() -> None:
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


def _settings(ctx: click.Context, config_path: Path | None) -> Settings:
    chosen = config_path or ctx.obj.get("config_path")
    try:
        settings = load_settings(chosen)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    from monitor.logs import configure_logging

    configure_logging(settings.log_level)
    return settings


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
    _offline()
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


@main.command()
@config_option
@click.pass_context
def run(ctx: click.Context, config_path: Path | None) -> None:
    """Run the service: poll feeds, analyse articles and send alerts until SIGTERM or SIGINT."""
    from monitor.service import bootstrap, run_forever

    settings = _settings(ctx, config_path)

    async def go() -> None:
        service = bootstrap(settings)
        try:
            await run_forever(service)
        finally:
            await service.aclose()

    with _service_lock(ctx, settings):
        asyncio.run(go())


@contextmanager
def _store(settings: Settings) -> Iterator[Any]:
    """A session factory on the migrated database, disposed of afterwards."""
    from monitor.store.db import make_engine, make_session_factory, upgrade

    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        yield make_session_factory(engine)
    finally:
        engine.dispose()


@contextmanager
def _service_lock(ctx: click.Context, settings: Settings) -> Iterator[None]:
    """With SQLite, refuse to start beside another service process on the same file."""
    from monitor.store.lock import AlreadyRunning, single_process_lock

    lock = single_process_lock(settings.database_url)
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

    settings = _settings(ctx, config_path)
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
        table.add_row(result.feed_name, str(result.outcome), str(result.entries), str(result.new_articles), result.error or "")
    console.print(table)
    p, d = report.processed, report.dispatched
    console.print(
        f"processed {p.processed} articles ({p.relevant} relevant, {p.failed} failed); "
        f"{len(p.alert_ids)} alerts queued; delivered {d.delivered}, retrying {d.retried}, dead {d.dead}"
    )


@main.command()
@click.argument("source", type=click.File("r", encoding="utf-8"))
@click.option("--title", default=None, help="Article title (default: the first line of the file).")
@config_option
@click.pass_context
def analyze(ctx: click.Context, source: Any, title: str | None, config_path: Path | None) -> None:
    """Show, as JSON, what an article (FILE, or - for stdin) would trigger. Nothing is stored."""
    from monitor.analysis.detector import ArticleInput
    from monitor.process import analysis_summary
    from monitor.service import build_analysis

    settings = _settings(ctx, config_path)
    text = source.read()
    if title is None:
        first, _, rest = text.strip().partition("\n")
        title, text = first.strip(), rest.strip() or first
    stage = build_analysis(settings)
    kb = _read_only_knowledge(settings, stage)
    analysis = stage.detector.analyze(ArticleInput(title=title, text=text), kb)
    click.echo(json.dumps(analysis_summary(analysis), indent=2, ensure_ascii=False))


def _read_only_knowledge(settings: Settings, stage: Any) -> Any:
    """The stored knowledge base, or the one derived from the seeds when nothing is stored yet."""
    from monitor.analysis.detector import seed_knowledge
    from monitor.analysis.knowledge import KnowledgeBase
    from monitor.process import has_seed_knowledge, load_knowledge
    from monitor.store.db import has_schema, make_engine, make_session_factory, sqlite_file_missing

    if sqlite_file_missing(settings.database_url):
        return KnowledgeBase(seed_knowledge(stage.detector, stage.documents))
    engine = make_engine(settings.database_url)
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
    from sqlalchemy import select

    from monitor.analysis.detector import seed_knowledge
    from monitor.process import ensure_seed_knowledge
    from monitor.service import build_analysis
    from monitor.store.models import KnownFact

    settings = _settings(ctx, config_path)
    with _store(settings) as sessions:
        with sessions() as session:
            empty = session.scalar(select(KnownFact.id).limit(1)) is None
        if rebuild or empty:
            stage = build_analysis(settings)
            derive = partial(seed_knowledge, stage.detector, stage.documents)
            added = ensure_seed_knowledge(sessions, derive, rebuild=True)
            click.echo(f"derived {added} facts from {settings.seeds_dir}", err=True)
        with sessions() as session:
            rows = list(session.scalars(select(KnownFact).order_by(KnownFact.kind, KnownFact.value, KnownFact.id)))
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
        table.add_row(r.kind, r.value, r.about, r.evidence, r.source_ref, r.first_seen_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@main.command()
@config_option
@click.pass_context
def feeds(ctx: click.Context, config_path: Path | None) -> None:
    """Show each feed: last success, last status and error, consecutive errors, next poll."""
    from sqlalchemy import select

    from monitor.ingest.refresh import sync_feeds
    from monitor.store.models import Feed, utcnow

    settings = _settings(ctx, config_path)
    with _store(settings) as sessions, sessions.begin() as session:
        sync_feeds(session, settings.feeds, utcnow())
        rows = list(session.scalars(select(Feed).where(Feed.active.is_(True)).order_by(Feed.name)))
        table = Table("feed", "url", "last success", "status", "errors", "next poll", "entries", "last error", title="feeds")
        for f in rows:
            table.add_row(
                f.name,
                f.url,
                _when(f.last_success_at),
                f.last_status or "never polled",
                str(f.consecutive_errors),
                _when(f.next_poll_at),
                str(f.entries_seen),
                f.last_error or "",
            )
    console.print(table)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


@main.command("test-alert")
@config_option
@click.pass_context
def test_alert(ctx: click.Context, config_path: Path | None) -> None:
    """Send a sample alert to each configured channel now and report how each went."""
    from monitor.alerts.channels import build_channels
    from monitor.alerts.content import sample_alert
    from monitor.ingest.fetch import FetchLimits, make_http_client

    settings = _settings(ctx, config_path)

    async def go() -> dict[str, Any]:
        async with make_http_client(FetchLimits.from_settings(settings.poll), private_addresses=True) as http:
            channels = build_channels(settings.alerts, http)
            results = await asyncio.gather(*(channel.send(0, sample_alert()) for channel in channels.values()))
            return dict(zip(channels, results, strict=True))

    results = asyncio.run(go())
    if not results:
        click.echo("no channel is configured", err=True)
        ctx.exit(1)
    failed = False
    for name, delivery in results.items():
        click.echo(f"{name}: {delivery.status}" + (f" ({delivery.error})" if delivery.error else ""))
        failed |= str(delivery.status) != "delivered"
    ctx.exit(1 if failed else 0)


@main.group(invoke_without_command=True)
@click.option("--status", type=click.Choice(["pending", "delivered", "dead", "filtered"]), default=None, help="Only this status.")
@click.option("--limit", default=50, show_default=True, help="How many, newest first.")
@config_option
@click.pass_context
def alerts(ctx: click.Context, status: str | None, limit: int, config_path: Path | None) -> None:
    """List alerts with channel, status, attempts and last error (`alerts retry` requeues)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj["config_path"] = config_path or ctx.obj.get("config_path")
        return
    from sqlalchemy import select

    from monitor.store.models import Alert

    settings = _settings(ctx, config_path)
    query = select(Alert).order_by(Alert.id.desc()).limit(limit)
    if status:
        query = query.where(Alert.status == status)
    with _store(settings) as sessions, sessions() as session:
        rows = list(session.scalars(query))
    table = Table("id", "channel", "status", "attempts", "next attempt", "created", "title", "last error", title="alerts")
    for a in rows:
        table.add_row(
            str(a.id), a.channel, a.status, str(a.attempts), _when(a.next_attempt_at) if a.status == "pending" else "-",
            _when(a.created_at), str(a.payload.get("article_title", "")), a.last_error or "",
        )
    console.print(table)


@alerts.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True, help="Requeue every dead alert.")
@config_option
@click.pass_context
def alerts_retry(ctx: click.Context, ids: tuple[int, ...], all_failed: bool, config_path: Path | None) -> None:
    """Requeue dead alerts (IDS, or --all-failed) with a fresh attempt budget."""
    from monitor.alerts.dispatch import retry_alerts

    if not ids and not all_failed:
        click.echo("error: give alert ids or --all-failed", err=True)
        ctx.exit(2)
    settings = _settings(ctx, config_path)
    with _store(settings) as sessions, sessions() as session:
        count = retry_alerts(session, list(ids), all_failed)
    click.echo(f"requeued {count} alerts")


@main.command("check-config")
@config_option
@click.pass_context
def check_config(ctx: click.Context, config_path: Path | None) -> None:
    """Validate the configuration and print it with secrets hidden."""
    settings = _settings(ctx, config_path)
    click.echo(json.dumps(settings.model_dump(mode="json"), indent=2))
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

    settings = _settings(ctx, config_path)
    with _store(settings) as sessions:
        click.echo(f"database at revision {current_revision(sessions.kw['bind'])}")


@main.command("eval")
@click.argument("streams", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--baseline", type=click.Choice(["keywords"]), default=None, help="Score a baseline beside the detector.")
@click.option("--sweep", is_flag=True, help="Show precision and recall as the main thresholds move (per file).")
@click.option(
    "--cross",
    is_flag=True,
    help="Leave one file out: thresholds chosen on the other files, the file left out scored with them "
    "(at least 2 files). The pooled out-of-file figures are the ones to quote.",
)
@click.option(
    "--grid",
    "grid_options",
    multiple=True,
    metavar="SETTING=V1,V2",
    help="With --cross: values of an analysis setting to try (repeatable); replaces the default grid "
    "(relevance_threshold x target_match_threshold).",
)
@config_option
@click.pass_context
def evaluate_stream(
    ctx: click.Context,
    streams: tuple[Path, ...],
    as_json: bool,
    baseline: str | None,
    sweep: bool,
    cross: bool,
    grid_options: tuple[str, ...],
    config_path: Path | None,
) -> None:
    """Score the detector on labelled streams (JSON lines), each from the seeds afresh, then pooled."""
    import time

    from monitor.analysis import evaluate
    from monitor.analysis.detector import seed_knowledge
    from monitor.service import build_analysis

    problem = None
    if cross and sweep:
        problem = "--cross and --sweep do not go together"
    elif cross and len(streams) < 2:
        problem = "--cross needs at least 2 stream files (each is held out in turn)"
    elif grid_options and not cross:
        problem = "--grid needs --cross"
    try:
        grid = evaluate.parse_grid(grid_options) if grid_options else evaluate.DEFAULT_GRID
    except evaluate.GridError as exc:
        problem = problem or str(exc)
    if problem:
        click.echo(f"error: {problem}", err=True)
        ctx.exit(2)
    settings = _settings(ctx, config_path)
    try:  # every file checked before the model loads
        records = evaluate.load_streams(list(streams))
    except evaluate.StreamError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    stage = build_analysis(settings)
    if sweep:
        rows = {name: evaluate.sweep(stream, stage.detector, stage.documents) for name, stream in records.items()}
        if as_json:
            click.echo(json.dumps({"files": {n: [asdict(r) for r in rs] for n, rs in rows.items()}}, indent=2))
        else:
            click.echo("\n\n".join(f"#### {n}\n{evaluate.format_sweep(rs)}" for n, rs in rows.items()))
        return
    if cross:
        started, points = time.monotonic(), len(evaluate.grid_points(grid))

        def progress(index: int, point: evaluate.Point) -> None:
            elapsed = f"{time.monotonic() - started:.0f} s so far"
            click.echo(f"grid point {index + 1}/{points}: {evaluate.describe(point)} ({elapsed})", err=True)

        result = evaluate.cross_validate(
            records, stage.detector, stage.documents, grid, baseline=baseline == "keywords", progress=progress
        )
        out = evaluate.cross_json(result) if as_json else evaluate.format_cross(result)
        click.echo(json.dumps(out, indent=2, ensure_ascii=False) if as_json else out)
        return
    seed_facts = seed_knowledge(stage.detector, stage.documents)
    reports = evaluate.evaluate_files(
        records, stage.detector, seed_facts, baseline=baseline == "keywords", seed_documents=stage.documents
    )
    if as_json:
        click.echo(json.dumps(evaluate.files_json(reports), indent=2, ensure_ascii=False))
    else:
        click.echo(evaluate.format_files(reports))


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
