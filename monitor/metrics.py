"""Metrics: what the service counts and times, on its own Prometheus registry.

One `Metrics` per service (built in the composition root, passed down), each with its own
CollectorRegistry: nothing is registered globally, so tests and several services in one process
never collide. The pipeline calls the small typed methods below; `/metrics` (monitor/desk/ops.py)
serialises `metrics.registry`.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor.store.models import AlertStatus

# Fetches are bounded by poll.timeout (20 s by default); the tail is what matters.
FETCH_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
# One article's analysis, or one embedding batch: milliseconds on a warm model, seconds when not.
ANALYSIS_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# From an article's publication (or first fetch) to its alert: one second to a day.
ALERT_LATENCY_BUCKETS_S = (
    1.0,
    5.0,
    15.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
    7200.0,
    21600.0,
    43200.0,
    86400.0,
)


def _seconds_between(start: datetime | None, end: datetime) -> float | None:
    """END - START in seconds, never negative (a publication date ahead of our clock is skew)."""
    if start is None:
        return None
    if start.tzinfo is None:  # the store hands out aware datetimes; be lenient with callers
        start = start.replace(tzinfo=UTC)
    return max(0.0, (end - start).total_seconds())


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def c_heap_reader() -> Callable[[], dict[str, float]] | None:
    """What glibc's malloc holds, read by mallinfo2 (glibc 2.33 and later): bytes in use, and bytes
    free in its arenas, kept for reuse rather than returned. The model runtime, SQLite and the
    parsers allocate there, out of Python's sight; RSS alone cannot tell a leak (in use grows) from
    fragmentation (free grows). None where the C library is not glibc."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError):
        return None
    mallinfo2.restype = _MallInfo2

    def read() -> dict[str, float]:
        info = mallinfo2()
        return {"in_use": float(info.uordblks + info.hblkhd), "free": float(info.fordblks)}

    return read


class Metrics:
    """The service's metrics, on a registry of their own."""

    def __init__(self, *, channels: Iterable[str] = (), registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter(
            "monitor_polls_total",
            "Feed polls, by outcome (new_content, not_modified, error, ...).",
            ["outcome"],
            registry=r,
        )
        self.fetch_duration = Histogram(
            "monitor_fetch_duration_seconds",
            "Time to fetch (and parse) one feed.",
            buckets=FETCH_BUCKETS_S,
            registry=r,
        )
        self.articles_stored = Counter(
            "monitor_articles_stored_total", "Articles stored for the first time.", registry=r
        )
        self.articles_processed = Counter(
            "monitor_articles_processed_total",
            "Articles analysed, by relevance to the seed corpus.",
            ["relevant"],
            registry=r,
        )
        self.article_duration = Histogram(
            "monitor_article_process_duration_seconds",
            "Time to analyse one article.",
            buckets=ANALYSIS_BUCKETS_S,
            registry=r,
        )
        self.embedding_duration = Histogram(
            "monitor_embedding_batch_duration_seconds",
            "Time to embed one batch of texts.",
            buckets=ANALYSIS_BUCKETS_S,
            registry=r,
        )
        self.embedder_memo = Gauge(
            "monitor_embedder_memo_texts",
            "Texts whose vectors the embedder keeps in memory (emptied when it reaches its limit).",
            registry=r,
        )
        self.c_heap = Gauge(
            "monitor_c_heap_bytes",
            "The C heap (glibc malloc): bytes in use, and bytes free in its arenas kept for reuse.",
            ["state"],
            registry=r,
        )
        if (read_heap := c_heap_reader()) is not None:
            for state in ("in_use", "free"):
                self.c_heap.labels(state).set_function(lambda state=state: read_heap()[state])  # type: ignore[misc]
        self.findings = Counter("monitor_findings_total", "Findings (something new), by kind.", ["kind"], registry=r)
        self.alerts = Counter(
            "monitor_alerts_total",
            "Alert delivery attempts, by channel and resulting status.",
            ["channel", "status"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "monitor_outbox_pending_alerts",
            "Alerts waiting in the outbox, by channel.",
            ["channel"],
            registry=r,
        )
        self.outbox_oldest_age = Gauge(
            "monitor_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending alert, by channel (0 when none is pending).",
            ["channel"],
            registry=r,
        )
        self.published_to_alert = Histogram(
            "monitor_alert_since_published_seconds",
            "From an article's publication date to the delivery of its alert.",
            ["channel"],
            buckets=ALERT_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.fetched_to_alert = Histogram(
            "monitor_alert_since_fetched_seconds",
            "From an article's first fetch to the delivery of its alert.",
            ["channel"],
            buckets=ALERT_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.job_failures = Counter(
            "monitor_job_failures_total",
            "Scheduler jobs that ended in an exception, by job.",
            ["job"],
            registry=r,
        )
        # Channels whose outbox gauges exist; a channel that empties is set to 0, not dropped.
        self._outbox_channels: set[str] = set()
        for channel in channels:
            self._set_outbox(channel, 0, 0.0)

    # --- ingest ------------------------------------------------------------------------------

    def poll(self, outcome: str, duration_s: float) -> None:
        """One feed refreshed: OUTCOME is the refresh's outcome (a FetchKind or "parse_error")."""
        self.polls.labels(outcome=str(outcome)).inc()
        self.fetch_duration.observe(max(0.0, duration_s))

    def article_stored(self, n: int = 1) -> None:
        if n > 0:
            self.articles_stored.inc(n)

    # --- analysis ----------------------------------------------------------------------------

    def article_processed(self, relevant: bool, duration_s: float) -> None:
        self.articles_processed.labels(relevant="true" if relevant else "false").inc()
        self.article_duration.observe(max(0.0, duration_s))

    def embedding_batch(self, duration_s: float) -> None:
        self.embedding_duration.observe(max(0.0, duration_s))

    def watch_embedder_memo(self, size: Callable[[], int]) -> None:
        """Read the memo's size from SIZE at every scrape."""
        self.embedder_memo.set_function(size)

    def finding(self, kind: str, n: int = 1) -> None:
        if n > 0:
            self.findings.labels(kind=kind).inc(n)

    # --- alerts ------------------------------------------------------------------------------

    def alert(
        self,
        channel: str,
        status: str,
        published_at: datetime | None = None,
        fetched_at: datetime | None = None,
        now: datetime | None = None,
    ) -> None:
        """One delivery attempt ended with STATUS (delivered, pending = will retry, dead).

        On delivery the article's publication and first-fetch times give the time-to-alert.
        """
        self.alerts.labels(channel=channel, status=status).inc()
        if status != AlertStatus.DELIVERED:
            return
        now = now or datetime.now(UTC)
        since_published = _seconds_between(published_at, now)
        if since_published is not None:
            self.published_to_alert.labels(channel=channel).observe(since_published)
        since_fetched = _seconds_between(fetched_at, now)
        if since_fetched is not None:
            self.fetched_to_alert.labels(channel=channel).observe(since_fetched)

    def refresh_outbox(self, pending: Iterable[tuple[str, int, datetime]], now: datetime | None = None) -> None:
        """Outbox depth and oldest pending age per channel, from (channel, depth, oldest) rows."""
        now = now or datetime.now(UTC)
        seen: set[str] = set()
        for channel, depth, oldest in pending:
            seen.add(channel)
            self._set_outbox(channel, depth, _seconds_between(oldest, now) or 0.0)
        for channel in self._outbox_channels - seen:
            self._set_outbox(channel, 0, 0.0)

    def _set_outbox(self, channel: str, depth: int, oldest_age_s: float) -> None:
        self._outbox_channels.add(channel)
        self.outbox_pending.labels(channel=channel).set(depth)
        self.outbox_oldest_age.labels(channel=channel).set(oldest_age_s)

    # --- service -----------------------------------------------------------------------------

    def job_failed(self, job: str) -> None:
        self.job_failures.labels(job=job).inc()
