"""The web application served for real: uvicorn on 127.0.0.1:0, an httpx client against it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from monitor.config import WebSettings
from monitor.desk.app import create_app
from monitor.desk.context import DeskContext
from monitor.desk.ops import ops_router
from monitor.desk.server import start_server
from monitor.metrics import Metrics
from monitor.store.db import SessionFactory, make_engine, make_session_factory

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
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=5, **client) as http:
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
