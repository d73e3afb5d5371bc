"""The ops endpoint under a hostile or unlucky world, over real sockets: a malformed Accept header,
a crowd of scrapers, a flood of idle connections, a disk that is full or read-only. Asserted at the
HTTP level, so the tests hold whatever serves the endpoint."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from support.webapp import desk_app, ops_endpoint, serve

from monitor.config import Settings
from monitor.desk.ops import service_checks
from monitor.store.db import SessionFactory, make_engine
from monitor.store.writable import storage_problem
from tests.conftest import migrated_sqlite

REPO = Path(__file__).resolve().parents[1]


@asynccontextmanager
async def endpoint(
    checks: Callable[[], Awaitable[Mapping[str, bool]]] | None = None,
    on_scrape: Callable[[], Awaitable[None]] | None = None,
    **options: Any,
) -> AsyncIterator[tuple[int, httpx.AsyncClient]]:
    async with ops_endpoint(None, checks, on_scrape=on_scrape, **options) as client:
        port = client.base_url.port
        assert port is not None
        yield port, client


# --- binding ----------------------------------------------------------------------------------


def test_the_endpoint_binds_loopback_unless_configured_and_the_container_says_so() -> None:
    assert Settings.model_validate({}).http.host == "127.0.0.1"
    assert "MONITOR_HTTP__HOST=0.0.0.0" in (REPO / "Dockerfile").read_text(encoding="utf-8")


# --- /metrics ---------------------------------------------------------------------------------


MALFORMED_ACCEPT = [
    "application/openmetrics-text; version=abc",
    "application/openmetrics-text; version=",
    "application/openmetrics-text; version=1.0.0; charset=\x7f",
    "text/plain;;;; q=x, */*; version=9.9.9.9.9",
]


async def test_a_malformed_accept_header_gets_the_text_format_not_a_500(
    caplog: pytest.LogCaptureFixture, subtests: pytest.Subtests
) -> None:
    async with endpoint() as (_, client):
        for accept in MALFORMED_ACCEPT:  # each a subtest, on one endpoint
            with subtests.test(accept=accept), caplog.at_level(logging.DEBUG, logger="monitor"):
                caplog.clear()
                response = await client.get("/metrics", headers={"Accept": accept})
                assert response.status_code == 200
                assert "monitor_polls" in response.text
                assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.slow  # real timers or a process of its own: the full suite runs it, the fast tier does not
async def test_scrapes_at_once_and_in_a_row_share_one_outbox_query() -> None:
    queries = 0

    async def slow_query() -> None:
        nonlocal queries
        queries += 1
        await asyncio.sleep(0.2)

    loop = asyncio.get_running_loop()
    async with endpoint(on_scrape=slow_query) as (_, client):
        started = loop.time()
        crowd = await asyncio.gather(*(client.get("/metrics") for _ in range(25)))
        assert all(response.status_code == 200 for response in crowd)
        for _ in range(10):  # a scraper in a loop
            assert (await client.get("/metrics")).status_code == 200
        elapsed = loop.time() - started
        # One query per METRICS_CACHE_S (1 s) at most, however slow this machine is today;
        # before, each of the 35 scrapes ran its own.
        assert 1 <= queries <= 1 + int(elapsed), (queries, elapsed)
        before = queries
        await asyncio.sleep(1.1)
        await client.get("/metrics")
        assert queries == before + 1  # and a scrape after the second reads anew


# --- connections ------------------------------------------------------------------------------


def _server_side_established(port: int) -> int:
    """Connections the server holds open on PORT, as the kernel counts them (/proc/net/tcp)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                count += 1
    return count


@pytest.fixture
def idle_sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


CLOSE = {"Connection": "close"}


async def _healthz_within(client: httpx.AsyncClient, seconds: float) -> int:
    """/healthz asked until it answers 200 or SECONDS have passed (each time on a connection of its
    own: a kept-alive one would be counted in the cap); its last answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (status := (await client.get("/healthz", headers=CLOSE)).status_code) != 200 and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return status


async def _flood(port: int, count: int, sockets: list[socket.socket]) -> None:
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        sockets.append(sock)
        await asyncio.sleep(0)


def _unanswered(sock: socket.socket) -> bool:
    """Whether SOCK has had nothing from the server yet: no bytes, no close."""
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False  # reset
    return False


async def _until_answered_but(most: int, sockets: list[socket.socket], seconds: float = 2.0) -> None:
    """Until at most MOST of SOCKETS wait for an answer (each one shed is answered 503 and closed),
    or SECONDS have passed: well within the request timeout (5 s), after which the server drops
    every idle client whether it sheds them or not."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while sum(map(_unanswered, sockets)) > most and loop.time() < deadline:
        await asyncio.sleep(0.01)


async def test_a_flood_of_idle_connections_is_capped_and_health_answers_after_it(
    idle_sockets: list[socket.socket],
) -> None:
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux's /proc/net/tcp to count the server's connections")
    async with endpoint(max_connections=8) as (port, client):
        await _flood(port, 200, idle_sockets)
        await _until_answered_but(9, idle_sockets)  # the server accepts and sheds the excess
        held = _server_side_established(port)
        # uvicorn alone holds all 200 (and a descriptor for each) until the clients leave.
        assert held <= 8 + 1, held
        busy = await client.get("/healthz")
        assert busy.status_code == 503 and busy.headers.get("retry-after") == "1"
        for sock in idle_sockets:
            sock.close()
        idle_sockets.clear()
        assert await _healthz_within(client, 0.3) == 200


@pytest.mark.parametrize(
    "start",
    [
        b"",  # connects and says nothing
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n",  # a head that never ends
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\nusername=a",  # a body that never ends
    ],
    ids=["silent", "slow-head", "slow-body"],
)
async def test_clients_that_fill_the_cap_without_finishing_a_request_are_dropped(
    idle_sockets: list[socket.socket], sqlite_sessions: SessionFactory, start: bytes
) -> None:
    # uvicorn alone waits for ever for a first request and for a request's body: such clients
    # would hold the cap, and /healthz would answer 503 until they leave. Served as the service
    # serves it, with the desk (whose login form reads a body).
    async with serve(desk_app(sqlite_sessions), max_connections=4, request_timeout_s=0.5) as client:
        port = client.base_url.port
        assert port is not None
        await _flood(port, 4, idle_sockets)
        for sock in idle_sockets:
            sock.send(start)
        await asyncio.sleep(0.1)
        # Each probe on a connection of its own: a kept-alive one would be counted in the cap.
        assert (await client.get("/healthz", headers=CLOSE)).status_code == 503
        # The clients still hold their sockets open; the server lets go of them within twice the timeout.
        assert await _healthz_within(client, 1.0) == 200


# --- /readyz and the disk -----------------------------------------------------------------------


@asynccontextmanager
async def readiness(template: Path, database: Path, min_free_bytes: int = 0) -> AsyncIterator[httpx.AsyncClient]:
    """The endpoint with the service's checks on a migrated SQLite DATABASE (a copy of the run's
    migrated TEMPLATE), as `monitor run` builds them: one engine for the service's life, its pool
    already connected."""
    engine = make_engine(migrated_sqlite(template, database))
    scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
    scheduler.start()
    try:
        checks = service_checks(engine, model_loaded=lambda: True, scheduler=scheduler, min_free_bytes=min_free_bytes)
        async with endpoint(checks) as (_, client):
            yield client
    finally:
        scheduler.shutdown(wait=False)
        engine.dispose()


async def test_readyz_fails_when_the_disk_has_less_free_space_than_configured(
    tmp_path: Path, sqlite_template: Path
) -> None:
    free = shutil.disk_usage(tmp_path).free
    async with readiness(sqlite_template, tmp_path / "ok.db") as client:
        assert (await client.get("/readyz")).status_code == 200
    async with readiness(sqlite_template, tmp_path / "short.db", min_free_bytes=free * 2) as client:
        short = await client.get("/readyz")
    assert short.status_code == 503 and short.json()["not_ready"] == ["storage"]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of its own (needs root with CAP_SYS_ADMIN; skipped elsewhere)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small file system here: " + mounted.stderr.decode(errors="replace").strip())
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


async def test_readyz_fails_on_a_full_disk_and_recovers_when_space_returns(
    small_disk: Path, sqlite_template: Path
) -> None:
    async with readiness(sqlite_template, small_disk / "monitor.db") as client:
        assert (await client.get("/readyz")).status_code == 200
        filler = small_disk / "filler"
        # Unbuffered: nothing is left to flush (and fail with ENOSPC) when the file is closed.
        with filler.open("wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * 65536)
            except OSError:
                pass  # ENOSPC: the disk is full
        full = await client.get("/readyz")
        # Before, SELECT 1 on the pooled connection still answered: ready, while no write could land.
        assert full.status_code == 503 and full.json()["not_ready"] == ["storage"]
        assert (await client.get("/healthz")).status_code == 200
        filler.unlink()
        assert (await client.get("/readyz")).status_code == 200


def test_a_read_only_disk_is_a_storage_problem(small_disk: Path) -> None:
    # A disk the kernel remounted read-only (errors=remount-ro) while the service held the file
    # cannot be staged with open writers; the probe is what /readyz runs, on a real read-only mount.
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    engine = make_engine(f"sqlite:///{small_disk / 'monitor.db'}")
    try:
        problem = storage_problem(engine)
    finally:
        engine.dispose()
    assert problem is not None and "read-only" in problem
