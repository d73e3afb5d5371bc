"""HTTP validators and moved-to URLs from a server, checked before they are kept.

A feed's ETag and Last-Modified go back to its server on the next poll, and a permanent
redirect's target becomes its URL: whatever is kept must fit its column and be sendable, or one
hostile answer would fail every later poll of the feed.
"""

from __future__ import annotations

import re

from monitor.ingest.urlguard import strict_http_url

# The feeds table's column sizes (monitor/store/models.py).
MAX_ETAG_CHARS = 500
MAX_LAST_MODIFIED_CHARS = 200
MAX_FEED_URL_CHARS = 2000

# Visible ASCII and inner spaces: what an HTTP header value can carry both ways. RFC 9110 allows
# obs-text (bytes over 0x7F) in an ETag, but httpx sends header values as ASCII.
_HEADER_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


def usable_etag(value: str | None) -> str | None:
    return _usable(value, MAX_ETAG_CHARS)


def usable_last_modified(value: str | None) -> str | None:
    return _usable(value, MAX_LAST_MODIFIED_CHARS)


def usable_feed_url(url: str | None) -> str | None:
    """A redirect target fit to be the feed's URL from now on, or None."""
    if url is None or len(url) > MAX_FEED_URL_CHARS or strict_http_url(url) is None:
        return None
    return url


def _usable(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit or not _HEADER_VALUE.fullmatch(value):
        return None
    return value
