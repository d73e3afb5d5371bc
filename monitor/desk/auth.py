"""Who may use the desk: analysts from web.users (argon2 hashes) with a signed session cookie, a
name set by a trusted single-sign-on proxy, or an API token (`Authorization: Bearer`).

Every desk and API route depends on `authenticate`; every write also on `csrf_protect`. A page
request without credentials is sent to /login, an API request is answered 401. Requests with a
session or a proxy's header carry ambient credentials, so their writes need the session's CSRF
token (a form field or the X-CSRF-Token header); a bearer token is never sent by a browser on
its own, so API writes with one need none.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from urllib.parse import quote, urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from monitor.config import DeskUser
from monitor.desk.context import DeskContext, desk_context
from monitor.desk.limits import EndedSessions, address_key
from monitor.store.tokens import token_owner

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Verified against when the user name is unknown, so that a wrong name costs as long as a
    wrong password. Made at the first such login, not at import: hashing takes a fifth of a second
    and every CLI command imports this module."""
    return PasswordHasher().hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Analyst:
    """Who is asking: the name the audit trail records, and how they proved it."""

    name: str
    via: Literal["session", "proxy", "token"]


class NotAuthenticated(Exception):
    """No credentials, or none that hold: 401 for the API, the login page for the desk."""


class CsrfRejected(Exception):
    """A write whose CSRF token is missing or does not match the session's."""


def hash_password(password: str) -> str:
    return PasswordHasher().hash(password)


def _check_password(stored: str, password: str) -> bool:
    try:
        return PasswordHasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _same(expected: object, given: object) -> bool:
    """Whether two secrets match, in constant time; False for anything but two strings.
    (compare_digest raises on non-ASCII str, which a forged token may well be.)"""
    if not (isinstance(expected, str) and isinstance(given, str) and expected):
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


@lru_cache(maxsize=64)
def _networks(trusted: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(net, strict=False) for net in trusted)


def _is_trusted(address: str, desk: DeskContext) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in _networks(tuple(desk.web.trusted_proxies)))


def client_address(request: Request, desk: DeskContext) -> str:
    """The client's address: the peer's, or behind a trusted proxy the nearest untrusted address
    in its X-Forwarded-For (so the login limit counts clients, not the proxy). The header is
    ignored from anyone else: a client could write anything there."""
    peer = request.client.host if request.client else "?"
    if not _is_trusted(peer, desk):
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, desk):
            return hop[:64]
    return peer


def _from_trusted_proxy(request: Request, desk: DeskContext) -> str | None:
    header = desk.web.trusted_proxy_header
    if not header or request.client is None:
        return None
    name = request.headers.get(header, "").strip()
    if not name:
        return None
    if _is_trusted(request.client.host, desk):
        # The name lands in the audit trail and on pages (escaped): printable and bounded.
        name = "".join(ch for ch in name if ch.isprintable())[:100]
        return name or None
    log.warning("ignored %s header from an untrusted address", header, extra={"client": request.client.host})
    return None


def _fingerprint(user: DeskUser) -> str:
    """Changes when the user's password hash does: a new password ends the sessions of the old."""
    return hashlib.sha256(user.password_hash.get_secret_value().encode()).hexdigest()[:16]


def _ended_sessions(request: Request) -> EndedSessions | None:
    ended: EndedSessions | None = getattr(request.app.state, "ended_sessions", None)
    return ended


def _session_user(request: Request, desk: DeskContext) -> str | None:
    """The user the session cookie names, if the session is still good: the user is still in
    web.users with the same password, and the session was not ended by a logout."""
    cookie = request.session  # the signed cookie's contents, not a database session
    name, sid = cookie.get("user"), cookie.get("sid")
    if not (isinstance(name, str) and isinstance(sid, str)):
        return None
    ended = _ended_sessions(request)
    if ended is not None and sid in ended:
        return None
    for user in desk.web.users:
        if user.name == name and _same(_fingerprint(user), cookie.get("pw")):
            return name
    return None


async def authenticate(request: Request, desk: DeskContext = Depends(desk_context)) -> Analyst:
    """The analyst behind REQUEST, by bearer token, trusted proxy header or session."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():

        def owner() -> str | None:
            with desk.sessions.begin() as session:
                return token_owner(session, token.strip(), desk.now())

        name = await asyncio.to_thread(owner)
        if name is None:
            raise NotAuthenticated("unknown or revoked token")
        return Analyst(f"token:{name}", "token")
    proxied = _from_trusted_proxy(request, desk)
    if proxied is not None:
        csrf_token(request)  # a proxied analyst's forms need a token too
        return Analyst(proxied, "proxy")
    user = _session_user(request, desk)
    if user is not None:
        return Analyst(user, "session")
    raise NotAuthenticated("login required")


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made when first asked for."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


async def csrf_protect(request: Request, analyst: Analyst = Depends(authenticate)) -> Analyst:
    """Refuse a write with ambient credentials whose CSRF token does not match the session's."""
    if request.method in SAFE_METHODS or analyst.via == "token":
        return analyst
    expected = request.session.get(CSRF_FIELD)
    given: object = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        given = (await request.form()).get(CSRF_FIELD)
    if not _same(expected, given):
        raise CsrfRejected("missing or wrong CSRF token")
    return analyst


def _local_path(target: str | None) -> str:
    """Where to go after login: a path on this site only, never another origin."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    # Browsers drop tabs and newlines from URLs ("/\t/evil.example" becomes "//evil.example").
    if any(ch <= " " or ch == "\x7f" for ch in target) or len(target) > 2000:
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


def login_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: str = "/", desk: DeskContext = Depends(desk_context)) -> Response:
        return desk.templates.TemplateResponse(
            request,
            "login.html",
            {"next": _local_path(next), "error": None, "csrf_token": csrf_token(request), "analyst": None},
        )

    @router.post("/login")
    async def login(
        request: Request,
        username: str = Form(max_length=100),
        password: str = Form(max_length=1000),
        csrf_token_field: str = Form("", alias=CSRF_FIELD),
        next: str = Form("/"),
        desk: DeskContext = Depends(desk_context),
    ) -> Response:
        address = client_address(request, desk)
        keys = (address_key(address), f"user:{username}")
        assert desk.limiter is not None
        wait = desk.limiter.retry_after(*keys)
        if wait > 0:
            log.warning("login refused: too many attempts", extra={"client": address})
            return _login_again(request, desk, next, "Too many failed logins. Try again later.", 429, wait)
        if not _same(request.session.get(CSRF_FIELD), csrf_token_field):
            return _login_again(request, desk, next, "The form expired. Please try again.", 403)
        user = None
        for candidate in desk.web.users:
            if candidate.name == username:
                user = candidate
        stored = user.password_hash.get_secret_value() if user else _dummy_hash()
        ok = await asyncio.to_thread(_check_password, stored, password)
        if not (ok and user):
            desk.limiter.failed(*keys)
            log.info("login failed", extra={"client": address})
            return _login_again(request, desk, next, "Wrong user name or password.", 401)
        desk.limiter.succeeded(*keys)
        request.session.clear()  # a new session for the new identity: no fixation
        request.session.update({"user": user.name, "sid": secrets.token_urlsafe(16), "pw": _fingerprint(user)})
        csrf_token(request)  # a new CSRF token too: one learnt before the login is worthless
        log.info("login", extra={"analyst": user.name})
        return RedirectResponse(_local_path(next), status_code=303)

    @router.post("/logout", dependencies=[Depends(csrf_protect)])
    async def logout(request: Request) -> Response:
        ended, sid = _ended_sessions(request), request.session.get("sid")
        if ended is not None and isinstance(sid, str):
            ended.end(sid)  # a copy of the cookie kept elsewhere is refused from now on
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    return router


def _login_again(
    request: Request, desk: DeskContext, next: str, error: str, status: int, retry_after: float = 0
) -> Response:
    response = desk.templates.TemplateResponse(
        request,
        "login.html",
        {"next": _local_path(next), "error": error, "csrf_token": csrf_token(request), "analyst": None},
        status_code=status,
    )
    if retry_after:
        response.headers["Retry-After"] = str(int(retry_after) + 1)
    return response


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
