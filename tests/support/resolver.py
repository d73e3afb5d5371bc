"""A name resolver the test controls, installed as socket.getaddrinfo for the whole process.

This is a stand-in where no real part can run: the system resolver cannot be pointed at a test
DNS server without changing the machine, and a rebinding attack needs a name whose answer changes
between two lookups. Everything above getaddrinfo (asyncio, anyio, httpcore, httpx, the guard)
is the real code. Names not scripted here, and IP literals, go to the real getaddrinfo.

    resolver = ScriptedResolver(monkeypatch)
    resolver.answer("rebind.test", "93.184.216.34", "127.0.0.1")  # first lookup, then every later one
    ...
    assert resolver.lookups("rebind.test") == 1
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from typing import Any

import pytest


class ScriptedResolver:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._real = socket.getaddrinfo
        self._answers: dict[str, list[str]] = {}
        self._lookups: Counter[str] = Counter()
        self._lock = threading.Lock()
        monkeypatch.setattr(socket, "getaddrinfo", self._getaddrinfo)

    def answer(self, name: str, *addresses: str) -> None:
        """The n-th lookup of name gets the n-th address; every later one gets the last."""
        with self._lock:
            self._answers[name.lower()] = list(addresses)

    def lookups(self, name: str) -> int:
        with self._lock:
            return self._lookups[name.lower()]

    def _getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        # The C resolver is handed the standard library's IDNA 2003 encoding of a Unicode name.
        name = host.decode("ascii") if isinstance(host, bytes) else str(host)
        if not name.isascii():
            name = name.encode("idna").decode("ascii")
        with self._lock:
            script = self._answers.get(name.lower())
            if script is None:
                return self._real(host, port, *args, **kwargs)
            self._lookups[name.lower()] += 1
            address = script[min(self._lookups[name.lower()], len(script)) - 1]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockaddr = (address, int(port or 0), 0, 0) if family == socket.AF_INET6 else (address, int(port or 0))
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]
