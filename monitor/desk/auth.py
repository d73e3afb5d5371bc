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
import hmac
import ipaddress
import logging
import secrets
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from monitor.desk.context import DeskContext, desk_context
from monitor.store.tokens import token_owner

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# Verified against when the user name is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = PasswordHasher().hash(secrets.token_urlsafe(16))


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


def _from_trusted_proxy(request: Request, desk: DeskContext) -> str | None:
    header = desk.web.trusted_proxy_header
    if not header or request.client is None:
        return None
    name = request.headers.get(header, "").strip()
    if not name:
        return None
    try:
        address = ipaddress.ip_address(request.client.host)
    except ValueError:
        return None
    if any(address in ipaddress.ip_network(net, strict=False) for net in desk.web.trusted_proxies):
        return name[:100]
    log.warning("ignored %s header from an untrusted address", header, extra={"client": request.client.host})
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
    user = request.session.get("user")
    if isinstance(user, str) and any(u.name == user for u in desk.web.users):
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
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        given = (await request.form()).get(CSRF_FIELD)  # type: ignore[assignment]
    if not (isinstance(expected, str) and isinstance(given, str) and hmac.compare_digest(expected, given)):
        raise CsrfRejected("missing or wrong CSRF token")
    return analyst


def _local_path(target: str | None) -> str:
    """Where to go after login: a path on this site only, never another origin."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
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
        address = request.client.host if request.client else "?"
        keys = (f"addr:{address}", f"user:{username}")
        assert desk.limiter is not None
        wait = desk.limiter.retry_after(*keys)
        if wait > 0:
            log.warning("login refused: too many attempts", extra={"client": address})
            return _login_again(request, desk, next, "Too many failed logins. Try again later.", 429, wait)
        expected = request.session.get(CSRF_FIELD)
        if not (isinstance(expected, str) and hmac.compare_digest(expected, csrf_token_field)):
            return _login_again(request, desk, next, "The form expired. Please try again.", 403)
        user = None
        for candidate in desk.web.users:
            if candidate.name == username:
                user = candidate
        stored = user.password_hash.get_secret_value() if user else _DUMMY_HASH
        ok = await asyncio.to_thread(_check_password, stored, password)
        if not (ok and user):
            desk.limiter.failed(*keys)
            log.info("login failed", extra={"client": address})
            return _login_again(request, desk, next, "Wrong user name or password.", 401)
        desk.limiter.succeeded(*keys)
        request.session.clear()  # a new session for the new identity: no fixation
        request.session["user"] = user.name
        csrf_token(request)
        log.info("login", extra={"analyst": user.name})
        return RedirectResponse(_local_path(next), status_code=303)

    @router.post("/logout", dependencies=[Depends(csrf_protect)])
    async def logout(request: Request) -> Response:
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
