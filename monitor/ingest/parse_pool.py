"""Feed parsing in worker processes (poll.parse_workers), so a large cycle uses more than one core.

feedparser is pure Python: parsed in a thread of the poller it holds the interpreter lock that
fetching and writing need. A few milliseconds per document is a large share of a cycle of
thousands of feeds, and a hostile megabyte costs seconds. The workers are started on first use and
shared by every cycle of the service that owns the Parser (pebble's pool, which can end one task's
worker).

A document that runs past poll.parse_timeout has its worker killed; one whose worker dies (killed,
out of memory) is a parse error of that feed. Neither is ever parsed again here, in the service's
own process: the document that took a worker down would take the service down with it. The pool
starts a new worker in its place; a pool that broke while a document only waited (an idle worker
died) is replaced, and the document is parsed in the new one.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from collections.abc import Mapping
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import TYPE_CHECKING

from pebble import ProcessExpired, ProcessPool

from monitor.ingest.parse import FeedParseError, ParsedFeed, parse_feed

if TYPE_CHECKING:
    from monitor.config import PollSettings

logger = logging.getLogger(__name__)


class Parser:
    """parse_feed in WORKERS processes (0: in a thread); raises FeedParseError alike.

    timeout_s bounds a parse in a worker only (a thread cannot be stopped); max_entries keeps the
    first entries of a document and ignores the rest.
    """

    def __init__(self, workers: int, *, timeout_s: float | None = None, max_entries: int | None = None) -> None:
        self.workers = workers
        self.timeout_s = timeout_s
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._pool: ProcessPool | None = None

    @classmethod
    def from_settings(cls, poll: PollSettings) -> Parser:
        return cls(poll.parse_workers, timeout_s=poll.parse_timeout, max_entries=poll.max_entries)

    async def parse(self, content: bytes, *, url: str, headers: Mapping[str, str]) -> ParsedFeed:
        call = partial(parse_feed, content, url=url, headers=dict(headers), max_entries=self.max_entries)
        if self.workers <= 0:
            return await asyncio.to_thread(call)
        for _ in range(2):
            pool = self._executor()
            try:
                future = pool.schedule(call, timeout=self.timeout_s)
            except RuntimeError:
                continue  # the pool broke between the check and the call: the next one is fresh
            try:
                return await asyncio.wrap_future(future)
            except BrokenProcessPool:
                # The pool failed before this document ran (pebble gives up on a pool whose idle
                # worker died): not the document's doing, so it waits for a fresh pool, once.
                logger.warning("the parse pool broke; starting a new one", extra={"url": url})
            except TimeoutError:
                timeout_s = self.timeout_s or 0.0
                logger.warning("parse worker stopped: too slow", extra={"url": url, "duration_ms": timeout_s * 1000})
                raise FeedParseError(f"parse: took longer than {timeout_s:g}s; stopped") from None
            except ProcessExpired as exc:
                logger.warning("a parse worker died on this document", extra={"url": url, "error": str(exc)})
                raise FeedParseError(f"parse: the parser process died (exit code {exc.exitcode})") from None
        raise FeedParseError("parse: the parse workers could not be started")

    def worker_pids(self) -> list[int]:
        """Process ids of the running parse workers (for measurements)."""
        with self._lock:
            # pebble keeps its workers by pid; read for measurements only.
            manager = getattr(getattr(self._pool, "_pool_manager", None), "worker_manager", None)
            processes = getattr(manager, "workers", None) or {}
            return [process.pid for process in list(processes.values()) if process.pid and process.pid != os.getpid()]

    def shutdown(self) -> None:
        """Stop the workers (they are started again on the next parse that needs them)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            pool.join()

    def _executor(self) -> ProcessPool:
        with self._lock:
            if self._pool is not None and self._pool.active:
                return self._pool
            stale = self._pool
            # spawn, not fork: the poller has threads (to_thread, database drivers) when it starts.
            context = multiprocessing.get_context("spawn")
            self._pool = fresh = ProcessPool(max_workers=self.workers, context=context)
        if stale is not None:
            stale.close()  # its tasks in flight finish; it then ends its workers
        return fresh
