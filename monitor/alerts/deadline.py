"""An overall deadline on one send: a receiver that answers a byte at a time cannot hold it.

Client timeouts are per phase (connect, each read, each write): a server that drips one byte a
second never trips a 3 s read timeout and can hold a send for minutes. That would outlive the
claim's lease (another dispatcher sends the alert again) and hold the channel's queue. The
channel's ``timeout`` setting is therefore the deadline of the whole send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from monitor.alerts.channel import retry
from monitor.config import AlertSettings
from monitor.outbox import Delivery


def send_deadline_s(settings: AlertSettings, channel: str) -> float | None:
    """The deadline of one send on CHANNEL: its ``timeout`` setting, and a moment's grace so that a
    client's own per-phase timeout, when it applies, is the one reported (the console has none)."""
    timeout = getattr(getattr(settings, channel, None), "timeout", None)
    if not isinstance(timeout, (int, float)):
        return None
    return float(timeout) + min(1.0, 0.25 * float(timeout))


async def within_deadline(channel: str, deadline_s: float | None, send: Awaitable[Delivery]) -> Delivery:
    """SEND's outcome, or a retry if it has not ended within DEADLINE_S (it is then cancelled)."""
    if deadline_s is None:
        return await send
    try:
        async with asyncio.timeout(deadline_s) as scope:
            return await send
    except TimeoutError:
        if not scope.expired():
            raise  # a timeout of the send's own, not the deadline: the caller's business
        return retry(
            f"{channel}: not finished within {deadline_s:g}s (the send's deadline); the answer may have been lost"
        )
