"""Response bodies read under a size cap: raw chunks inflated here, so that a small gzip bomb
never expands past the cap, and short unused bodies drained so their connection is reused."""

from __future__ import annotations

import asyncio
import re
import zlib

import httpx


class TooLarge(Exception):
    pass


class BadEncoding(Exception):
    pass


async def read_capped(response: httpx.Response, headers: dict[str, str], max_bytes: int) -> bytes:
    declared = _declared_length(headers)
    if declared is not None and declared > max_bytes:
        raise TooLarge
    decoder = _Decoder(headers.get("content-encoding", ""))
    body = bytearray()
    raw_total = 0
    # Raw chunks, inflated here with a bound: a small gzip bomb never expands past the cap.
    async for chunk in response.aiter_raw():
        raw_total += len(chunk)
        if raw_total > max_bytes:
            raise TooLarge
        body += decoder.decode(chunk, max_bytes - len(body))
    body += decoder.flush(max_bytes - len(body))
    return bytes(body)


# A body we do not use (a 304, an error page) is read and dropped when it is at most this long,
# so that its connection can carry the next request; a longer one costs a new connection.
DRAIN_MAX_BYTES = 64 * 1024
DRAIN_TIMEOUT_S = 1.0


async def drain_small_body(response: httpx.Response, headers: dict[str, str]) -> None:
    """Read an unused short body to its end: httpcore reuses a connection only after that.

    Best effort: a body that is long, of unknown length, slow or broken is left unread (the
    connection is closed), and never changes the outcome.
    """
    declared = _declared_length(headers)
    if response.status_code != 304 and not (declared is not None and declared <= DRAIN_MAX_BYTES):
        return
    try:
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            async for _ in response.aiter_raw():
                pass
    except (TimeoutError, httpx.HTTPError, httpx.StreamError):
        pass


def _declared_length(headers: dict[str, str]) -> int | None:
    # ASCII digits only: "²".isdigit() is true and int("²") raises.
    declared = headers.get("content-length", "").strip()
    return int(declared) if _ASCII_DIGITS.fullmatch(declared) else None


_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")


class _Decoder:
    """Content-Encoding undone incrementally, never producing more than `room` bytes."""

    def __init__(self, content_encoding: str) -> None:
        encoding = content_encoding.strip().lower()
        self._inflater: zlib._Decompress | None
        self._raw_deflate_fallback = False
        if encoding in ("", "identity"):
            self._inflater = None
        elif encoding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS)
            # Some servers send raw deflate without the zlib header the RFC asks for.
            self._raw_deflate_fallback = True
        else:
            raise BadEncoding(f"unsupported content encoding {content_encoding!r}")

    def decode(self, data: bytes, room: int) -> bytes:
        if self._inflater is None:
            if len(data) > room:
                raise TooLarge
            return data
        try:
            out = self._inflater.decompress(data, room + 1)
        except zlib.error as exc:
            if not self._raw_deflate_fallback:
                raise BadEncoding(str(exc)) from None
            self._raw_deflate_fallback = False
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            return self.decode(data, room)
        self._raw_deflate_fallback = False
        if len(out) > room:
            raise TooLarge
        return out

    def flush(self, room: int) -> bytes:
        if self._inflater is None:
            return b""
        out = self._inflater.flush()
        if len(out) > room:
            raise TooLarge
        return out
