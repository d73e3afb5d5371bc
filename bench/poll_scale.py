"""Scale benchmark (not a test): one full poll cycle over N synthetic feeds.

    python bench/poll_scale.py --feeds 1000 10000 [--postgres URL] [--concurrency 100] [--parse-workers 1]

A separate process serves the feeds with a small asyncio HTTP server on 64 loopback addresses
(127.0.1.1 ...), so the per-host limit applies as it would across real sites. The mix, by feed
number: 40% new items (10 entries each), 40% unchanged (304 to the stored ETag), 10% slow (200
after --slow seconds), 5% failing with 500, 5% rate-limited (429 + Retry-After). Prints wall time,
feeds per second, CPU seconds and peak memory (resource.getrusage) of this process, and apart
from it those of the parse worker processes (poll.parse_workers, from /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HOSTS = [f"127.0.1.{n}" for n in range(1, 65)]


def kind_of(n: int) -> str:
    slot = n % 20
    if slot < 8:
        return "new"
    if slot < 16:
        return "same"
    if slot < 18:
        return "slow"
    return "fail" if slot == 18 else "limited"


def etag_of(n: int) -> str:
    return f'"feed-{n}"'


def body_of(n: int) -> bytes:
    items = "".join(
        f"<item><title>Feed {n} story {i}</title><link>https://site{n % 500}.example.com/{n}/{i}</link>"
        f'<guid isPermaLink="false">feed-{n}-{i}</guid><pubDate>Sat, 01 Mar 2025 10:{i:02d}:00 GMT</pubDate>'
        f"<description>&lt;p&gt;Paragraph {i} of feed {n}: officials said on Monday that the vote "
        f"would go ahead as planned despite the reports.&lt;/p&gt;</description></item>"
        for i in range(10)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Feed {n}</title>'
        f"<link>https://site{n}.example.com/</link><description>x</description>{items}</channel></rss>"
    ).encode()


def serve(port: int, slow_s: float, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                n = int(path.rsplit("/", 1)[1])
                kind = kind_of(n)
                if kind == "slow":
                    await asyncio.sleep(slow_s)
                if kind == "same" and headers.get("if-none-match") == etag_of(n):
                    status, extra, body = "304 Not Modified", f"ETag: {etag_of(n)}\r\n", b""
                elif kind == "fail":
                    status, extra, body = "500 Internal Server Error", "", b"oops"
                elif kind == "limited":
                    status, extra, body = "429 Too Many Requests", "Retry-After: 600\r\n", b""
                else:
                    status, extra, body = (
                        "200 OK",
                        f"ETag: {etag_of(n)}\r\nContent-Type: application/rss+xml\r\n",
                        body_of(n),
                    )
                writer.write(f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, host=HOSTS, port=port, backlog=4096)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((HOSTS[0], 0))
        return int(probe.getsockname()[1])


def _proc_usage(pid: int) -> tuple[float, float]:
    """CPU seconds and peak resident MB of a running process, from /proc (Linux)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    peak = next(
        (
            int(line.split()[1]) / 1024
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("VmHWM:")
        ),
        0.0,
    )
    return cpu, peak


def _workers_usage(parser: Any) -> tuple[float, float]:
    usage = [_proc_usage(pid) for pid in parser.worker_pids()]
    return sum(cpu for cpu, _ in usage), sum(peak for _, peak in usage)


async def cycle(database_url: str, count: int, port: int, concurrency: int, parse_workers: int) -> dict[str, float]:
    from sqlalchemy import func, insert, select

    from monitor.config import PollSettings
    from monitor.ingest.fetch import FetchLimits, make_http_client
    from monitor.ingest.parse_pool import Parser
    from monitor.ingest.refresh import refresh_feeds
    from monitor.store.db import make_engine, make_session_factory, upgrade
    from monitor.store.models import Article, Feed

    engine = make_engine(database_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    now = datetime.now(UTC)
    rows = [
        {
            "name": f"feed-{n}", "url": f"http://{HOSTS[n % len(HOSTS)]}:{port}/feed/{n}", "tags": [],
            "full_text": False, "active": True, "consecutive_errors": 0, "entries_seen": 0,
            "next_poll_at": now, "created_at": now, "failing_alerted": False,
            "etag": etag_of(n) if kind_of(n) == "same" else None,
        }
        for n in range(count)
    ]  # fmt: skip
    with sessions.begin() as session:
        session.execute(insert(Feed), rows)
    poll = PollSettings(timeout="10s", concurrency=concurrency, per_host_concurrency=4, parse_workers=parse_workers)
    parser = Parser(parse_workers)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    workers_cpu_before, _ = _workers_usage(parser)
    started = time.perf_counter()
    try:
        async with make_http_client(FetchLimits.from_settings(poll)) as client:
            results = await refresh_feeds(sessions, client, poll, parser=parser)
        wall = time.perf_counter() - started
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        workers_cpu_after, workers_peak_mb = _workers_usage(parser)
    finally:
        parser.shutdown()
    with sessions() as session:
        stored = session.scalar(select(func.count()).select_from(Article))
    engine.dispose()
    outcomes: dict[str, int] = {}
    for result in results:
        outcomes[str(result.outcome)] = outcomes.get(str(result.outcome), 0) + 1
    return {
        "feeds": len(results),
        "wall_s": round(wall, 2),
        "feeds_per_s": round(len(results) / wall, 1),
        "cpu_s": round((cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime), 2),
        "peak_rss_mb": round(cpu_after.ru_maxrss / 1024, 1),
        # The parse worker processes (poll.parse_workers), counted apart from this process.
        "workers_cpu_s": round(workers_cpu_after - workers_cpu_before, 2),
        "workers_peak_mb": round(workers_peak_mb, 1),
        "articles": stored or 0,
        **outcomes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--postgres", metavar="URL", help="also run on this (emptied!) PostgreSQL database")
    parser.add_argument("--concurrency", type=int, default=100, help="poll.concurrency")
    parser.add_argument("--parse-workers", type=int, default=1, help="poll.parse_workers")
    parser.add_argument("--slow", type=float, default=1.0, help="seconds a slow feed takes")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(port, args.slow, ready), daemon=True)
    server.start()
    ready.wait(10)
    try:
        for count in args.feeds:
            with tempfile.TemporaryDirectory() as folder:
                report = asyncio.run(
                    cycle(f"sqlite:///{folder}/bench.db", count, port, args.concurrency, args.parse_workers)
                )
            print("sqlite", report, flush=True)
            if args.postgres:
                from sqlalchemy import create_engine, text

                engine = create_engine(args.postgres)
                with engine.begin() as connection:
                    connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                    connection.execute(text("CREATE SCHEMA public"))
                engine.dispose()
                print(
                    "postgresql",
                    asyncio.run(cycle(args.postgres, count, port, args.concurrency, args.parse_workers)),
                    flush=True,
                )
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
