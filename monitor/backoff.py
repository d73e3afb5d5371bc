"""When to try again: exponential backoff with jitter, and a server's own Retry-After.

Feeds that fail, alerts that cannot be delivered and outcomes that cannot be stored all wait the
same way, each with its own base, cap and jitter.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# RFC 9110: delay-seconds is 1*DIGIT, and DIGIT is ASCII; "²" or "٣" are not numbers here.
_DELAY_SECONDS = re.compile(r"[0-9]+")


def backoff_s(
    attempt: int,
    *,
    base_s: float,
    max_s: float,
    jitter: tuple[float, float] = (1.0, 1.0),
    rng: Callable[[], float] = random.random,
) -> float:
    """base * 2**(attempt-1), capped at max, times a factor drawn from JITTER, capped again.

    Jitter spreads the retries of things that failed together (one outage) over time.
    """
    exponent = min(max(attempt, 1) - 1, 60)
    delay = min(base_s * 2.0**exponent, max_s)
    low, high = jitter
    return min(delay * (low + (high - low) * rng()), max_s)


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After (RFC 9110) as seconds from now: delay-seconds or an HTTP date.

    Read one way for every server the monitor talks to (feeds, Slack, webhooks). Anything else
    (junk, "²" or "٣", a date that cannot exist) is None, never an exception: the header comes
    from a server we do not control. Callers cap the result.
    """
    if not value:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        # float, not int: a thousand-digit value is merely huge, not an error.
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    except OverflowError:
        return None
