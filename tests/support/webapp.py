"""The web application served for real: uvicorn on 127.0.0.1:0, an httpx client against it."""

from __future__ import annotations

import asyncio
import queue
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from monitor.config import WebSettings
from monitor.desk.app import create_app
from monitor.desk.context import DeskContext
from monitor.desk.ops import ops_router
from monitor.desk.server import start_server
from monitor.metrics import Metrics
from monitor.outbox import AlertContent, FindingView, outbox_rows
from monitor.store.db import SessionFactory, make_engine, make_session_factory
from monitor.store.models import Article, ArticleStatus, Feed, Finding, KnownFact
from support.passwords import quick_hash as hash_password
from support.receivers import ssl_context

Checks = Callable[[], Awaitable[Mapping[str, bool]]]


async def _ready() -> dict[str, bool]:
    return {"database": True}


@asynccontextmanager
async def serve(
    app: FastAPI, *, max_connections: int = 32, request_timeout_s: float = 5.0, **client: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """APP on a free port for the block; a client whose base_url points at it."""
    server = await start_server(
        app, "127.0.0.1", 0, max_connections=max_connections, request_timeout_s=request_timeout_s
    )
    try:
        base_url = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=5, verify=ssl_context(), **client) as http:
            yield http
    finally:
        await server.stop()


@asynccontextmanager
async def ops_endpoint(
    metrics: Metrics | None = None,
    checks: Checks | None = None,
    *,
    sessions: SessionFactory | None = None,
    max_connections: int = 32,
    request_timeout_s: float = 5.0,
    **options: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """The operations routes in the application the service builds (desk off unless SESSIONS)."""
    engine = None
    if sessions is None:
        engine = make_engine("sqlite://")
        sessions = make_session_factory(engine)
    ops = ops_router(metrics or Metrics(), checks or _ready, **options)
    app = create_app(DeskContext(WebSettings(enabled=False), sessions), ops=ops)
    try:
        async with serve(app, max_connections=max_connections, request_timeout_s=request_timeout_s) as client:
            yield client
    finally:
        if engine is not None:
            engine.dispose()


# --- the desk, with one analyst ---------------------------------------------------------------

ANALYST = "ana"
PASSWORD = "correct horse battery staple"
_HASHES: dict[str, str] = {}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def password_hash(password: str = PASSWORD) -> str:
    """An argon2 hash of PASSWORD, made once per run (hashing is slow on purpose)."""
    if password not in _HASHES:
        _HASHES[password] = hash_password(password)
    return _HASHES[password]


def desk_app(sessions: SessionFactory, *, metrics_token: str | None = None, **web: Any) -> FastAPI:
    """The application the service builds: the desk on SESSIONS with one analyst (ANALYST,
    PASSWORD) unless WEB says otherwise, and the operations routes."""
    settings = WebSettings.model_validate(
        {"users": [{"name": ANALYST, "password_hash": password_hash()}], "session_secret": "s" * 32, **web}
    )
    ops = ops_router(Metrics(), _ready, metrics_token=metrics_token)
    return create_app(DeskContext(settings, sessions), ops=ops)


def csrf_in(html: str) -> str:
    """The CSRF token a desk page puts in its forms."""
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def log_in(
    client: httpx.AsyncClient, user: str = ANALYST, password: str = PASSWORD, next: str = "/"
) -> httpx.Response:
    """Log in as a browser does: the login page for its CSRF token, then the form."""
    page = await client.get("/login")
    form = {"username": user, "password": password, "csrf_token": csrf_in(page.text), "next": next}
    return await client.post("/login", data=form)


# --- rows for the pages to show -----------------------------------------------------------------

# Markup a stranger may put in a feed's name, an article's title or text: shown, never run.
HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)><b>bold</b>"


def desk_rows(sessions: SessionFactory, text: str = HOSTILE) -> dict[str, int]:
    """A feed, an article that alerted (with a finding, a known fact and outbox rows) and one
    judged off-topic, each carrying TEXT where a stranger could write; their ids."""
    now = datetime.now(UTC)
    with sessions.begin() as session:
        feed = Feed(name=f"Wire {text}", url="https://feeds.example/rss", next_poll_at=now, last_error=text)
        session.add(feed)
        session.flush()
        article = Article(
            feed_id=feed.id,
            entry_key="alerted",
            url="https://news.example/alerted",
            title=f"North Korea {text}",
            text=f"Officials said North Korea targeted voters. {text}",
            published_at=now,
            status=ArticleStatus.PROCESSED,
            processed_at=now,
            relevance=0.8,
            relevant=True,
        )
        quiet = Article(
            feed_id=feed.id,
            entry_key="quiet",
            url="https://news.example/quiet",
            title=f"Weather {text}",
            text="Sunny.",
            status=ArticleStatus.PROCESSED,
            processed_at=now,
            relevance=0.1,
            relevant=False,
        )
        session.add_all([article, quiet])
        session.flush()
        fact = KnownFact(
            kind="country", value=f"Iran {text}", evidence=text, source_kind="article", source_ref=article.url
        )
        session.add(fact)
        session.flush()
        finding = Finding(
            article_id=article.id,
            kind="country",
            value="North Korea",
            evidence=f"Officials said North Korea targeted voters. {text}",
            closest_fact_id=fact.id,
            closest_value=fact.value,
            similarity=0.4,
            reason=text,
        )
        session.add(finding)
        content = AlertContent(
            article_title=article.title,
            article_url=article.url,
            feed=feed.name,
            published=now,
            relevance=0.8,
            findings=[FindingView(kind="country", value="North Korea", evidence=finding.evidence)],
        )
        session.add_all(outbox_rows(content, ["slack", "email"], article_id=article.id))
        session.flush()
        return {"feed": feed.id, "article": article.id, "quiet": quiet.id, "fact": fact.id, "finding": finding.id}


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """APP served by uvicorn on an event loop in a thread of its own, for synchronous clients
    (schemathesis, requests); yields the base URL."""
    started: queue.Queue[str | BaseException] = queue.Queue()
    stop = threading.Event()

    async def run() -> None:
        try:
            server = await start_server(app, "127.0.0.1", 0)
        except BaseException as exc:
            started.put(exc)
            raise
        started.put(f"http://127.0.0.1:{server.port}")
        await asyncio.to_thread(stop.wait)
        await server.stop()

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    first = started.get(timeout=30)
    if isinstance(first, BaseException):
        raise first
    try:
        yield first
    finally:
        stop.set()
        thread.join(timeout=15)
