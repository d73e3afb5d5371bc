"""Properties of the functions that turn untrusted text into URLs: for any input, no control
character or bidi override survives into a URL kept or shown, and no private target passes."""

from __future__ import annotations

import asyncio
import ipaddress
import string
import unicodedata
from typing import Any
from urllib.parse import urlsplit

import httpcore
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.alerts.escaping import safe_url
from monitor.ingest.parse import canonical_url
from monitor.ingest.urlguard import AddressRefused, GuardedNetworkBackend, is_public, strict_http_url

# Hundreds of generated inputs per property: the full suite runs them, the fast tier does not.
pytestmark = pytest.mark.slow

# Characters that disguise or drive: controls, format characters (bidi overrides, zero widths),
# line and paragraph separators, surrogates.
DISGUISING = {"Cc", "Cf", "Zl", "Zp", "Cs"}
PROPERTIES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

hostile_chars = st.sampled_from(
    ["\u202e", "\u202d", "\u2066", "\u200b", "\u200f", "\x1b", "\x07", "\x00", "\r", "\n", "\t", "\u2028", "\ufeff",
     "\u0660", "\u00b2", "+", "-", "\\", "@", ":", "[", "]", "%", "#", "?", "/", " ", "ß", "ſ", "K", "．", "。"]
)  # fmt: skip
hosts = st.one_of(
    st.sampled_from(
        [
            "example.com",
            "127.0.0.1",
            "localhost",
            "[::1]",
            "10.0.0.1",
            "169.254.169.254",
            "straße.de",
            "[64:ff9b::7f00:1]",
        ]
    ),
    st.text(alphabet=string.ascii_lowercase + string.digits + ".-", min_size=1, max_size=20),
)
ports = st.one_of(
    st.none(),
    st.integers(0, 70000).map(str),
    st.text(alphabet="0123456789+-\u0660\u0669\u00b2 ", min_size=1, max_size=6),
)
paths = st.lists(
    st.one_of(hostile_chars, st.characters(), st.text(alphabet=string.ascii_letters, max_size=5)), max_size=12
).map("".join)


@st.composite
def urlish(draw: st.DrawFn) -> str:
    """URL-shaped text with hostile characters where parsers are weakest."""
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "javascript", "file", "", "http:"]))
    host = draw(hosts)
    port = draw(ports)
    userinfo = draw(st.one_of(st.just(""), st.text(alphabet="ab@:\\", max_size=4).map(lambda u: u + "@")))
    noise = draw(st.lists(hostile_chars, max_size=3).map("".join))
    where = draw(st.integers(0, 3))
    parts = [f"{scheme}://", userinfo, host, f":{port}" if port is not None else "", "/" + draw(paths)]
    parts[where] = parts[where] + noise
    return "".join(parts)


any_url = st.one_of(urlish(), st.text(max_size=80))


def disguising(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in DISGUISING]


@PROPERTIES
@given(any_url)
def test_a_url_shown_to_people_is_plain_ascii_http(text: str) -> None:
    shown = safe_url(text)
    if shown is not None:
        assert shown.isascii() and shown.isprintable(), shown
        assert not disguising(shown)
        assert not set(shown) & set(" <>|\"'`")
        assert urlsplit(shown).scheme in ("http", "https")


@PROPERTIES
@given(any_url, st.one_of(st.none(), st.just("https://news.example.com/feed/")))
def test_a_canonical_url_is_readable_one_way_and_stable(text: str, base: str | None) -> None:
    url = canonical_url(text, base)
    if url is None:
        return
    assert not [c for c in url if unicodedata.category(c) in {"Cc", "Cs"}]
    assert strict_http_url(url) is not None
    assert canonical_url(url) == url


@PROPERTIES
@given(any_url)
def test_an_accepted_url_names_one_host_and_port_to_every_parser(text: str) -> None:
    parsed = strict_http_url(text)
    if parsed is None:
        return
    parts = urlsplit(text.strip())
    assert parts.port == parsed.port or (parsed.port is None and parts.port in (None, 80, 443))
    assert parsed.raw_host.decode("ascii").isascii()


private_v4 = st.one_of(
    st.ip_addresses(v=4, network="127.0.0.0/8"),
    st.ip_addresses(v=4, network="10.0.0.0/8"),
    st.ip_addresses(v=4, network="169.254.0.0/16"),
    st.ip_addresses(v=4, network="192.168.0.0/16"),
    st.ip_addresses(v=4, network="100.64.0.0/10"),
    st.ip_addresses(v=4, network="0.0.0.0/8"),
)


def embeddings(inner: ipaddress.IPv4Address) -> list[ipaddress.IPv6Address]:
    value = int(inner)
    return [
        ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | value),
        ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b:1::")) | value),
        ipaddress.IPv6Address(int(ipaddress.IPv6Address("2002::")) | (value << 80)),
        ipaddress.IPv6Address(int(ipaddress.IPv6Address("::ffff:0:0")) | value),
        ipaddress.IPv6Address(int(ipaddress.IPv6Address("::ffff:0:0:0")) | value),
        ipaddress.IPv6Address(value),
    ]


@PROPERTIES
@given(private_v4)
def test_a_private_ipv4_address_is_private_in_every_ipv6_disguise(address: ipaddress.IPv4Address) -> None:
    assert not is_public(address)
    for disguise in embeddings(address):
        assert not is_public(disguise), disguise


@PROPERTIES
@given(st.ip_addresses())
def test_a_public_address_is_global_unicast(address: Any) -> None:
    if is_public(address):
        assert address.is_global and not address.is_multicast


class _NeverConnects(httpcore.AsyncNetworkBackend):
    """Stands in for the network (the property is about what reaches it): records and refuses."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        self.asked.append(host)
        raise httpcore.ConnectError("no network in this test")


@PROPERTIES
@given(st.lists(st.ip_addresses(), min_size=1, max_size=4), st.text(alphabet=string.ascii_lowercase + ".", min_size=1))
def test_no_private_target_passes_the_backend(answers: list[Any], name: str) -> None:
    async def resolve(host: str, port: int) -> list[Any]:
        return answers

    inner = _NeverConnects()
    backend = GuardedNetworkBackend(resolve, inner)

    async def attempt() -> None:
        await backend.connect_tcp(name, 80, timeout=1)

    if all(is_public(answer) for answer in answers):
        with pytest.raises(httpcore.ConnectError):
            asyncio.run(attempt())
        assert inner.asked and {ipaddress.ip_address(host) for host in inner.asked} <= set(answers)
    else:
        with pytest.raises(AddressRefused):
            asyncio.run(attempt())
        assert inner.asked == []
