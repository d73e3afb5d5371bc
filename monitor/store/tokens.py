"""The API token repository: tokens for scripts, of which only a SHA-256 digest is stored.

A token is 32 random bytes, so a plain digest is enough to make the stored value useless to a
reader of the database; a slow password hash would only slow every API call.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from monitor.store.models import ApiToken

TOKEN_PREFIX = "mon_"
# last_used_at is written at most this often per token: a script's every call is not a write
# (on SQLite, each write takes the database's one write lock).
USE_RECORD_INTERVAL = timedelta(minutes=1)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str, now: datetime) -> str:
    """A new token named NAME (the caller commits); the token itself is returned once, never kept.
    ValueError when NAME is taken by a token that was not revoked."""
    existing = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if existing is not None and existing.revoked_at is None:
        raise ValueError(f"a token named {name!r} exists; revoke it first")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    if existing is not None:
        existing.token_hash, existing.created_at, existing.revoked_at, existing.last_used_at = (
            digest(token),
            now,
            None,
            None,
        )
    else:
        session.add(ApiToken(name=name, token_hash=digest(token), created_at=now))
    return token


def token_owner(session: Session, token: str, now: datetime) -> str | None:
    """The name of the live token TOKEN is, noting its use; None when there is none."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token), ApiToken.revoked_at.is_(None)))
    if row is None:
        return None
    if row.last_used_at is None or now - row.last_used_at >= USE_RECORD_INTERVAL:
        row.last_used_at = now
    return row.name


def revoke_token(session: Session, name: str, now: datetime) -> bool:
    result = session.execute(
        update(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None)).values(revoked_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.name)))
