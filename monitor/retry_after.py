"""Retry-After, read one way for every server the monitor talks to (feeds, Slack, webhooks)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# RFC 9110: delay-seconds is 1*DIGIT, and DIGIT is ASCII; "²" or "٣" are not numbers here.
_DELAY_SECONDS = re.compile(r"[0-9]+")


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from now that a Retry-After value asks for: delay-seconds or an HTTP date.

    Anything else (junk, a date that cannot exist) is None, never an exception: the header comes
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
