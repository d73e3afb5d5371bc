"""The operations endpoint: /healthz, /readyz and /metrics over a minimal HTTP/1.1 server.

It runs on the service's own event loop (asyncio.start_server), so readiness checks see the live
scheduler and database; no web framework is needed for three GET routes. One request per
connection (`Connection: close`), bounded request size and time, GET and HEAD only, at most
`max_connections` at once (the rest are answered 503 and closed), and one outbox query per
METRICS_CACHE_S however many scrapers ask.

    server = await serve_http(host, port, metrics, service_checks(engine, ...),
                              on_scrape=outbox_refresher(metrics, sessions))
    ...
    server.close(); await server.wait_closed()
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any, Protocol

from prometheus_client.exposition import choose_encoder
from sqlalchemy import Engine

from monitor.metrics import Metrics
from monitor.outbox import pending_by_channel
from monitor.store.db import SessionFactory, ping
from monitor.store.writable import storage_problem

log = logging.getLogger(__name__)

# A request line or header line longer than this is refused (StreamReader limit).
MAX_LINE_BYTES = 8192
MAX_HEADERS = 100
# A client has this long to send its request head; a slow or idle one is dropped.
REQUEST_TIMEOUT_S = 5.0
# The database check answers "not ready" when SELECT 1 takes longer than this.
DATABASE_TIMEOUT_S = 2.0
# Scrapes within this long of a refresh of the outbox gauges share it (and one in flight is shared).
METRICS_CACHE_S = 1.0
# Connections served at once unless the caller says otherwise (http.max_connections).
MAX_CONNECTIONS = 32
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 5\r\nRetry-After: 1\r\nConnection: close\r\n\r\nbusy\n"
)

Checks = Callable[[], Awaitable[Mapping[str, bool]]]
OnScrape = Callable[[], Awaitable[None]]


class SchedulerLike(Protocol):
    @property
    def running(self) -> bool: ...


class BadRequest(Exception):
    pass


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


# --- HTTP ------------------------------------------------------------------------------------


async def serve_http(
    host: str,
    port: int,
    metrics: Metrics,
    checks: Checks,
    *,
    on_scrape: OnScrape | None = None,
    max_connections: int = MAX_CONNECTIONS,
    metrics_fresh_s: float = METRICS_CACHE_S,
) -> asyncio.Server:
    """Start serving /healthz, /readyz and /metrics on HOST:PORT (0 picks a free port).

    Returns the listening server: `bound_port(server)` tells the port, `server.close()` stops it.
    """
    not_ready: list[str] = []  # last reported, to log changes rather than every probe
    scrape = coalesced(on_scrape, metrics_fresh_s) if on_scrape is not None else None
    active = 0

    async def readyz() -> tuple[int, str, bytes]:
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
        status = HTTPStatus.SERVICE_UNAVAILABLE if failing else HTTPStatus.OK
        return status, "application/json", json.dumps(body).encode() + b"\n"

    async def metrics_page(accept: str) -> tuple[int, str, bytes]:
        if scrape is not None:
            try:
                await scrape()
            except Exception:  # stale outbox gauges beat no metrics at all
                log.warning("metrics: outbox refresh failed", exc_info=True)
        encoder, content_type = _encoder(accept)
        return HTTPStatus.OK, content_type, encoder(metrics.registry)

    async def route(method: str, path: str, headers: Mapping[str, str]) -> tuple[int, str, bytes, dict[str, str]]:
        if path not in ("/healthz", "/readyz", "/metrics"):
            return HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n", {}
        if method not in ("GET", "HEAD"):
            return (
                HTTPStatus.METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                b"method not allowed\n",
                {"Allow": "GET, HEAD"},
            )
        if path == "/healthz":
            return HTTPStatus.OK, "text/plain; charset=utf-8", b"ok\n", {}
        if path == "/readyz":
            return (*await readyz(), {})
        return (*await metrics_page(headers.get("accept", "")), {})

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal active
        if active >= max_connections:
            # Over the cap: answer without reading and let go of the descriptor at once, so idle
            # or slow clients cannot starve the fetches, SQLite and SMTP of file descriptors.
            writer.write(_BUSY)
            writer.close()
            return
        active += 1
        try:
            try:
                method, path, headers = await asyncio.wait_for(_read_head(reader), REQUEST_TIMEOUT_S)
            except (asyncio.IncompleteReadError, TimeoutError):
                return  # closed or idle before a full request (a TCP probe, a slow client)
            except (BadRequest, ValueError) as exc:  # ValueError: a line over MAX_LINE_BYTES
                log.debug("http: bad request: %s", exc)
                await _respond(writer, HTTPStatus.BAD_REQUEST, "text/plain; charset=utf-8", b"bad request\n")
                return
            try:
                status, content_type, body, extra = await route(method, path, headers)
            except Exception:
                log.exception("http: %s %s failed", method, path)
                status, content_type, body, extra = (
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    b"internal error\n",
                    {},
                )
            await _respond(writer, status, content_type, body, extra, head=method == "HEAD")
        except ConnectionError:
            pass
        finally:
            active -= 1
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    # The backlog bounds how many connections one turn of the event loop accepts (and so holds
    # descriptors for) before the handlers shed the excess; the kernel keeps the rest waiting.
    server = await asyncio.start_server(handle, host, port, limit=MAX_LINE_BYTES, backlog=max_connections)
    log.info("http endpoint listening", extra={"host": host, "port": bound_port(server)})
    return server


def bound_port(server: asyncio.Server) -> int:
    """The port SERVER listens on (useful after asking for port 0)."""
    return int(server.sockets[0].getsockname()[1])


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]]:
    """Method, path (query dropped) and lower-cased headers of one HTTP/1.x request."""
    line = await reader.readline()
    if not line:
        raise asyncio.IncompleteReadError(b"", None)
    parts = line.decode("latin-1").strip().split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        raise BadRequest(f"malformed request line {line[:80]!r}")
    method, target, _version = parts
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        header = await reader.readline()
        if header in (b"\r\n", b"\n"):
            return method, target.split("?", 1)[0], headers
        if not header:
            raise asyncio.IncompleteReadError(header, None)
        name, sep, value = header.decode("latin-1").partition(":")
        if not sep:
            raise BadRequest(f"malformed header {header[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    raise BadRequest("too many headers")


async def _respond(
    writer: asyncio.StreamWriter,
    status: int,
    content_type: str,
    body: bytes,
    extra: Mapping[str, str] | None = None,
    *,
    head: bool = False,
) -> None:
    phrase = HTTPStatus(status).phrase
    lines = [
        f"HTTP/1.1 {int(status)} {phrase}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: close",
        *(f"{name}: {value}" for name, value in (extra or {}).items()),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else body))
    await writer.drain()
