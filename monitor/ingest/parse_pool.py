"""Feed parsing in worker processes (poll.parse_workers), so a large cycle uses more than one core.

feedparser is pure Python: parsed in a thread of the poller it holds the interpreter lock that
fetching and writing need. A few milliseconds per document is a large share of a cycle of
thousands of feeds. The workers are started on first use, once per process, and shared by every
cycle; a worker that dies (killed, out of memory) only costs a fresh pool, and the documents in
flight are parsed in a thread instead, as they would be without workers.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial

from monitor.ingest.parse import ParsedFeed, parse_feed

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0


async def parse_elsewhere(content: bytes, *, url: str, headers: Mapping[str, str], workers: int) -> ParsedFeed:
    """parse_feed in a worker process (workers > 0) or in a thread; raises FeedParseError alike."""
    call = partial(parse_feed, content, url=url, headers=dict(headers))
    if workers <= 0:
        return await asyncio.to_thread(call)
    pool = _executor(workers)
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, call)
    except BrokenProcessPool:
        logger.warning("a parse worker died; starting new ones", extra={"url": url})
        _discard(pool)
        return await asyncio.to_thread(call)


def worker_pids() -> list[int]:
    """Process ids of the running parse workers (for measurements)."""
    with _lock:
        processes = getattr(_pool, "_processes", None) or {}
        return [pid for pid in processes if pid != os.getpid()]


def shutdown() -> None:
    """Stop the workers (they are started again on the next parse that needs them)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def _executor(workers: int) -> ProcessPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is not None and _pool_size == workers:
            return _pool
        stale, fresh = _pool, _new_pool(workers)
        _pool, _pool_size = fresh, workers
    if stale is not None:
        stale.shutdown(wait=False)
    return fresh


def _new_pool(workers: int) -> ProcessPoolExecutor:
    # spawn, not fork: the poller has threads (to_thread, database drivers) when the pool starts.
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=False)
