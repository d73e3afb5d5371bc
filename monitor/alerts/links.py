"""The one way a URL from a feed is shown to people (Slack, email, console, webhook text)."""

from __future__ import annotations

import re

from monitor.ingest.urlguard import strict_http_url

# Characters that end or split a link in Slack mrkdwn, HTML attributes or a terminal line.
_LINK_BREAKERS = re.compile(r"[\s<>|\"'`\x00-\x1f\x7f]")


def display_url(url: str | None) -> str | None:
    """The URL as people see and follow it, or None when it is not a plain http(s) URL.

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
