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

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

# A client has this long to send its request head; a slow or idle one is dropped.
REQUEST_TIMEOUT_S = 5.0
# Request heads longer than this are refused.
MAX_HEAD_BYTES = 16 * 1024


# What a connection over the cap gets before it is closed: the old endpoint's answer, with a hint.
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 5\r\nRetry-After: 1\r\nConnection: close\r\n\r\nbusy\n"
)


def _bounded_protocol(max_connections: int, request_timeout_s: float, idle: asyncio.Event) -> type[H11Protocol]:
    """uvicorn's h11 protocol with two limits it lacks. Connections beyond MAX_CONNECTIONS are
    answered 503 and closed at once (uvicorn holds them open and answers 503 only to a request).
    A client that sends nothing within REQUEST_TIMEOUT_S of connecting, or that has not sent a
    whole request (head and body) within REQUEST_TIMEOUT_S of its first byte, is dropped (uvicorn
    waits for ever for both). So a flood of idle or slow clients holds at most MAX_CONNECTIONS
    descriptors, each for a few seconds, and /healthz answers again after it. IDLE is set whenever
    the last open connection closes: the server's shutdown waits on it."""

    class BoundedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        # Whether the current request has begun to arrive (its deadline then runs from there).
        _receiving = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.write(_BUSY)
                transport.close()
                return
            self._arm_deadline()

        def data_received(self, data: bytes) -> None:
            if not self._receiving and self.conn.their_state is h11.IDLE:
                # A kept-alive connection may have idled a while before this request: it gets
                # the whole timeout from its first byte.
                self._receiving = True
                self._arm_deadline()
            super().data_received(data)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._receiving = False  # uvicorn's keep-alive timeout covers the idle time until the next

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)
            if not self.connections:
                idle.set()

        def _arm_deadline(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(request_timeout_s, self._overdue)

        def _overdue(self) -> None:
            # IDLE: no whole request head yet; SEND_BODY: its body still arriving (the desk takes
            # small forms, not uploads). A request being answered (DONE) is never cut short.
            if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
                self.transport.close()

    return BoundedH11Protocol


class _Server(uvicorn.Server):
    """uvicorn's server, stopped by `exit()` at once. uvicorn looks at should_exit every 0.1 s, then
    sleeps 0.1 s before it looks (every 0.1 s again) for open connections and requests to be done:
    a fifth of a second for each stop, however idle the server."""

    def __init__(self, config: uvicorn.Config, idle: asyncio.Event) -> None:
        super().__init__(config)
        self._idle = idle
        self._exit = asyncio.Event()
        self._started = asyncio.Event()

    def exit(self) -> None:
        self.should_exit = True
        self._exit.set()

    async def wait_started(self) -> None:
        await self._started.wait()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The service owns SIGTERM and SIGINT (loop signal handlers) and stops the server itself.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self._started.set()

    async def main_loop(self) -> None:
        # on_tick refreshes the Date header when its counter is a multiple of ten (once a second in
        # uvicorn's loop); waking once a second keeps that, and exit() wakes it at once.
        ticks = 0
        while not await self.on_tick(ticks):
            ticks += 10
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._exit.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's steps, each waiting for what it needs instead of polling: stop accepting, ask
        # every connection to close (an idle one closes now, a busy one after its answer), wait for
        # the requests being answered, then for the last connection to go.
        for server in self.servers:
            server.close()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()
        while state.tasks:
            await asyncio.wait(set(state.tasks))
        while state.connections:
            self._idle.clear()
            await self._idle.wait()
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    """The listening socket, bound here so that a taken port is an OSError, not uvicorn's exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets whose proto says TCP; without it every
    # keep-alive answer waits about 40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
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
    server: _Server
    task: asyncio.Task[None]
    sock: socket.socket

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def stop(self) -> None:
        self.server.exit()
        try:
            await asyncio.wait_for(self.task, timeout=10)
        except TimeoutError:
            self.task.cancel()
        self.sock.close()


async def start_server(
    app: FastAPI, host: str, port: int, *, max_connections: int = 32, request_timeout_s: float = REQUEST_TIMEOUT_S
) -> RunningServer:
    """Serve APP on HOST:PORT (0 picks a free port) until `stop()`; returns once it listens."""
    idle = asyncio.Event()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # Beyond max_connections at once a connection is answered 503 and closed (the protocol
        # above): idle clients cannot use up the file descriptors that fetches, SQLite and SMTP
        # need. uvicorn's own limit, one higher, then never answers a connection within the cap.
        http=_bounded_protocol(max_connections, request_timeout_s, idle),
        limit_concurrency=max_connections + 1,
        backlog=max_connections,
        timeout_keep_alive=request_timeout_s,
        # h11 explicitly (the protocol above): its head size limit holds whatever else is installed.
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
    server = _Server(config, idle)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    started = asyncio.create_task(server.wait_started())
    try:
        await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        started.cancel()
    if not server.started:
        await task  # raises what stopped it (the port is taken, say)
        raise OSError(f"the web server on {host}:{port} stopped before it started")
    running = RunningServer(server, task, sock)
    log.info("http endpoint listening", extra={"host": host, "port": running.port})
    return running
