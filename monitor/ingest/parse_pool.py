"""Feed parsing in worker processes (poll.parse_workers), so a large cycle uses more than one core.

feedparser is pure Python: parsed in a thread of the poller it holds the interpreter lock that
fetching and writing need. A few milliseconds per document is a large share of a cycle of
thousands of feeds. The workers are started on first use and shared by every cycle of the service
that owns the Parser; a worker that dies (killed, out of memory) only costs a fresh pool, and the
documents in flight are parsed in a thread instead, as they would be without workers.
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


class Parser:
    """parse_feed in WORKERS processes (0: in a thread); raises FeedParseError alike."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    async def parse(self, content: bytes, *, url: str, headers: Mapping[str, str]) -> ParsedFeed:
        call = partial(parse_feed, content, url=url, headers=dict(headers))
        if self.workers <= 0:
            return await asyncio.to_thread(call)
        pool = self._executor()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, call)
        except BrokenProcessPool:
            logger.warning("a parse worker died; starting new ones", extra={"url": url})
            self._discard(pool)
            return await asyncio.to_thread(call)

    def worker_pids(self) -> list[int]:
        """Process ids of the running parse workers (for measurements)."""
        with self._lock:
            processes = getattr(self._pool, "_processes", None) or {}
            return [pid for pid in processes if pid != os.getpid()]

    def shutdown(self) -> None:
        """Stop the workers (they are started again on the next parse that needs them)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the poller has threads (to_thread, database drivers) when it starts.
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=False)
