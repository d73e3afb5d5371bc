"""The schedule's arithmetic, table by table: no database, no network, no clock."""

from __future__ import annotations

import random
from typing import Any

import pytest

from monitor.config import PollSettings
from monitor.ingest.fetch import FetchKind
from monitor.ingest.schedule import MAX_RETRY_AFTER_S, adapt_interval_s, failure_delay_s, next_poll_delay_s

# interval written down: a fixed schedule.
FIXED = PollSettings(interval="15m", backoff_base="60s", backoff_max="6h")
# No interval written down: the adaptive schedule between 5 minutes and 2 hours.
ADAPTIVE = PollSettings(min_interval="5m", max_interval="2h", backoff_max="6h")


@pytest.mark.parametrize(
    ("poll", "kind", "state", "low", "high"),
    [
        # A feed's explicit interval is honoured as given, down to 1 s, even over a server's max-age.
        (FIXED, FetchKind.NEW_CONTENT, {"interval_s": 0.2}, 1, 1),
        (ADAPTIVE, FetchKind.NEW_CONTENT, {"interval_s": 1}, 1, 1),
        (FIXED, FetchKind.NEW_CONTENT, {"interval_s": 120, "max_age_s": 3600}, 120, 120),
        # A written poll.interval is too; a server's max-age does not stretch it.
        (FIXED, FetchKind.NOT_MODIFIED, {}, 900, 900),
        (FIXED, FetchKind.NEW_CONTENT, {"max_age_s": 3600}, 900, 900),
        (PollSettings(interval=1), FetchKind.NOT_MODIFIED, {}, 1, 1),
        # Adaptive: the feed's current interval, which a server's max-age may stretch up to the maximum.
        (ADAPTIVE, FetchKind.NOT_MODIFIED, {"adaptive_interval_s": 7200}, 7200, 7200),
        (ADAPTIVE, FetchKind.NEW_CONTENT, {"adaptive_interval_s": 600, "max_age_s": 3600}, 3600, 3600),
        (ADAPTIVE, FetchKind.NEW_CONTENT, {"adaptive_interval_s": 600, "max_age_s": 10**6}, 7200, 7200),
        (ADAPTIVE, FetchKind.NEW_CONTENT, {"adaptive_interval_s": 60}, 300, 300),
        # Gone: as rarely as a failing feed at its worst, never dropped.
        (FIXED, FetchKind.GONE, {"interval_s": 60}, 21600, 21600),
        # Failures back off: base * 2**(errors-1), +-10%, capped.
        (FIXED, FetchKind.ERROR, {"errors": 1}, 54, 66),
        (FIXED, "parse_error", {"errors": 2}, 108, 132),
        (FIXED, FetchKind.ERROR, {"errors": 10**6}, 0.9 * 21600, 21600),
        # A server's Retry-After is obeyed when longer than the backoff, up to a day.
        (FIXED, FetchKind.RETRY_LATER, {"errors": 1, "retry_after_s": 10}, 54, 66),
        (FIXED, FetchKind.RETRY_LATER, {"errors": 1, "retry_after_s": 50000}, 50000, 50000),
        (FIXED, FetchKind.RETRY_LATER, {"errors": 1, "retry_after_s": 10**9}, MAX_RETRY_AFTER_S, MAX_RETRY_AFTER_S),
    ],
)
def test_next_poll_delay(poll: PollSettings, kind: Any, state: dict[str, Any], low: float, high: float) -> None:
    arguments = {"interval_s": None, "errors": 0, **state}
    delays = {next_poll_delay_s(kind, poll=poll, rng=random.Random(seed), **arguments) for seed in range(20)}
    assert all(low <= delay <= high for delay in delays), sorted(delays)


@pytest.mark.parametrize(
    ("current_s", "new_entries", "first", "expected"),
    [
        (None, 5, True, 900),  # a first poll (every entry new) only sets the starting point
        (900, 1, False, 450),  # new entries halve it
        (400, 3, False, 300),  # never below min_interval
        (900, 0, False, 1350),  # none make it half as long again
        (7000, 0, False, 7200),  # never above max_interval
    ],
)
def test_adaptive_interval(current_s: float | None, new_entries: int, first: bool, expected: float) -> None:
    assert adapt_interval_s(current_s, new_entries, ADAPTIVE, first=first) == expected


def test_failure_jitter_spreads_retries_both_ways() -> None:
    delays = [failure_delay_s(3, FIXED, random.Random(seed)) for seed in range(200)]
    assert min(delays) < 240 < max(delays)  # around base * 2**2, not always on the same side
    assert all(216 <= delay <= 264 for delay in delays)
