"""Untrusted text made safe for each medium, in one place.

Every string that came from a feed or the analysis of one is untrusted: it is escaped here, for
Slack mrkdwn, HTML email or a terminal, so that an article can never ping a channel, forge a link,
inject markup or drive a terminal.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from monitor.ingest.urlguard import strict_http_url

# Controls (ESC drives terminals), zero-width and bidirectional overrides (which disguise text).
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069"
    "\ufeff\ufff9-\ufffb]"
)
# No word boundary: "@here00" cut to fit a limit would become "@here…".
_MENTION = re.compile(r"@(channel|here|everyone)", re.IGNORECASE)
_WORD_JOINER = "\u2060"
# Characters that end or split a link in Slack mrkdwn, HTML attributes or a terminal line; C1
# controls too (\x9b is a CSI to some terminals, and URLs are printed on the console).
_LINK_BREAKERS = re.compile(r"[\s<>|\"'`\x00-\x1f\x7f-\x9f]")
# Longest run of text kept from one field in a plain-text or HTML message.
TEXT_MAX = 5000


def clean(text: str) -> str:
    """One line of text: controls and invisible characters removed, whitespace collapsed."""
    return " ".join(_CONTROL.sub("", text).split())


def defang_mentions(text: str) -> str:
    # A word joiner after "@" keeps "@channel" readable but no longer a broadcast keyword.
    return _MENTION.sub(lambda m: "@" + _WORD_JOINER + m.group(1), text)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mrkdwn(text: str, limit: int) -> str:
    """Untrusted text as Slack mrkdwn, at most ``limit`` characters once escaped."""
    # "&" first, so that the entities added after it are not escaped again.
    escaped = defang_mentions(clean(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    # Every "&" in the escaped text opens an entity: never leave half of one ("&am") behind.
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def plain(text: str, limit: int) -> str:
    """Untrusted text for a Slack plain_text object (the header), at most ``limit`` characters."""
    # plain_text is not parsed for mentions or links; the angle brackets are swapped anyway so
    # that the header cannot carry "<!channel>" even if Slack changes how it treats plain_text.
    text = defang_mentions(clean(text)).replace("<", "‹").replace(">", "›")
    return clip(text, limit)


def html_text(text: str, limit: int = TEXT_MAX) -> str:
    """Untrusted text for HTML: one clean line, clipped, escaped (quotes too, for attributes)."""
    return html.escape(clip(clean(text), limit), quote=True)


def safe_url(url: str | None) -> str | None:
    """The one way a URL from a feed is shown to people: None unless it is a plain http(s) URL.

    What comes out is ASCII: httpx writes the host in its IDNA form and percent-encodes the rest,
    so a right-to-left override, a zero-width space or a look-alike letter cannot disguise where
    the link goes, and no control sequence reaches a terminal.
    """
    if not url:
        return None
    parsed = strict_http_url(_LINK_BREAKERS.sub("", url.strip()))
    if parsed is None:
        return None
    shown = str(parsed)
    # str(httpx.URL) keeps a few characters RFC 3986 allows that still break links here.
    return _LINK_BREAKERS.sub(lambda match: f"%{ord(match.group()):02X}", shown)


def when(moment: datetime | None) -> str:
    if moment is None:
        return "unknown"
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def title_of(item: object) -> str:
    """An alert's article title, cleaned, or "(untitled)"."""
    return clean(getattr(item, "article_title", "")) or "(untitled)"


def prefix(test: bool) -> str:
    return "[monitor] [TEST] " if test else "[monitor] "


def similarity_note(similarity: float | None) -> str:
    return "" if similarity is None else f", similarity {similarity:.2f}"
