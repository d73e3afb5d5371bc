"""When a feed is polled next: pure arithmetic on a refresh's outcome and the feed's state.

The database is the schedule: the result is written to the feed row as next_poll_at, so a restart
resumes exactly where it was.
"""

from __future__ import annotations

import random
from typing import Literal

from monitor.backoff import backoff_s
from monitor.config import MIN_POLL_INTERVAL_S, PollSettings
from monitor.ingest.fetch import FetchKind

# Retry-After is obeyed, but a bogus far-future date must not silence a feed for months.
MAX_RETRY_AFTER_S = 86400.0
# What a refresh can end as: the fetch's outcome, or a body that was not a feed.
PARSE_ERROR: Literal["parse_error"] = "parse_error"
Outcome = FetchKind | Literal["parse_error"]


def adapt_interval_s(current_s: float | None, new_entries: int, poll: PollSettings, *, first: bool) -> float:
    """The adaptive interval after a successful poll: halved when it brought new entries, half as
    long again when it brought none, within [min_interval, max_interval]. A first poll (where every
    entry is new) only sets the starting point."""
    current = _clamp(current_s or poll.interval, poll)
    if first:
        return current
    return _clamp(current * (0.5 if new_entries > 0 else 1.5), poll)


def _clamp(seconds: float, poll: PollSettings) -> float:
    return min(max(seconds, poll.min_interval, MIN_POLL_INTERVAL_S), poll.max_interval)


def failure_delay_s(errors: int, poll: PollSettings, rng: random.Random | None = None) -> float:
    """base * 2**(errors-1), jittered by +-10% so failing feeds do not retry in lockstep."""
    draw = (rng or random).random
    return backoff_s(errors, base_s=poll.backoff_base, max_s=poll.backoff_max, jitter=(0.9, 1.1), rng=draw)


def next_poll_delay_s(
    kind: Outcome,
    *,
    interval_s: float | None,
    errors: int,
    poll: PollSettings,
    retry_after_s: float | None = None,
    max_age_s: float | None = None,
    adaptive_interval_s: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds until the next poll of a feed whose last refresh ended as `kind`."""
    if kind in (FetchKind.NEW_CONTENT, FetchKind.NOT_MODIFIED):
        if interval_s:
            return max(MIN_POLL_INTERVAL_S, interval_s)  # the operator's explicit choice wins
        if not poll.is_adaptive:
            return max(MIN_POLL_INTERVAL_S, poll.interval)  # so does a global interval written down
        delay = _clamp(adaptive_interval_s or poll.interval, poll)
        if max_age_s:
            # The server may ask for fewer polls, up to the longest interval we use.
            delay = max(delay, min(max_age_s, poll.max_interval))
        return delay
    if kind is FetchKind.GONE:
        return poll.backoff_max
    delay = failure_delay_s(errors, poll, rng)
    if kind is FetchKind.RETRY_LATER and retry_after_s is not None:
        delay = max(delay, min(retry_after_s, max(MAX_RETRY_AFTER_S, poll.backoff_max)))
    return delay
