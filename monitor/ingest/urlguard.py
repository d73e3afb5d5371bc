"""The URL guard: which URLs the monitor will fetch, and which addresses it will connect to.

Two rules, both enforced where the network is touched rather than beside it:

- A URL is fetched only when the standard library and httpx read the same host and port from it
  (`strict_http_url`). A URL the two parsers disagree on is how a check is walked around: the
  check reads one host and httpx connects to another.
- A connection that is not exempt goes only to public addresses, and to the very address that
  was checked (`GuardedNetworkBackend`): the name is resolved once, by the guard, and httpcore is
  handed the address. Pools are kept per host name, so TLS still checks the certificate against
  the name, and the name httpcore resolves is the one httpx derived from the URL (IDNA 2008).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any
from urllib.parse import SplitResult, urlsplit

import httpcore
import httpx
import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Resolves a host name to the addresses a connection to it may use.
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

# The request extension that exempts one request from the address rule: a feed URL the operator
# configured (intranet feeds are fine), or any URL when poll.allow_private_addresses says so.
PRIVATE_OK = "monitor.private_ok"

_SCHEMES = {"http": 80, "https": 443}
_PORT = re.compile(r"[0-9]{1,5}")
# C0/C1 controls, DEL, lone surrogates and whitespace other than the ASCII space (which every
# client sends as %20): no parser agrees on what they mean inside a URL, and stripping the text
# around a URL would change where it ends.
_UNREADABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]|(?! )\s")

# IPv6 forms that carry an IPv4 address inside them, each of which a host may route to that
# IPv4 address (NAT64 gateways, 6to4 relays, old IPv4-compatible stacks, SIIT translators).
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
# Deprecated site-local addresses, which the standard library still calls global.
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")


# --------------------------------------------------------------------------- URLs


def strict_http_url(url: str) -> httpx.URL | None:
    """The URL as httpx will request it, or None when it is not one we may fetch.

    None for anything but http(s) with a host, for ports written other than in ASCII digits,
    and for every URL whose host or port the standard library and httpx read differently.
    """
    if _UNREADABLE.search(url.strip()):
        return None
    try:
        parts = urlsplit(url.strip())
        parsed = httpx.URL(url.strip())
    except (ValueError, httpx.InvalidURL):
        return None
    # A backslash in the authority is a path separator to browsers (WHATWG): a third reading.
    if parts.scheme.lower() not in _SCHEMES or not parts.hostname or "\\" in parts.netloc:
        return None
    port = _written_port(parts)
    if port is _BAD_PORT:
        return None
    expected_host = _ascii_host(parts.hostname)
    if expected_host is None or parsed.raw_host.decode("ascii").lower() != expected_host:
        return None
    if (parsed.port or _SCHEMES[parsed.scheme]) != (port or _SCHEMES[parts.scheme.lower()]):
        return None
    return parsed


_BAD_PORT = -1


def _written_port(parts: SplitResult) -> int | None:
    """The port as written after the host (None when absent), or _BAD_PORT."""
    hostport = parts.netloc.rpartition("@")[2]
    if hostport.startswith("["):
        _, _, after = hostport.partition("]")
        if after and not after.startswith(":"):
            return _BAD_PORT
        written = after[1:] if after else None
    else:
        _, colon, written = hostport.rpartition(":")
        written = written if colon else None
    if written is None or written == "":
        return None
    if not _PORT.fullmatch(written) or int(written) > 65535:
        return _BAD_PORT
    return int(written)


def _ascii_host(hostname: str) -> str | None:
    """The host as it goes on the wire (IDNA 2008, as httpx encodes it), lower-case."""
    host = hostname.lower()
    if host.isascii():
        return host
    try:
        return idna.encode(host).decode("ascii")
    except idna.IDNAError:
        return None


def same_origin(first: httpx.URL, second: httpx.URL) -> bool:
    return (first.scheme, first.raw_host.lower(), first.port) == (second.scheme, second.raw_host.lower(), second.port)


# --------------------------------------------------------------------------- addresses


def is_public(address: IPAddress) -> bool:
    """True when the address, and every IPv4 address it carries inside it, is global unicast."""
    return all(_plainly_public(meaning) for meaning in _meanings(address))


def _meanings(address: IPAddress) -> Iterator[IPAddress]:
    yield address
    if isinstance(address, ipaddress.IPv4Address):
        return
    embedded: list[ipaddress.IPv4Address | None] = [address.ipv4_mapped, address.sixtofour]
    if address.teredo:
        embedded += list(address.teredo)
    if any(address in network for network in (*_NAT64, _IPV4_COMPATIBLE, _IPV4_TRANSLATED)):
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    yield from (inner for inner in embedded if inner is not None)


def _plainly_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address in _SITE_LOCAL:
        return False
    return address.is_global and not address.is_multicast


def refusal(host: str, addresses: Iterable[IPAddress]) -> str | None:
    """Why a connection to host (resolved to addresses) is refused, or None.

    The text names the host as the URL gave it and nothing learnt from the network, so that a
    refused hop reads the same whatever the address, and whether or not anything listens there.
    """
    resolved = list(addresses)
    if not resolved or not all(is_public(address) for address in resolved):
        return f"fetch: refused {host}: not a public address"
    return None


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # A scope id ("fe80::1%eth0") is not part of the address.
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


class AddressRefused(httpcore.ConnectError):
    """A connection the guard refused before it was made; its text is the refusal."""


def refused_text(exc: BaseException) -> str | None:
    """The refusal behind an httpx error raised for a refused connection, else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, AddressRefused):
            return str(current)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, but every TCP connection goes to a checked public address."""

    def __init__(self, resolve: Resolver = system_resolver, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._resolve = resolve
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port, timeout)
        reason = refusal(host, addresses)
        if reason:
            raise AddressRefused(reason)
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None  # addresses is never empty here: refusal() refuses none
        raise failure

    async def _addresses(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            async with asyncio.timeout(timeout):
                return await self._resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"cannot resolve {host}: timed out") from None
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {getattr(exc, 'strerror', None) or exc}") from None

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("fetch: refused a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(
    ssl_context: Any, limits: httpx.Limits, resolve: Resolver = system_resolver
) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections go through GuardedNetworkBackend.

    httpx offers no argument for httpcore's network backend, so the pool it built is replaced
    by an identical one that has it (tests/test_urlguard.py fails if httpx stops using it).
    """
    transport = httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedNetworkBackend(resolve),
    )
    return transport
