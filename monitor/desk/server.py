"""Serving the web application with uvicorn on the service's own event loop.

server = await start_server(app, host, port, max_connections=32)
...
await server.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)

# A client has this long to send its request head; a slow or idle one is dropped.
REQUEST_TIMEOUT_S = 5.0
# Request heads longer than this are refused.
MAX_HEAD_BYTES = 16 * 1024


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The service owns SIGTERM and SIGINT (loop signal handlers) and stops the server itself.
        yield


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    """The listening socket, bound here so that a taken port is an OSError, not uvicorn's exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class RunningServer:
    server: uvicorn.Server
    task: asyncio.Task[None]
    sock: socket.socket

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def stop(self) -> None:
        self.server.should_exit = True
        try:
            await asyncio.wait_for(self.task, timeout=10)
        except TimeoutError:
            self.task.cancel()
        self.sock.close()


async def start_server(app: FastAPI, host: str, port: int, *, max_connections: int = 32) -> RunningServer:
    """Serve APP on HOST:PORT (0 picks a free port) until `stop()`; returns once it listens."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # Beyond this many connections at once uvicorn answers 503: idle clients cannot use up the
        # file descriptors that fetches, SQLite and SMTP need.
        limit_concurrency=max_connections,
        backlog=max_connections,
        timeout_keep_alive=REQUEST_TIMEOUT_S,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        # The service logs as JSON lines itself; uvicorn's access log would repeat every probe.
        log_config=None,
        access_log=False,
        # X-Forwarded-For is not believed: the desk decides itself whom to trust (web.trusted_proxies).
        proxy_headers=False,
        server_header=False,
        lifespan="off",
    )
    sock = _listen(host, port, max_connections)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # raises what stopped it (the port is taken, say)
            raise OSError(f"the web server on {host}:{port} stopped before it started")
        await asyncio.sleep(0.01)
    running = RunningServer(server, task, sock)
    log.info("http endpoint listening", extra={"host": host, "port": running.port})
    return running
