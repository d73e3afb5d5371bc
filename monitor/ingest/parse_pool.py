"""Feed parsing in worker processes (poll.parse_workers), so a large cycle uses more than one core.

feedparser is pure Python: parsed in a thread of the poller it holds the interpreter lock that
fetching and writing need. A few milliseconds per document is a large share of a cycle of
thousands of feeds, and a hostile megabyte costs seconds. The workers are started on first use,
once per process, and shared by every cycle (pebble's pool, which can end one task's worker).

A document that runs past poll.parse_timeout has its worker killed; one whose worker dies (killed,
out of memory) is a parse error of that feed. Neither is ever parsed again here, in the service's
own process: the document that took a worker down would take the service down with it. The pool
starts a new worker in its place.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from collections.abc import Mapping
from functools import partial

from pebble import ProcessExpired, ProcessPool

from monitor.ingest.parse import FeedParseError, ParsedFeed, parse_feed

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_pool: ProcessPool | None = None
_pool_size = 0


async def parse_elsewhere(
    content: bytes,
    *,
    url: str,
    headers: Mapping[str, str],
    workers: int,
    timeout_s: float | None = None,
    max_entries: int | None = None,
) -> ParsedFeed:
    """parse_feed in a worker process (workers > 0) or in a thread; raises FeedParseError alike.

    timeout_s bounds the parse in a worker only: a thread cannot be stopped.
    """
    call = partial(parse_feed, content, url=url, headers=dict(headers), max_entries=max_entries)
    if workers <= 0:
        return await asyncio.to_thread(call)
    future = _executor(workers).schedule(call, timeout=timeout_s)
    try:
        return await asyncio.wrap_future(future)
    except TimeoutError:
        logger.warning("parse worker stopped: too slow", extra={"url": url, "duration_ms": (timeout_s or 0) * 1000})
        raise FeedParseError(f"parse: took longer than {timeout_s:g}s; stopped") from None
    except ProcessExpired as exc:
        logger.warning("a parse worker died on this document", extra={"url": url, "error": str(exc)})
        raise FeedParseError(f"parse: the parser process died (exit code {exc.exitcode})") from None


def worker_pids() -> list[int]:
    """Process ids of the running parse workers (for measurements)."""
    with _lock:
        # pebble keeps its workers by pid; read for measurements only.
        manager = getattr(getattr(_pool, "_pool_manager", None), "worker_manager", None)
        processes = getattr(manager, "workers", None) or {}
        return [process.pid for process in list(processes.values()) if process.pid and process.pid != os.getpid()]


def shutdown() -> None:
    """Stop the workers (they are started again on the next parse that needs them)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.stop()
        pool.join()


def _executor(workers: int) -> ProcessPool:
    global _pool, _pool_size
    with _lock:
        if _pool is not None and _pool_size == workers and _pool.active:
            return _pool
        stale, fresh = _pool, _new_pool(workers)
        _pool, _pool_size = fresh, workers
    if stale is not None:
        stale.close()  # its tasks in flight finish; it then ends its workers
    return fresh


def _new_pool(workers: int) -> ProcessPool:
    # spawn, not fork: the poller has threads (to_thread, database drivers) when the pool starts.
    return ProcessPool(max_workers=workers, context=multiprocessing.get_context("spawn"))
