"""The composition root and the service's jobs: poll feeds, process articles, dispatch alerts."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TextIO

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import FastAPI
from sqlalchemy import Engine

from monitor import outbox
from monitor.alerts.channel import Channel
from monitor.alerts.channels import build_channels, follow_up_channels
from monitor.alerts.dispatch import Dispatcher, DispatchReport
from monitor.analysis.detector import Detector, seed_knowledge
from monitor.analysis.embedder import Embedder
from monitor.analysis.seeds import SeedCorpus, SeedDocument, load_seed_documents
from monitor.config import Settings
from monitor.desk.app import create_app
from monitor.desk.context import DeskContext
from monitor.desk.ops import SchedulerLike, ops_router, outbox_refresher, service_checks
from monitor.desk.server import RunningServer, start_server
from monitor.ingest.fetch import FetchLimits, make_http_client
from monitor.ingest.parse_pool import Parser
from monitor.ingest.refresh import RefreshResult, refresh_feeds
from monitor.metrics import Metrics
from monitor.process import ProcessReport, process_articles
from monitor.store.db import SessionFactory, make_engine, make_session_factory, startup_lock, upgrade
from monitor.store.feeds import sync_feeds
from monitor.store.knowledge import ensure_seed_knowledge
from monitor.store.models import AlertStatus, utcnow

log = logging.getLogger(__name__)


@dataclass
class AnalysisStage:
    """The model-backed part of the service, built once: it is the slow part to start."""

    embedder: Embedder
    documents: list[SeedDocument]
    corpus: SeedCorpus
    detector: Detector


def build_analysis(settings: Settings) -> AnalysisStage:
    options = settings.analysis
    # The seeds first: a missing corpus is a configuration error, found before the slow model load.
    documents = load_seed_documents(settings.seeds_dir)
    embedder = Embedder(
        options.model,
        batch_size=options.batch_size,
        device=options.device,
        backend=options.backend,
        cache_dir=settings.cache_dir,
    )
    corpus = SeedCorpus.build(documents, embedder, settings.cache_dir)
    return AnalysisStage(embedder, documents, corpus, Detector(embedder, corpus, settings.analysis))


@dataclass
class Service:
    settings: Settings
    engine: Engine
    sessions: SessionFactory
    analysis: AnalysisStage
    http: httpx.AsyncClient
    channels: Mapping[str, Channel]
    # The channels' own client: their URLs are the operator's (maybe internal), never a feed's.
    channel_http: httpx.AsyncClient
    metrics: Metrics
    dispatcher: Dispatcher
    parser: Parser
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    # The job ticks in progress, so that shutdown can wait for them.
    running: set[asyncio.Task[object]] = field(default_factory=set)

    async def aclose(self) -> None:
        self.parser.shutdown()
        await self.http.aclose()
        await self.channel_http.aclose()
        self.engine.dispose()


def bootstrap(settings: Settings, *, stream: TextIO = sys.stdout, analysis: AnalysisStage | None = None) -> Service:
    """Build everything the service needs, once: migrations, model, seeds, HTTP client, channels.

    ANALYSIS may be passed in when one process runs several services on the same model (tests).
    """
    engine = make_engine(settings.database_url.get_secret_value())
    sessions = make_session_factory(engine)
    if analysis is None:
        analysis = build_analysis(settings)
        # The model's millions of objects live as long as the process: out of the collector's sight,
        # a full collection cannot land inside the start-up lock (which holds the other replicas)
        # or a poll and walk them all again.
        gc.freeze()
    with startup_lock(engine):
        upgrade(engine)
        ensure_seed_knowledge(sessions, partial(seed_knowledge, analysis.detector, analysis.documents))
        with sessions.begin() as session:
            sync_feeds(session, settings.feeds, utcnow())
    http = make_http_client(FetchLimits.from_settings(settings.poll))
    channel_http = make_http_client(FetchLimits.from_settings(settings.poll), private_addresses=True)
    channels = build_channels(settings.alerts, channel_http, stream)
    metrics = Metrics(channels=list(channels))
    analysis.embedder.on_batch = metrics.embedding_batch
    metrics.watch_embedder_memo(lambda: analysis.embedder.memo_size)
    dispatcher = Dispatcher(sessions, channels, settings.alerts, observe=partial(_observe_delivery, sessions, metrics))
    parser = Parser.from_settings(settings.poll)
    return Service(settings, engine, sessions, analysis, http, channels, channel_http, metrics, dispatcher, parser)


def _observe_delivery(sessions: SessionFactory, metrics: Metrics, channel: str, alert_id: int, status: str) -> None:
    """Count an attempt; a delivery also times the alert from its article's publication and fetch."""
    published = fetched = None
    if status == AlertStatus.DELIVERED:
        with sessions() as session:
            published, fetched = outbox.article_times(session, alert_id)
    metrics.alert(channel, status, published, fetched, utcnow())


async def poll_feeds(service: Service, *, all_feeds: bool = False, only_feed: str | None = None) -> list[RefreshResult]:
    results = await refresh_feeds(
        service.sessions,
        service.http,
        service.settings.poll,
        all_feeds=all_feeds,
        only_feed=only_feed,
        alert_channels=list(service.channels),
        lease_s=service.settings.claim_lease,
        parser=service.parser,
    )
    for result in results:
        service.metrics.poll(str(result.outcome), result.duration_ms / 1000)
        service.metrics.article_stored(result.new_articles)
    return results


async def process_new_articles(service: Service) -> ProcessReport:
    """Analyse until no new article is left; the model runs in a thread so polling goes on."""
    total = ProcessReport()
    while True:
        report = await asyncio.to_thread(
            process_articles,
            service.sessions,
            service.analysis.detector,
            list(service.channels),
            story_days=service.settings.analysis.same_story_days,
            limit=service.settings.analysis.batch_articles,
            lease_s=service.settings.claim_lease,
            metrics=service.metrics,
            should_stop=service.stop.is_set,
            also_reported=follow_up_channels(service.channels),
            base_url=service.settings.web.base_url,
        )
        total += report
        if report.processed + report.failed == 0 or service.stop.is_set():
            return total


async def dispatch(service: Service) -> DispatchReport:
    return await service.dispatcher.dispatch_alerts()


@dataclass
class CycleReport:
    polls: list[RefreshResult]
    processed: ProcessReport
    dispatched: DispatchReport


async def run_cycle(service: Service, *, only_feed: str | None = None) -> CycleReport:
    """One full cycle: poll every feed (or the one named), process what arrived, dispatch alerts."""
    polls = await poll_feeds(service, all_feeds=only_feed is None, only_feed=only_feed)
    processed = await process_new_articles(service)
    dispatched = await dispatch(service)
    return CycleReport(polls, processed, dispatched)


async def _guarded(name: str, job: Callable[[Service], Awaitable[object]], service: Service) -> None:
    # The tick boundary: a job that fails is logged and tried again at its next tick.
    if service.stop.is_set():
        return
    task = asyncio.current_task()
    if task is not None:
        service.running.add(task)
    try:
        await job(service)
    except Exception:
        service.metrics.job_failed(name)
        log.exception("job failed", extra={"job": name})
    finally:
        service.running.discard(task)  # type: ignore[arg-type]


def web_app(service: Service, scheduler: SchedulerLike | None) -> FastAPI:
    """The desk and the operations routes, on this service's database, metrics and scheduler."""
    settings = service.settings
    checks = service_checks(
        service.engine,
        model_loaded=lambda: service.analysis.embedder.dimension > 0,
        scheduler=scheduler,
        min_free_bytes=settings.http.min_free_bytes,
    )
    token = settings.web.metrics_token
    ops = ops_router(
        service.metrics,
        checks,
        on_scrape=outbox_refresher(service.metrics, service.sessions),
        metrics_token=token.get_secret_value() if token else None,
    )
    return create_app(DeskContext(settings.web, service.sessions), ops=ops)


async def serve_web(service: Service, scheduler: SchedulerLike | None) -> RunningServer:
    http, web = service.settings.http, service.settings.web
    if web.enabled and not web.users and not web.trusted_proxy_header:
        log.warning(
            "the desk has no analysts: set web.users (hashes from `monitor web hash-password`) or "
            "web.trusted_proxy_header; only API tokens get in"
        )
    return await start_server(web_app(service, scheduler), http.host, http.port, max_connections=http.max_connections)


async def run_forever(service: Service) -> None:
    """Run the three jobs on their ticks until SIGTERM or SIGINT, then stop cleanly."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, service.stop.set)
    scheduler = AsyncIOScheduler(event_loop=loop)
    settings = service.settings
    jobs: dict[str, tuple[Callable[[Service], Awaitable[object]], float]] = {
        "poll": (poll_feeds, settings.poll.tick),
        "process": (process_new_articles, settings.analysis.process_interval),
        "dispatch": (dispatch, settings.alerts.dispatch_interval),
    }
    for name, (job, seconds) in jobs.items():
        scheduler.add_job(
            _guarded,
            "interval",
            args=(name, job, service),
            seconds=seconds,
            id=name,
            max_instances=1,
            coalesce=True,
            next_run_time=utcnow(),
        )
    scheduler.start()
    server = await serve_web(service, scheduler) if settings.http.enabled else None
    log.info("service started", extra={"feeds": len(settings.feeds), "channels": sorted(service.channels)})
    try:
        await service.stop.wait()
    finally:
        # Stop claiming; running jobs finish the item in hand (each commits per item) and hand
        # back what they claimed but did not start, within the grace period.
        started = asyncio.get_running_loop().time()
        scheduler.shutdown(wait=False)
        running = set(service.running)
        if running:
            _, late = await asyncio.wait(running, timeout=settings.shutdown_grace)
            for task in late:
                task.cancel()
        log.info(
            "service stopping",
            extra={"duration_ms": round((asyncio.get_running_loop().time() - started) * 1000, 1)},
        )
        if server is not None:
            await server.stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        log.info("service stopped")
