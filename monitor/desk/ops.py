"""The operations routes of the web application: /healthz, /readyz and /metrics, open to probes
and scrapers (/metrics asks for a bearer token when web.metrics_token is set).

They run on the service's own event loop, so readiness checks see the live scheduler and
database, and one outbox query serves every scrape within METRICS_CACHE_S.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client.exposition import choose_encoder
from sqlalchemy import Engine

from monitor.metrics import Metrics
from monitor.outbox import pending_by_channel
from monitor.store.db import SessionFactory, ping
from monitor.store.writable import storage_problem

log = logging.getLogger(__name__)

# The database check answers "not ready" when SELECT 1 takes longer than this.
DATABASE_TIMEOUT_S = 2.0
# Scrapes within this long of a refresh of the outbox gauges share it (and one in flight is shared).
METRICS_CACHE_S = 1.0

Checks = Callable[[], Awaitable[Mapping[str, bool]]]
OnScrape = Callable[[], Awaitable[None]]


class SchedulerLike(Protocol):
    @property
    def running(self) -> bool: ...


# --- readiness checks ------------------------------------------------------------------------


class DatabaseCheck:
    """`SELECT 1` in a worker thread, with a timeout; concurrent probes share one attempt.

    A hung connection attempt therefore ties up one thread, not one per probe.
    """

    def __init__(self, engine: Engine, timeout_s: float = DATABASE_TIMEOUT_S) -> None:
        self.engine = engine
        self.timeout_s = timeout_s
        self.last_error: str | None = None
        self._inflight: asyncio.Future[bool] | None = None

    def _select_one(self) -> bool:
        try:
            ping(self.engine)
        except Exception as exc:  # noqa: BLE001 -- any failure means "not reachable"; the reason is kept
            self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            return False
        self.last_error = None
        return True

    async def __call__(self) -> bool:
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(asyncio.to_thread(self._select_one))
        try:
            return await asyncio.wait_for(asyncio.shield(self._inflight), self.timeout_s)
        except TimeoutError:
            self.last_error = f"SELECT 1 took longer than {self.timeout_s:g}s"
            return False


class StorageCheck:
    """Whether the database can still take writes (monitor/store/writable.py), in a thread, with a
    timeout; concurrent probes share one attempt. The reason is logged when it changes."""

    def __init__(self, engine: Engine, min_free_bytes: int, timeout_s: float = DATABASE_TIMEOUT_S) -> None:
        self.engine = engine
        self.min_free_bytes = min_free_bytes
        self.timeout_s = timeout_s
        self.last_error: str | None = None
        self._inflight: asyncio.Future[str | None] | None = None

    def _probe(self) -> str | None:
        try:
            return storage_problem(self.engine, self.min_free_bytes)
        except Exception as exc:  # noqa: BLE001 -- the database check reports an unreachable server
            return f"storage: {type(exc).__name__}"

    async def __call__(self) -> bool:
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(asyncio.to_thread(self._probe))
        try:
            problem = await asyncio.wait_for(asyncio.shield(self._inflight), self.timeout_s)
        except TimeoutError:
            problem = f"storage: the write probe took longer than {self.timeout_s:g}s"
        if problem != self.last_error:
            log.log(logging.WARNING if problem else logging.INFO, problem or "storage: writable again")
            self.last_error = problem
        return problem is None


def service_checks(
    engine: Engine,
    *,
    model_loaded: Callable[[], bool],
    scheduler: SchedulerLike | None,
    database_timeout_s: float = DATABASE_TIMEOUT_S,
    min_free_bytes: int = 0,
) -> Checks:
    """The service's readiness: database reachable and writable, model loaded, scheduler running."""
    database = DatabaseCheck(engine, database_timeout_s)
    storage = StorageCheck(engine, min_free_bytes, database_timeout_s)

    async def checks() -> dict[str, bool]:
        reachable = await database()
        return {
            "database": reachable,
            # An unreachable database is the database check's failure, not the disk's.
            "storage": await storage() if reachable else True,
            "model": bool(model_loaded()),
            "scheduler": scheduler is not None and bool(scheduler.running),
        }

    return checks


def outbox_refresher(metrics: Metrics, sessions: SessionFactory) -> OnScrape:
    """Refresh the outbox gauges (one query, in a thread) before a scrape."""

    def refresh() -> None:
        with sessions() as session:
            metrics.refresh_outbox(pending_by_channel(session))

    async def on_scrape() -> None:
        await asyncio.to_thread(refresh)

    return on_scrape


def coalesced(on_scrape: OnScrape, fresh_s: float = METRICS_CACHE_S) -> OnScrape:
    """ON_SCRAPE shared: callers during a run wait for that run, callers within FRESH_S after one
    ends reuse it. A hundred scrapers (or one in a loop) cost one query per FRESH_S."""
    inflight: asyncio.Future[None] | None = None
    finished_at = float("-inf")

    async def run() -> None:
        nonlocal finished_at
        try:
            await on_scrape()
        finally:
            finished_at = asyncio.get_running_loop().time()

    async def shared() -> None:
        nonlocal inflight
        if inflight is None or (inflight.done() and asyncio.get_running_loop().time() - finished_at >= fresh_s):
            inflight = asyncio.ensure_future(run())
        await asyncio.shield(inflight)

    return shared


def _encoder(accept: str) -> tuple[Callable[[Any], bytes], str]:
    """The exposition format the Accept header asks for; the text format when it cannot be read
    (prometheus_client raises on "application/openmetrics-text; version=abc")."""
    try:
        return choose_encoder(accept)
    except (TypeError, ValueError):
        return choose_encoder("")


# --- routes ----------------------------------------------------------------------------------

_NO_STORE = {"Cache-Control": "no-store"}


def ops_router(
    metrics: Metrics,
    checks: Checks,
    *,
    on_scrape: OnScrape | None = None,
    metrics_token: str | None = None,
    metrics_fresh_s: float = METRICS_CACHE_S,
) -> APIRouter:
    """/healthz, /readyz and /metrics (GET and HEAD), outside the desk's login."""
    router = APIRouter(include_in_schema=False)
    not_ready: list[str] = []  # last reported, to log changes rather than every probe
    scrape = coalesced(on_scrape, metrics_fresh_s) if on_scrape is not None else None

    @router.api_route("/healthz", methods=["GET", "HEAD"])
    async def healthz() -> Response:
        return PlainTextResponse("ok\n", headers=_NO_STORE)

    @router.api_route("/readyz", methods=["GET", "HEAD"])
    async def readyz() -> Response:
        try:
            results = {name: bool(ok) for name, ok in (await checks()).items()}
            error = None
        except Exception as exc:
            log.exception("readiness checks failed")
            results, error = {"checks": False}, f"{type(exc).__name__}: {exc}"
        failing = sorted(name for name, ok in results.items() if not ok)
        if failing != not_ready:
            log.log(logging.WARNING if failing else logging.INFO, "readiness changed", extra={"not_ready": failing})
            not_ready[:] = failing
        body: dict[str, Any] = {"ready": not failing, "checks": results, "not_ready": failing}
        if error:
            body["error"] = error
        return JSONResponse(body, status_code=503 if failing else 200, headers=_NO_STORE)

    @router.api_route("/metrics", methods=["GET", "HEAD"])
    async def metrics_page(request: Request) -> Response:
        if metrics_token and not _bearer_matches(request.headers.get("authorization", ""), metrics_token):
            return PlainTextResponse(
                "unauthorized\n", status_code=401, headers={**_NO_STORE, "WWW-Authenticate": "Bearer"}
            )
        if scrape is not None:
            try:
                await scrape()
            except Exception:  # stale outbox gauges beat no metrics at all
                log.warning("metrics: outbox refresh failed", exc_info=True)
        encoder, content_type = _encoder(request.headers.get("accept", ""))
        return Response(encoder(metrics.registry), media_type=content_type, headers=_NO_STORE)

    return router


def _bearer_matches(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
