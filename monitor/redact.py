"""Secrets out of what people see: URLs with credentials, and text that may quote such URLs.

Feed URLs, webhook URLs and database URLs can carry credentials in their user information
(``https://user:pass@host``) or in their query (``?api_key=...``). What the monitor shows an
operator (the CLI, logs, operator alerts, configuration errors) passes through here first; the
value used to connect is never changed.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, quote, urlsplit, urlunsplit

MASK = "***"

# Query or fragment parameter names that hold a credential. Suffixes catch the many spellings
# (apikey, api_key, x-api-key, access_token, client_secret, X-Amz-Signature); a harmless name
# that happens to match is only masked in what is shown, which costs nothing.
_SECRET_NAMES = frozenset({"sig", "auth", "code", "session", "sessionid", "jwt", "pat"})
_SECRET_SUFFIXES = ("token", "key", "secret", "password", "passwd", "pwd", "signature", "credential", "credentials")

# A URL inside free text: a scheme, "://", then anything up to whitespace or a closing quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>`]+")


def is_secret_name(name: str) -> bool:
    normalized = name.strip().lower().replace("-", "_")
    return normalized in _SECRET_NAMES or normalized.endswith(_SECRET_SUFFIXES)


def _masked_params(text: str) -> str:
    if "=" not in text:
        return text
    pairs = parse_qsl(text, keep_blank_values=True)
    if not any(is_secret_name(name) for name, _ in pairs):
        return text
    return "&".join(
        f"{quote(name, safe='')}={MASK if is_secret_name(name) else quote(value, safe='')}" for name, value in pairs
    )


def _masked_netloc(parts: SplitResult, *, keep_user: bool) -> str:
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return parts.netloc
    user, colon, _password = userinfo.partition(":")
    if keep_user and colon:
        return f"{user}:{MASK}@{hostport}"
    # A user name alone is often the credential itself (https://TOKEN@host).
    return f"{MASK}@{hostport}"


def redact_url(url: str, *, keep_user: bool = False) -> str:
    """URL with its password (or whole user information) and secret parameters masked.

    ``keep_user`` keeps the user name before a masked password (database URLs, where the user name
    helps the operator and is not the secret).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return _fallback(url)
    if not parts.scheme or not parts.netloc:
        return url
    return urlunsplit(
        (
            parts.scheme,
            _masked_netloc(parts, keep_user=keep_user),
            parts.path,
            _masked_params(parts.query),
            _masked_params(parts.fragment),
        )
    )


def _fallback(url: str) -> str:
    # urlsplit refused it (a bracketed host it cannot read): mask everything it could hide.
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0].rpartition("@")[2].split("?", 1)[0]
    return f"{scheme}{sep}{MASK}@{host}/{MASK}" if sep else MASK


def redact_text(text: str) -> str:
    """TEXT with every URL in it redacted (error messages quote URLs: httpx, SQLAlchemy, pydantic)."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
