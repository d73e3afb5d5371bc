"""Fetch: the one place that understands HTTP.

A response or an exception becomes a FetchOutcome; nothing here raises for network, HTTP or size
problems, so the orchestrator reads as a plain decision on `outcome.kind`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from monitor.backoff import retry_after_s
from monitor.ingest.body import BadEncoding, TooLarge, drain_small_body, read_capped

if TYPE_CHECKING:
    from monitor.config import PollSettings

logger = logging.getLogger(__name__)

# Feeds first, but accept anything: many servers label feeds text/html or text/plain.
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
# Only encodings we can inflate ourselves under the size cap (see _Decoder).
ACCEPT_ENCODING = "gzip, deflate"
# The connect phase gets its own shorter budget so that a dead host fails fast.
CONNECT_TIMEOUT_S = 10.0


class FetchKind(StrEnum):
    NEW_CONTENT = "new_content"
    NOT_MODIFIED = "not_modified"
    RETRY_LATER = "retry_later"
    GONE = "gone"
    ERROR = "error"


@dataclass(frozen=True)
class FetchLimits:
    timeout_s: float
    max_bytes: int
    max_redirects: int
    user_agent: str
    # Connections the client holds open at once, and keeps alive between requests. The poller's
    # own limits (poll.concurrency, per host) decide how many fetches run; the pool must not be
    # the tighter bound, or fetches queue in httpx and idle connections are closed and reopened.
    connections: int = 100

    @classmethod
    def from_settings(cls, poll: PollSettings) -> FetchLimits:
        return cls(
            timeout_s=poll.timeout,
            max_bytes=poll.max_bytes,
            max_redirects=poll.max_redirects,
            user_agent=poll.user_agent,
            # A full_text feed fetches its pages inside its slot, up to per_host_concurrency at once.
            connections=max(100, poll.concurrency * poll.per_host_concurrency),
        )


@dataclass(frozen=True)
class FetchOutcome:
    kind: FetchKind
    status: int | None
    content: bytes
    headers: dict[str, str]
    url: str
    moved_to: str | None
    etag: str | None
    last_modified: str | None
    retry_after_s: float | None
    max_age_s: float | None
    error: str | None
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.kind in (FetchKind.NEW_CONTENT, FetchKind.NOT_MODIFIED)


def make_http_client(limits: FetchLimits) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=_ShardedTransport(limits.connections),
        follow_redirects=True,
        max_redirects=limits.max_redirects,
        timeout=_timeout(limits),
        headers={
            "User-Agent": limits.user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
        },
    )


# Connection pools a client spreads its hosts over (see _ShardedTransport).
POOL_SHARDS = 16


class _ShardedTransport(httpx.AsyncBaseTransport):
    """Requests go to one of POOL_SHARDS connection pools, chosen by host.

    httpcore scans every connection of its pool on each request and each response close (and
    asks each idle one's socket whether the server hung up), so one pool holding the hundreds of
    connections a large poll cycle keeps open costs milliseconds of CPU per request. Split by
    host, each pool stays small. Each pool holds up to twice its share of `connections` (hosts do
    not spread evenly), all of which it may keep alive: httpcore closes every idle connection of
    a pool that holds more than its keep-alive number, which would reconnect on most requests.
    """

    def __init__(self, connections: int) -> None:
        per_pool = max(8, -(-2 * connections // POOL_SHARDS))
        self._limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
        self._ssl_context: Any = None  # built once, on the first pool: loading CA roots is slow
        self._pools: dict[int, httpx.AsyncHTTPTransport] = {}

    def _pool(self, host: str) -> httpx.AsyncHTTPTransport:
        shard = zlib.crc32(host.encode("utf-8", "surrogatepass")) % POOL_SHARDS
        pool = self._pools.get(shard)
        if pool is None:
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            pool = self._pools[shard] = httpx.AsyncHTTPTransport(verify=self._ssl_context, limits=self._limits)
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._pool(request.url.host).handle_async_request(request)

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()


def _timeout(limits: FetchLimits) -> httpx.Timeout:
    return httpx.Timeout(limits.timeout_s, connect=min(CONNECT_TIMEOUT_S, limits.timeout_s))


async def fetch_feed(
    client: httpx.AsyncClient,
    url: str,
    *,
    etag: str | None,
    last_modified: str | None,
    limits: FetchLimits,
) -> FetchOutcome:
    """GET url conditionally; every failure comes back as an outcome, never as an exception."""
    started = time.perf_counter()
    headers = {"Accept-Encoding": ACCEPT_ENCODING}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified

    async def exchange() -> FetchOutcome:
        async with client.stream("GET", url, headers=headers, timeout=_timeout(limits)) as response:
            return await _outcome(response, etag, last_modified, limits, started)

    return await _bounded(exchange, url, limits, started)


async def fetch_page(
    client: httpx.AsyncClient, url: str, *, limits: FetchLimits, allow_private: bool
) -> FetchOutcome:
    """GET an article page; unless allow_private, every hop must resolve to public addresses.

    Redirects are followed here, hop by hop, so that a public page cannot bounce the request to
    an internal one. (A host that resolves differently on the second lookup is not caught.)
    """
    if allow_private:
        return await fetch_feed(client, url, etag=None, last_modified=None, limits=limits)
    started = time.perf_counter()
    headers = {"Accept-Encoding": ACCEPT_ENCODING}

    async def exchange() -> FetchOutcome:
        current = url
        for _ in range(limits.max_redirects + 1):
            refusal = await private_address_refusal(current)
            if refusal:
                return _failure(current, refusal, started)
            async with client.stream(
                "GET", current, headers=headers, timeout=_timeout(limits), follow_redirects=False
            ) as response:
                if response.next_request is None:
                    return await _outcome(response, None, None, limits, started)
                current = str(response.next_request.url)
        raise httpx.TooManyRedirects("too many redirects")

    return await _bounded(exchange, url, limits, started)


async def private_address_refusal(url: str) -> str | None:
    """Why url must not be fetched (its host is or resolves to a non-public address), or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None  # httpx reports the invalid URL
    if not host:
        return None
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            return f"fetch: cannot resolve {host}: {exc.strerror or exc}"
        addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    for address in sorted(addresses, key=str):
        mapped = getattr(address, "ipv4_mapped", None)
        checked = mapped or address
        if not checked.is_global or checked.is_multicast:
            return f"fetch: refused {host}: {address} is a private, loopback or link-local address"
    return None


async def _bounded(
    exchange: Callable[[], Awaitable[FetchOutcome]], url: str, limits: FetchLimits, started: float
) -> FetchOutcome:
    try:
        # httpx times each phase; this bounds the whole exchange, slow-drip bodies included.
        async with asyncio.timeout(limits.timeout_s):
            return await exchange()
    except TimeoutError:
        return _failure(url, f"fetch: timed out after {limits.timeout_s:g}s", started)
    except httpx.TimeoutException:
        return _failure(url, f"fetch: timed out after {limits.timeout_s:g}s", started)
    except httpx.TooManyRedirects:
        return _failure(url, f"fetch: too many redirects (more than {limits.max_redirects})", started)
    except httpx.ConnectError as exc:
        return _failure(url, f"fetch: cannot connect: {_describe(exc)}", started)
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        return _failure(url, f"fetch: invalid URL: {_describe(exc)}", started)
    except httpx.RemoteProtocolError as exc:
        return _failure(url, f"fetch: protocol error: {_describe(exc)}", started)
    except (httpx.HTTPError, httpx.StreamError) as exc:
        return _failure(url, f"fetch: {type(exc).__name__}: {_describe(exc)}", started)


async def _outcome(
    response: httpx.Response,
    sent_etag: str | None,
    sent_last_modified: str | None,
    limits: FetchLimits,
    started: float,
) -> FetchOutcome:
    status = response.status_code
    headers = {name.lower(): value for name, value in response.headers.items()}
    kind, error = _classify(status, response.reason_phrase)
    content = b""
    if kind is FetchKind.NEW_CONTENT:
        try:
            content = await read_capped(response, headers, limits.max_bytes)
        except TooLarge:
            kind, error = FetchKind.ERROR, f"fetch: body exceeds the {limits.max_bytes} byte limit"
        except BadEncoding as exc:
            kind, error = FetchKind.ERROR, f"fetch: cannot decode body: {exc}"
    else:
        await drain_small_body(response, headers)
    retry_after = retry_after_s(headers.get("retry-after")) if status in (429, 503) else None
    if kind is FetchKind.RETRY_LATER and retry_after is not None:
        error = f"{error} (retry after {retry_after:g}s)"
    not_modified = kind is FetchKind.NOT_MODIFIED
    return FetchOutcome(
        kind=kind,
        status=status,
        content=content,
        headers=headers,
        url=str(response.url),
        moved_to=_permanent_target(response),
        # A 304 may omit the validators; the ones we sent are still the current ones.
        etag=headers.get("etag") or (sent_etag if not_modified else None),
        last_modified=headers.get("last-modified") or (sent_last_modified if not_modified else None),
        retry_after_s=retry_after,
        max_age_s=_freshness_s(headers),
        error=error,
        duration_ms=_elapsed_ms(started),
    )


def _classify(status: int, reason: str) -> tuple[FetchKind, str | None]:
    if status == 304:
        return FetchKind.NOT_MODIFIED, None
    if 200 <= status < 300:
        return FetchKind.NEW_CONTENT, None
    message = f"fetch: {status} {_reason(status, reason)}"
    if status in (429, 503):
        return FetchKind.RETRY_LATER, message
    if status == 410:
        return FetchKind.GONE, message
    if status < 400:
        # A redirect left over means httpx could not follow it (no Location, 300 choices).
        return FetchKind.ERROR, f"fetch: unexpected {status} {_reason(status, reason)}"
    return FetchKind.ERROR, message


def _reason(status: int, reason: str) -> str:
    if not reason:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "unknown status"
    return reason.lower()


def _permanent_target(response: httpx.Response) -> str | None:
    """Where the leading run of 301/308 hops ends; a later 302/307 is temporary, so not moved."""
    # Each hop's target is the URL of the response that follows it.
    arrivals = [hop.url for hop in response.history[1:]] + [response.url]
    target: str | None = None
    for hop, arrival in zip(response.history, arrivals):
        if hop.status_code not in (301, 308):
            break
        target = str(arrival)
    return target


_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


def _freshness_s(headers: dict[str, str], now: datetime | None = None) -> float | None:
    """How long the server says the response stays fresh: Cache-Control max-age, else Expires."""
    cache_control = headers.get("cache-control")
    if cache_control and ("no-store" in cache_control.lower() or "no-cache" in cache_control.lower()):
        return None
    max_age = _max_age_s(cache_control)
    if max_age is not None:
        return max_age
    expires = headers.get("expires")
    if not expires:
        return None
    try:
        when = parsedate_to_datetime(expires.strip())
    except (TypeError, ValueError, IndexError):
        return 0.0  # RFC 9111: an invalid Expires means already expired
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    # Measured from the server's own clock when it sent one, so clock skew does not count.
    try:
        origin = parsedate_to_datetime(headers["date"]) if "date" in headers else None
    except (TypeError, ValueError, IndexError):
        origin = None
    if origin is not None and origin.tzinfo is None:
        origin = origin.replace(tzinfo=UTC)
    return max(0.0, (when - (origin or now or datetime.now(UTC))).total_seconds())


def _max_age_s(cache_control: str | None) -> float | None:
    if not cache_control:
        return None
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return None
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


def _failure(url: str, error: str, started: float) -> FetchOutcome:
    return FetchOutcome(
        kind=FetchKind.ERROR,
        status=None,
        content=b"",
        headers={},
        url=url,
        moved_to=None,
        etag=None,
        last_modified=None,
        retry_after_s=None,
        max_age_s=None,
        error=error,
        duration_ms=_elapsed_ms(started),
    )


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
