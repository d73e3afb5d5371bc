"""The operations routes and the metrics, over real sockets (the application served by uvicorn), a
real SQLite database and a real scheduler: /healthz, /readyz (ready and each way of not being
ready) and /metrics, with and without its token."""

from __future__ import annotations

import asyncio
import logging
import platform
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import event
from support.webapp import ops_endpoint

from monitor.desk.ops import DatabaseCheck, outbox_refresher, service_checks
from monitor.desk.server import start_server
from monitor.metrics import Metrics
from monitor.outbox import pending_by_channel
from monitor.store.db import SessionFactory, make_engine, make_session_factory
from monitor.store.models import Alert

# Nothing listens on the discard port: connecting is refused at once.
UNREACHABLE_POSTGRES = "postgresql+psycopg://x@127.0.0.1:9/x"


def always(**results: bool) -> Callable[[], Awaitable[dict[str, bool]]]:
    async def checks() -> dict[str, bool]:
        return dict(results)

    return checks


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert isinstance(sample, Sample)
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Mapping[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def add_alert(sessions: SessionFactory, channel: str, status: str, created_at: datetime) -> None:
    with sessions.begin() as session:
        alert = Alert(channel=channel, status=status, payload={"title": "t"})
        alert.created_at = alert.next_attempt_at = created_at
        session.add(alert)


# --- /healthz and HTTP handling -------------------------------------------------------------


async def test_healthz_answers_ok_whatever_readiness_says() -> None:
    async with ops_endpoint(Metrics(), always(database=False)) as client:
        response = await client.get("/healthz")
        assert (response.status_code, response.text) == (200, "ok\n")
        assert response.headers["cache-control"] == "no-store"
        head = await client.head("/healthz?probe=1")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == "3"


async def test_unknown_paths_methods_and_malformed_requests_are_refused() -> None:
    # The old hand-rolled request-line parser is gone; uvicorn's h11 parser answers these now.
    async with ops_endpoint(Metrics(), always()) as client:
        assert (await client.get("/nope")).status_code == 404
        refused = await client.post("/metrics", content=b"x")
        assert refused.status_code == 405
        assert sorted(refused.headers["allow"].split(", ")) == ["GET", "HEAD"]
        port = client.base_url.port
        for raw in (b"GARBAGE\r\n\r\n", b"GET /healthz HTTP/1.1\r\n" + b"X: " + b"a" * 20_000 + b"\r\n\r\n"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            await writer.drain()
            reply = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n"), reply
        # A connection that closes without a request (a TCP probe) is simply dropped.
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        assert (await client.get("/healthz")).status_code == 200


@pytest.mark.parametrize("request_in_hand", [None, "answered", "abandoned"])
async def test_stopping_finishes_the_request_in_hand_and_closes_idle_connections(request_in_hand: str | None) -> None:
    # The server's shutdown is its own (monitor/desk/server.py), not uvicorn's: it must still let
    # a request being answered finish (even one whose client has left: its handler may be writing),
    # close kept-alive connections rather than wait for them, and end once the last one has gone.
    entered, release, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()
    app = FastAPI()

    @app.get("/quick")
    async def quick() -> PlainTextResponse:
        return PlainTextResponse("ok\n")

    @app.get("/slow")
    async def slow() -> PlainTextResponse:
        entered.set()
        await release.wait()
        finished.set()
        return PlainTextResponse("done\n")

    # A keep-alive timeout far longer than the test: only the stop can close the idle connection.
    running = await start_server(app, "127.0.0.1", 0, request_timeout_s=60)
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    writer.write(b"GET /quick HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.readuntil(b"ok\n")  # answered, and kept alive
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.port}") as client:
        busy = asyncio.create_task(client.get("/slow")) if request_in_hand else None
        if busy is not None:
            await entered.wait()
        if request_in_hand == "abandoned":
            busy.cancel()  # the client gives up and closes its connection
            await asyncio.gather(busy, return_exceptions=True)
        stopping = asyncio.create_task(running.stop())
        assert await asyncio.wait_for(reader.read(), 5) == b""  # the idle connection is closed at once
        if busy is not None:
            for _ in range(50):  # turns of the loop, ample for a stop that did not wait to end
                await asyncio.sleep(0)
            assert not stopping.done() and not finished.is_set()  # the request in hand holds the stop
            release.set()
        if request_in_hand == "answered":
            response = await busy
            assert (response.status_code, response.text) == (200, "done\n")
        await stopping
        assert finished.is_set() == bool(request_in_hand)
    writer.close()
    # It stopped by itself: stop() cancels a server still running after ten seconds.
    assert running.task.done() and not running.task.cancelled()


# --- /readyz --------------------------------------------------------------------------------


async def test_readyz_follows_the_database_model_and_scheduler(sqlite_sessions: SessionFactory) -> None:
    scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
    model = {"loaded": True}
    checks = service_checks(sqlite_sessions.kw["bind"], model_loaded=lambda: model["loaded"], scheduler=scheduler)
    async with ops_endpoint(Metrics(), checks) as client:
        before = await client.get("/readyz")
        assert before.status_code == 503
        assert before.json()["not_ready"] == ["scheduler"]

        scheduler.start()
        try:
            ready = await client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {
                "ready": True,
                "checks": {"database": True, "storage": True, "model": True, "scheduler": True},
                "not_ready": [],
            }
            model["loaded"] = False
            assert (await client.get("/readyz")).json()["not_ready"] == ["model"]
            model["loaded"] = True
        finally:
            scheduler.shutdown(wait=False)
        stopping = await client.get("/readyz")
        assert stopping.status_code == 503 and stopping.json()["not_ready"] == ["scheduler"]


async def test_readyz_names_a_failing_check() -> None:
    async with ops_endpoint(Metrics(), always(database=True, model=False, scheduler=True)) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/json"
        assert response.json()["not_ready"] == ["model"]
        assert response.json()["checks"]["database"] is True


async def test_readiness_is_logged_when_it_changes_not_at_every_probe(caplog: pytest.LogCaptureFixture) -> None:
    results = {"database": True, "model": True}

    async def checks() -> dict[str, bool]:
        return dict(results)

    async with ops_endpoint(Metrics(), checks) as client:
        with caplog.at_level(logging.INFO, logger="monitor.desk.ops"):
            for _ in range(3):
                assert (await client.get("/readyz")).status_code == 200
            results["model"] = False
            for _ in range(3):
                assert (await client.get("/readyz")).status_code == 503
            results["model"] = True
            assert (await client.get("/readyz")).status_code == 200
    changes = [(r.levelno, getattr(r, "not_ready", None)) for r in caplog.records if r.msg == "readiness changed"]
    assert changes == [(logging.WARNING, ["model"]), (logging.INFO, [])]


async def test_readyz_reports_an_unreachable_database() -> None:
    engine = make_engine(UNREACHABLE_POSTGRES)
    scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
    scheduler.start()
    try:
        checks = service_checks(engine, model_loaded=lambda: True, scheduler=scheduler)
        async with ops_endpoint(Metrics(), checks) as client:
            response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["not_ready"] == ["database"]
    finally:
        scheduler.shutdown(wait=False)
        engine.dispose()


async def test_readyz_is_not_ready_when_the_checks_themselves_fail() -> None:
    async def broken() -> dict[str, bool]:
        raise RuntimeError("boom")

    async with ops_endpoint(Metrics(), broken) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["not_ready"] == ["checks"]
    assert "boom" in response.json()["error"]


async def test_database_check_gives_up_on_a_server_that_never_answers() -> None:
    # A listening socket that never accepts: the TCP handshake completes, then silence.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    engine = make_engine(f"postgresql+psycopg://x@127.0.0.1:{silent.getsockname()[1]}/x")
    try:
        check = DatabaseCheck(engine, timeout_s=0.3)
        started = time.monotonic()
        first, second = await asyncio.gather(check(), check())
        assert (first, second) == (False, False)
        assert time.monotonic() - started < 2
        assert check.last_error and "0.3s" in check.last_error
    finally:
        silent.close()  # resets the pending connection, so the worker thread ends
        engine.dispose()


# --- /metrics -------------------------------------------------------------------------------


async def test_metrics_exposes_every_family_after_the_pipeline_reports(sqlite_sessions: SessionFactory) -> None:
    metrics = Metrics(channels=["console"])
    now = datetime.now(UTC)
    metrics.poll("new_content", 0.2)
    metrics.poll("new_content", 0.4)
    metrics.poll("error", 20.0)
    metrics.article_stored(3)
    metrics.article_stored(0)
    metrics.article_processed(True, 0.05)
    metrics.article_processed(False, 0.02)
    metrics.article_processed(False, 0.03)
    metrics.embedding_batch(0.5)
    metrics.finding("country")
    metrics.finding("denial", 2)
    metrics.alert("slack", "pending")
    metrics.alert(
        "slack", "delivered", published_at=now - timedelta(hours=2), fetched_at=now - timedelta(seconds=30), now=now
    )
    metrics.job_failed("poll")
    memo = [120]
    metrics.watch_embedder_memo(lambda: memo[0])
    memo[0] = 125  # read at the scrape, not when watched

    async with ops_endpoint(metrics, always(), on_scrape=outbox_refresher(metrics, sqlite_sessions)) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = {family.name for family in text_string_to_metric_families(response.text)}
    assert families >= {
        "monitor_polls",
        "monitor_fetch_duration_seconds",
        "monitor_articles_stored",
        "monitor_articles_processed",
        "monitor_article_process_duration_seconds",
        "monitor_embedding_batch_duration_seconds",
        "monitor_findings",
        "monitor_alerts",
        "monitor_outbox_pending_alerts",
        "monitor_outbox_oldest_pending_age_seconds",
        "monitor_alert_since_published_seconds",
        "monitor_alert_since_fetched_seconds",
        "monitor_job_failures",
        "monitor_embedder_memo_texts",
    }
    found = samples(response.text)
    assert value(found, "monitor_embedder_memo_texts") == 125
    if platform.libc_ver()[0] == "glibc":  # this machine and CI; elsewhere the family has no samples
        assert value(found, "monitor_c_heap_bytes", state="in_use") > 1_000_000
        assert value(found, "monitor_c_heap_bytes", state="free") >= 0
    assert value(found, "monitor_polls_total", outcome="new_content") == 2
    assert value(found, "monitor_polls_total", outcome="error") == 1
    assert value(found, "monitor_fetch_duration_seconds_count") == 3
    assert value(found, "monitor_fetch_duration_seconds_bucket", le="0.5") == 2
    assert value(found, "monitor_articles_stored_total") == 3
    assert value(found, "monitor_articles_processed_total", relevant="true") == 1
    assert value(found, "monitor_articles_processed_total", relevant="false") == 2
    assert value(found, "monitor_embedding_batch_duration_seconds_count") == 1
    assert value(found, "monitor_findings_total", kind="denial") == 2
    assert value(found, "monitor_alerts_total", channel="slack", status="pending") == 1
    assert value(found, "monitor_alerts_total", channel="slack", status="delivered") == 1
    # Only the delivery is timed: two hours after publication, 30 s after the first fetch.
    assert value(found, "monitor_alert_since_published_seconds_sum", channel="slack") == 7200
    assert value(found, "monitor_alert_since_published_seconds_bucket", channel="slack", le="3600.0") == 0
    assert value(found, "monitor_alert_since_published_seconds_bucket", channel="slack", le="7200.0") == 1
    assert value(found, "monitor_alert_since_fetched_seconds_sum", channel="slack") == 30
    assert value(found, "monitor_alert_since_fetched_seconds_bucket", channel="slack", le="1.0") == 0
    assert value(found, "monitor_alert_since_fetched_seconds_bucket", channel="slack", le="86400.0") == 1
    assert value(found, "monitor_outbox_pending_alerts", channel="console") == 0
    assert value(found, "monitor_job_failures_total", job="poll") == 1


async def test_outbox_gauges_come_from_the_alert_rows_at_each_scrape(sqlite_sessions: SessionFactory) -> None:
    now = datetime.now(UTC)
    add_alert(sqlite_sessions, "slack", "pending", now - timedelta(minutes=10))
    add_alert(sqlite_sessions, "slack", "pending", now - timedelta(minutes=1))
    add_alert(sqlite_sessions, "email", "pending", now - timedelta(seconds=30))
    add_alert(sqlite_sessions, "email", "delivered", now - timedelta(hours=5))
    add_alert(sqlite_sessions, "console", "dead", now - timedelta(hours=5))
    metrics = Metrics(channels=["console"])

    # Scrapes are coalesced for METRICS_CACHE_S; with 0, each scrape after the last ended reads anew.
    refresher = outbox_refresher(metrics, sqlite_sessions)
    async with ops_endpoint(metrics, always(), on_scrape=refresher, metrics_fresh_s=0.0) as client:
        found = samples((await client.get("/metrics")).text)
        assert value(found, "monitor_outbox_pending_alerts", channel="slack") == 2
        assert value(found, "monitor_outbox_pending_alerts", channel="email") == 1
        assert value(found, "monitor_outbox_pending_alerts", channel="console") == 0
        assert 600 <= value(found, "monitor_outbox_oldest_pending_age_seconds", channel="slack") < 660
        assert 30 <= value(found, "monitor_outbox_oldest_pending_age_seconds", channel="email") < 90
        assert value(found, "monitor_outbox_oldest_pending_age_seconds", channel="console") == 0

        # Slack drains: its gauges fall to zero at the next scrape rather than keeping old values.
        with sqlite_sessions.begin() as session:
            for alert in session.query(Alert).filter_by(channel="slack"):
                alert.status = "delivered"
        found = samples((await client.get("/metrics")).text)
        assert value(found, "monitor_outbox_pending_alerts", channel="slack") == 0
        assert value(found, "monitor_outbox_oldest_pending_age_seconds", channel="slack") == 0
        assert value(found, "monitor_outbox_pending_alerts", channel="email") == 1


def test_refresh_outbox_reads_one_grouped_query(sqlite_sessions: SessionFactory) -> None:
    engine = sqlite_sessions.kw["bind"]
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    add_alert(sqlite_sessions, "slack", "pending", now - timedelta(seconds=90))
    add_alert(sqlite_sessions, "slack", "pending", now - timedelta(seconds=5))
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        metrics = Metrics()
        with sqlite_sessions() as session:
            metrics.refresh_outbox(pending_by_channel(session), now=now)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len([s for s in statements if "alerts" in s]) == 1
    assert metrics.registry.get_sample_value("monitor_outbox_pending_alerts", {"channel": "slack"}) == 2
    assert metrics.registry.get_sample_value("monitor_outbox_oldest_pending_age_seconds", {"channel": "slack"}) == 90


async def test_metrics_are_served_even_when_the_outbox_cannot_be_read() -> None:
    engine = make_engine(UNREACHABLE_POSTGRES)
    metrics = Metrics()
    metrics.poll("not_modified", 0.1)
    refresher = outbox_refresher(metrics, make_session_factory(engine))
    try:
        async with ops_endpoint(metrics, always(), on_scrape=refresher) as client:
            response = await client.get("/metrics")
    finally:
        engine.dispose()
    assert response.status_code == 200
    assert value(samples(response.text), "monitor_polls_total", outcome="not_modified") == 1


async def test_metrics_with_a_token_asks_for_it_and_the_probes_stay_open() -> None:
    token = "metrics-secret-0123456789"
    async with ops_endpoint(Metrics(), always(database=True), metrics_token=token) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"}):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
            assert "monitor_polls" not in refused.text and token not in refused.text
        assert (await client.head("/metrics")).status_code == 401
        allowed = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert allowed.status_code == 200 and "monitor_polls" in allowed.text
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200


def test_each_metrics_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()  # a global registry would raise "Duplicated timeseries"
    first.article_stored(2)
    assert first.registry.get_sample_value("monitor_articles_stored_total") == 2
    assert second.registry.get_sample_value("monitor_articles_stored_total") == 0
    assert REGISTRY.get_sample_value("monitor_articles_stored_total") is None


def test_alert_times_are_clamped_and_optional() -> None:
    metrics = Metrics()
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    # A publication date ahead of our clock (skew) counts as zero; no dates, no observation.
    metrics.alert("email", "delivered", published_at=now + timedelta(minutes=5), fetched_at=None, now=now)
    metrics.alert("email", "dead", published_at=now - timedelta(days=2), fetched_at=now, now=now)
    get = metrics.registry.get_sample_value
    assert get("monitor_alert_since_published_seconds_count", {"channel": "email"}) == 1
    assert get("monitor_alert_since_published_seconds_sum", {"channel": "email"}) == 0
    assert get("monitor_alert_since_fetched_seconds_count", {"channel": "email"}) is None
    assert get("monitor_alerts_total", {"channel": "email", "status": "dead"}) == 1
