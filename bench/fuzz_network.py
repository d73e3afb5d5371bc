"""Bounded fuzzing of what reads the network: fetch-outcome classification, feed parsing and
normalisation, and the URL guard (hypothesis, with random inputs and mutated real documents).

    python bench/fuzz_network.py --seconds 120            # every target, split evenly
    python bench/fuzz_network.py --seconds 60 --target parse

Each target is a property that must hold for any input; the script runs rounds of random
examples until its time is up and prints the smallest failing input hypothesis found, if any.
Exit status 1 when a property failed. Nothing is stored (no example database).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import traceback
import unicodedata
from collections.abc import Callable
from pathlib import Path

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.feedserver import FeedItem, atom_document, rss_document  # noqa: E402

from monitor.alerts.escaping import safe_url  # noqa: E402
from monitor.ingest import fetch  # noqa: E402
from monitor.ingest.parse import MAX_KEY_CHARS, MAX_URL_CHARS, FeedParseError, canonical_url, parse_feed  # noqa: E402
from monitor.ingest.urlguard import strict_http_url  # noqa: E402
from monitor.ingest.validators import MAX_ETAG_CHARS, MAX_LAST_MODIFIED_CHARS  # noqa: E402

ROUND = settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
LIMITS = fetch.FetchLimits(timeout_s=5, max_bytes=100_000, max_redirects=5, user_agent="fuzz")
SEEDS = [
    rss_document(
        [FeedItem("Héllo <b>x</b>", link="https://example.com/a?utm_source=x", guid="g1", description="<p>Text</p>")]
    ),
    atom_document([FeedItem("Atom", link="/rel/1", guid="tag:example.com,2024:1", content="<div>Body</div>")]),
]
HOSTILE = [
    b"\x00", b"&#0;", b"&#xD800;", b"\xff\xfe", b"<![CDATA[", b"]]>", b"<!ENTITY x 'y'>", b"&x;",
    "\u202e".encode(), b"http://127.0.0.1:+80/", "http://localhost:\u0668\u0660/".encode(), b"\x1b[31m",
    b"<link>", b"</item>", b"<guid>", b"<item>", b"javascript:", b"\r\n",
]  # fmt: skip


def _hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=40),
        st.sampled_from(["\u00b2", "\u0663", "120", "-1", "1e9", "9" * 400, "Sat, 01 Mar 2025 12:00:00 GMT", '"é"']),
        st.text(alphabet='\x00\x1b\u202e\u00e9"W/0123456789 ,;=', max_size=600),
    )


# --------------------------------------------------------------------------- targets


@ROUND
@given(
    status=st.integers(100, 999),
    reason=st.text(max_size=20),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "retry-after",
                "etag",
                "last-modified",
                "cache-control",
                "expires",
                "date",
                "content-length",
                "content-type",
            ]
        ),
        _hostile_text(),
        max_size=6,
    ),
    body=st.binary(max_size=200),
    sent=st.tuples(st.one_of(st.none(), _hostile_text()), st.one_of(st.none(), _hostile_text())),
)
def outcome_classification(
    status: int, reason: str, headers: dict[str, str], body: bytes, sent: tuple[str | None, str | None]
) -> None:
    """Any status and headers become a FetchOutcome; what it keeps can be stored and sent back."""
    raw = [(name.encode(), value.encode("utf-8", "surrogateescape")) for name, value in headers.items()]
    response = httpx.Response(
        status,
        headers=raw,
        stream=httpx.ByteStream(body),  # unread, as a response off the network
        request=httpx.Request("GET", "https://example.com/feed"),
        extensions={"reason_phrase": reason.encode("utf-8", "replace")},
    )
    outcome = asyncio.run(fetch._outcome(response, sent[0], sent[1], LIMITS, time.perf_counter()))
    assert outcome.etag is None or (outcome.etag.isascii() and len(outcome.etag) <= MAX_ETAG_CHARS)
    assert outcome.last_modified is None or (
        outcome.last_modified.isascii() and len(outcome.last_modified) <= MAX_LAST_MODIFIED_CHARS
    )
    assert outcome.retry_after_s is None or outcome.retry_after_s >= 0
    assert outcome.max_age_s is None or outcome.max_age_s >= 0
    # A 2xx may still be an error (too large, undecodable); nothing else is ever new content.
    assert outcome.kind is not fetch.FetchKind.NEW_CONTENT or 200 <= status < 300


@ROUND
@given(
    seed=st.sampled_from(SEEDS),
    cuts=st.lists(st.tuples(st.floats(0, 1), st.one_of(st.sampled_from(HOSTILE), st.binary(max_size=12))), max_size=6),
)
def feed_parsing(seed: bytes, cuts: list[tuple[float, bytes]]) -> None:
    """A mutated feed is either refused with FeedParseError or gives entries that can be stored."""
    document = bytearray(seed)
    for where, insert in cuts:
        at = int(where * len(document))
        document[at:at] = insert
    try:
        parsed = parse_feed(
            bytes(document), url="https://example.com/feed", headers={"content-type": "application/xml"}
        )
    except FeedParseError:
        return
    for entry in parsed.entries:
        assert len(entry.key) <= MAX_KEY_CHARS and "\x00" not in entry.key
        assert not any(0xD800 <= ord(c) <= 0xDFFF for c in entry.key)
        assert "\x00" not in entry.title + entry.text
        if entry.url is not None:
            assert len(entry.url) <= MAX_URL_CHARS and strict_http_url(entry.url) is not None


def _disguising(text: str) -> bool:
    return any(unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp", "Cs"} for c in text)


@ROUND
@given(
    st.one_of(
        st.text(max_size=60),
        st.builds(
            lambda scheme, host, port, rest: f"{scheme}://{host}{port}/{rest}",
            st.sampled_from(["http", "https", "HTTPS", "ftp"]),
            st.one_of(
                st.sampled_from(["127.0.0.1", "[::1]", "localhost", "ß.test", "a\u202eb.com"]), st.text(max_size=12)
            ),
            st.one_of(st.just(""), st.text(alphabet=":+-0123456789\u0660\u00b2 ", max_size=7)),
            st.text(max_size=20),
        ),
    )
)
def url_guard(text: str) -> None:
    """URLs kept, requested or shown: readable one way, stable, and never disguised when shown."""
    parsed = strict_http_url(text)
    if parsed is not None:
        assert parsed.scheme in ("http", "https") and parsed.raw_host
    url = canonical_url(text)
    if url is not None:
        assert strict_http_url(url) is not None and canonical_url(url) == url
    shown = safe_url(text)
    if shown is not None:
        assert shown.isascii() and not _disguising(shown)


TARGETS: dict[str, Callable[[], None]] = {
    "outcome": outcome_classification,
    "parse": feed_parsing,
    "url": url_guard,
}


def run(targets: list[str], seconds: float) -> int:
    failures = 0
    share = seconds / len(targets)
    for name in targets:
        deadline = time.monotonic() + share
        rounds = 0
        while time.monotonic() < deadline:
            rounds += 1
            try:
                TARGETS[name]()
            except Exception:  # noqa: BLE001 - report every failing property, then go on
                failures += 1
                print(f"{name}: property failed in round {rounds}", flush=True)
                traceback.print_exc()
                break
        print(f"{name}: {rounds} rounds of {ROUND.max_examples} examples in {share:.0f}s", flush=True)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="total time, split among the targets")
    parser.add_argument("--target", choices=sorted(TARGETS), action="append", help="default: all")
    args = parser.parse_args(argv)
    return 1 if run(args.target or list(TARGETS), args.seconds) else 0


if __name__ == "__main__":
    raise SystemExit(main())
