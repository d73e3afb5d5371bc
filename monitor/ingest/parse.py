"""Parse: feed bytes (with their HTTP headers) into normalised entries, via feedparser."""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import feedparser

from monitor.ingest.text import html_to_text, normalise_whitespace, repair_mojibake
from monitor.ingest.urlguard import strict_http_url

logger = logging.getLogger(__name__)

# Matches the article table's column sizes: a longer key is hashed, a longer URL dropped.
MAX_KEY_CHARS = 512
MAX_URL_CHARS = 2000

# Query parameters that only say how a reader arrived; they make one article look like many.
_TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "msclkid", "yclid", "twclid", "igshid", "mc_cid",
        "mc_eid", "_hsenc", "_hsmi", "mkt_tok", "ocid", "cmpid", "cmp", "smid", "smtyp",
        "ns_mchannel", "ns_source", "ns_campaign", "ns_linkname", "ns_fee", "at_medium",
        "at_campaign", "_ga", "_gl", "xtor", "wt.mc_id",
    }
)  # fmt: skip
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# feedparser only hands these to its decoder and base-URI logic; content-encoding in particular
# must not reach it, because fetch has already inflated the body.
_PARSER_HEADERS = ("content-type", "content-location", "content-language")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_ISO_DATE = re.compile(r"\s*(\d{4})-?(\d{2})-?(\d{2})(?:[Tt ](\d{2}):?(\d{2})(?::?(\d{2}))?)?")
_TAG_LIKE = re.compile(r"<[A-Za-z/!]")
_CHARREF = re.compile(rb"&#([xX][0-9a-fA-F]{1,16}|[0-9]{1,20});")
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)[\s>]", re.IGNORECASE | re.DOTALL)


class FeedParseError(ValueError):
    """The document is not a feed at all: an HTML page, garbage, or nothing."""


@dataclass(frozen=True)
class Entry:
    key: str
    url: str | None
    title: str
    text: str
    published: datetime | None


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    entries: list[Entry]
    bozo: bool
    problem: str | None


def parse_feed(content: bytes, *, url: str, headers: Mapping[str, str], max_entries: int | None = None) -> ParsedFeed:
    """Entries of a feed document; raises FeedParseError when there is no feed in it.

    At most max_entries entries are read, the first ones (feeds put their newest first).
    """
    try:
        # A BytesIO, never the bytes themselves: feedparser opens a bytes value that names a file.
        parsed = feedparser.parse(
            io.BytesIO(_neutralise_charrefs(content)),
            response_headers=_parser_headers(headers, url),
        )
    except Exception as exc:  # noqa: BLE001 - third-party parser on hostile input: its bugs end here
        raise FeedParseError(f"parse: cannot parse ({_exception_text(exc)})") from exc
    problem = _problem(parsed)
    if not parsed.get("version") and not parsed.entries:
        raise FeedParseError(f"parse: not a feed ({_not_a_feed_reason(content, headers, problem)})")
    entries = _unique(_entry(raw, url) for raw in parsed.entries[:max_entries])
    title = _plain(parsed.feed, "title") or None
    if parsed.bozo:
        logger.info("feed is not well-formed", extra={"url": url, "problem": problem})
    return ParsedFeed(title=title, entries=entries, bozo=bool(parsed.bozo), problem=problem)


def _neutralise_charrefs(content: bytes) -> bytes:
    """Character references to code points that cannot exist become U+FFFD.

    feedparser's lenient parser crashes on &#xD800; (a surrogate) or &#x110000; and passes &#0;
    through, which PostgreSQL refuses to store.
    """
    if b"&#" not in content:
        return content
    return _CHARREF.sub(_replace_charref, content)


def _replace_charref(match: re.Match[bytes]) -> bytes:
    digits = match.group(1)
    try:
        code = int(digits[1:], 16) if digits[:1] in (b"x", b"X") else int(digits)
    except ValueError:
        return match.group(0)
    if code == 0 or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
        return b"&#xFFFD;"
    return match.group(0)


def _parser_headers(headers: Mapping[str, str], url: str) -> dict[str, str]:
    lowered = {name.lower(): value for name, value in headers.items()}
    chosen = {name: lowered[name] for name in _PARSER_HEADERS if name in lowered}
    if "content-type" in chosen:
        chosen["content-type"] = _modern_xml_type(chosen["content-type"])
    # The feed's own address is the base for relative links, unless the server named another.
    chosen["content-location"] = urljoin(url, chosen.get("content-location", ""))
    return chosen


def _modern_xml_type(content_type: str) -> str:
    """text/xml without a charset read as RFC 7303 says: the document's own declaration decides.

    feedparser follows the older RFC 3023 and assumes US-ASCII, which turns every UTF-8 feed
    served as plain "text/xml" into a not-well-formed one (and UTF-16 feeds into nothing).
    """
    media_type, _, params = content_type.partition(";")
    media_type = media_type.strip().lower()
    is_text_xml = media_type == "text/xml" or (media_type.startswith("text/") and media_type.endswith("+xml"))
    if is_text_xml and "charset" not in params.lower():
        return "application/xml"
    return content_type


def _problem(parsed: Any) -> str | None:
    if not parsed.get("bozo"):
        return None
    exc = parsed.get("bozo_exception")
    return f"parse: {_exception_text(exc)}" if exc is not None else "parse: not well-formed"


def _exception_text(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _not_a_feed_reason(content: bytes, headers: Mapping[str, str], problem: str | None) -> str:
    if not content.strip():
        return "empty document"
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if "html" in content_type.lower() or _HTML_START.match(content[:2048]):
        return "an HTML page"
    if problem:
        return problem.removeprefix("parse: ")
    return "no RSS, Atom or RDF elements found"


def _entry(raw: Mapping[str, Any], feed_url: str) -> Entry:
    url = _entry_url(raw, feed_url)
    title = _plain(raw, "title")
    text = _entry_text(raw)
    return Entry(
        key=_entry_key(raw, url, title, text),
        url=url,
        title=title,
        text=text,
        published=_published(raw),
    )


def _entry_url(raw: Mapping[str, Any], feed_url: str) -> str | None:
    link = raw.get("link")
    if not link:
        # An RSS guid marked as a permalink is the article's address when there is no <link>.
        guid = raw.get("id")
        if guid and raw.get("guidislink"):
            link = guid
    if not link or not isinstance(link, str):
        return None
    url = canonical_url(link, feed_url)
    if url is None or len(url) > MAX_URL_CHARS or _CONTROL.search(url) is not None:
        return None
    return url


def _entry_key(raw: Mapping[str, Any], url: str | None, title: str, text: str) -> str:
    guid = raw.get("id")
    if isinstance(guid, str) and guid.strip():
        key = guid.strip()
    elif url:
        key = url
    else:
        digest = hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()
        return f"sha256:{digest}"
    # A NUL or a lone surrogate cannot be stored (PostgreSQL refuses both): hashed, like a long key.
    if len(key) > MAX_KEY_CHARS or _CONTROL.search(key):
        return f"sha256:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}"
    return key


def _entry_text(raw: Mapping[str, Any]) -> str:
    # Full content beats the summary; among several content parts take the longest.
    contents = [part for part in raw.get("content") or [] if part.get("value")]
    if contents:
        best = max(contents, key=lambda part: len(part["value"]))
        text = _as_text(best["value"], best.get("type"))
        if text:
            return text
    return _plain(raw, "summary")


def _plain(raw: Mapping[str, Any], field: str) -> str:
    value = raw.get(field)
    if not isinstance(value, str):
        return ""
    detail = raw.get(f"{field}_detail") or {}
    return _as_text(value, detail.get("type"))


def _as_text(value: str, content_type: str | None) -> str:
    value = repair_mojibake(value)
    # feedparser marks plain-text fields as such, and an HTML parser would mangle "a < b" or a
    # literal "&amp;" in them. Tags in a "plain" field are markup all the same (feedparser only
    # recognises the tags it allows), so those fields are stripped rather than shown raw.
    if content_type == "text/plain" and not _TAG_LIKE.search(value):
        return normalise_whitespace(value)
    return html_to_text(value)


def _published(raw: Mapping[str, Any]) -> datetime | None:
    # dict.get: FeedParserDict maps a missing updated_parsed to published_parsed, with a warning.
    for field in ("published", "updated", "created"):
        parsed = dict.get(raw, f"{field}_parsed")
        if parsed is None or not _plausible_date(dict.get(raw, field)):
            continue
        try:
            # feedparser hands back the instant as a UTC struct_time.
            return datetime(*parsed[:6], tzinfo=UTC)
        except (TypeError, ValueError, OverflowError):
            continue
    return None


def _plausible_date(text: object) -> bool:
    """False for ISO dates that cannot exist, which feedparser would roll over (Feb 31 -> Mar 2)."""
    if not isinstance(text, str):
        return True
    match = _ISO_DATE.match(text)
    if match is None:
        return True  # RFC 822 and friends: feedparser already refuses the impossible ones
    try:
        datetime(*(int(part) for part in match.groups(default="0")))
    except ValueError:
        return False
    return True


def _has_substance(entry: Entry) -> bool:
    # An item with no title, text or link (a truncated tail, an empty <item/>) has nothing to read.
    return bool(entry.title or entry.text or entry.url)


def _unique(entries: Iterable[Entry]) -> list[Entry]:
    seen: set[str] = set()
    unique: list[Entry] = []
    for entry in entries:
        if entry.key in seen or not _has_substance(entry):
            continue
        seen.add(entry.key)
        unique.append(entry)
    return unique


def canonical_url(url: str, base: str | None = None) -> str | None:
    """One spelling per article: resolved, lower-case scheme and host, no fragment, no trackers.

    None for anything that is not an http(s) URL read the same way by every parser
    (urlguard.strict_http_url): such a URL is never passed on, to be fetched or shown.
    """
    url = url.strip()
    try:
        if base:
            url = urljoin(base, url)
        if strict_http_url(url) is None:
            return None
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return None  # "http://./": nothing left once the root dot goes
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}" if userinfo else host
    query = _strip_tracking(parts.query)
    # A space is sent as %20 by every client: spelt so here too, so that the URL ends where it ends.
    return urlunsplit((scheme, netloc, parts.path or "/", query, "")).replace(" ", "%20")


def _strip_tracking(query: str) -> str:
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(name, value) for name, value in pairs if not _is_tracking(name)]
    if len(kept) == len(pairs):
        # Untouched queries keep their exact spelling (encoding, order, bare keys).
        return query
    return urlencode(kept)


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES)
