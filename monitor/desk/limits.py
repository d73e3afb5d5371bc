"""Login attempts counted per client address and per user name, in a sliding window; and the
sessions ended by a logout.

Kept in the process (one desk per service); replicas each count their own, which a reverse
proxy's own limits complement.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque
from collections.abc import Callable

# Keys remembered at most; those that failed least recently are forgotten first, so a flood of
# names cannot exhaust memory, nor push out the key of an address that keeps failing.
MAX_KEYS = 10_000


def address_key(address: str) -> str:
    """The limiter's key for a client ADDRESS: an IPv6 client is counted by its /64, since one
    host commonly holds a whole /64 and would otherwise get a fresh budget per address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"addr:{address}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"addr:{ip.ipv4_mapped}"
        return f"addr:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"addr:{ip}"


class LoginLimiter:
    def __init__(self, attempts: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, *keys: str) -> float:
        """Seconds until KEYS may try again; 0 when none is over the limit."""
        now = self.clock()
        wait = 0.0
        for key in keys:
            failures = self._recent(key, now)
            if len(failures) >= self.attempts:
                wait = max(wait, failures[0] + self.window_s - now)
        return wait

    def failed(self, *keys: str) -> None:
        now = self.clock()
        for key in keys:
            self._recent(key, now).append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            failures = self._failures[key] = deque()
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures


class EndedSessions:
    """Ids of sessions ended by a logout, until they would have expired anyway.

    The session lives in a signed cookie, so a copy of it (a shared computer, a leaked header)
    would stay valid until session_max_age; the desk refuses the ids listed here instead.
    """

    def __init__(self, max_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self.clock = clock
        self._ended: OrderedDict[str, float] = OrderedDict()

    def end(self, session_id: str) -> None:
        now = self.clock()
        self._ended[session_id] = now
        while self._ended and (next(iter(self._ended.values())) <= now - self.max_age_s or len(self._ended) > MAX_KEYS):
            self._ended.popitem(last=False)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._ended
