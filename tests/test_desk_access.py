"""Nobody gets in who shouldn't: the desk served by uvicorn, tried without a session, with forged
CSRF tokens, with a stranger's proxy header, with tokens made and revoked, with a crafted `next`,
and with markup in everything a stranger writes. Routes are walked from the application itself,
so a route added later is tried too."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import select
from support.rows import add_feed, load_feed
from support.webapp import ANALYST, HOSTILE, PASSWORD, csrf_in, desk_app, desk_rows, log_in, password_hash, serve

from monitor.desk import limits
from monitor.desk.limits import address_key
from monitor.store.db import SessionFactory
from monitor.store.models import Feedback
from monitor.store.tokens import create_token, revoke_token

# Open to anyone: the probes, the scrape (its own token), the login form, the API's description.
OPEN = {"/healthz", "/readyz", "/metrics", "/login", "/logout", "/openapi.json"}


def routes_behind_login(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every route but the open ones and the static files, as the
    application routes them (included routers walked)."""
    found = []
    for route in iter_route_contexts(app.routes):
        if route.methods is None or route.path in OPEN:  # a mount (/static) has no methods
            continue
        found += [(method, route.path) for method in sorted(route.methods)]
    return found


def guarded_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route behind the login, path parameters filled with 1."""
    return [(method, re.sub(r"\{[^}]+\}", "1", path)) for method, path in routes_behind_login(app)]


def is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


async def test_every_page_sends_a_stranger_to_login_and_every_api_route_answers_401(
    sqlite_sessions: SessionFactory,
) -> None:
    app = desk_app(sqlite_sessions)
    routes = guarded_routes(app)
    assert ("GET", "/feeds") in routes and ("POST", "/api/feeds/1/pause") in routes
    async with serve(app) as client:
        for method, path in routes:
            for headers in ({}, {"Authorization": "Bearer mon_not-a-token"}, {"Cookie": "monitor_session=forged"}):
                response = await client.request(method, path, headers=headers)
                if is_api(path):
                    assert response.status_code == 401, (method, path, headers, response.status_code)
                    assert response.headers["content-type"] == "application/json"
                    assert response.headers["www-authenticate"] == "Bearer"
                elif "Bearer" in headers.get("Authorization", ""):
                    assert response.status_code in (303, 401), (method, path, response.status_code)
                else:
                    assert response.status_code == 303, (method, path, headers, response.status_code)
                    assert response.headers["location"].startswith("/login?next=")
        nexted = await client.get("/feeds?x=1")
        assert nexted.headers["location"] == "/login?next=%2Ffeeds%3Fx%3D1"
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/openapi.json")).status_code == 200


async def test_forged_or_missing_csrf_tokens_are_refused_and_change_nothing(sessions: SessionFactory) -> None:
    feed = add_feed(sessions, "Wire", "https://feeds.example/rss", next_poll_at=datetime.now(UTC))
    app = desk_app(sessions)
    async with serve(app) as client, serve(app) as other:
        await log_in(client)
        await log_in(other)
        mine = csrf_in((await client.get("/feeds")).text)
        theirs = csrf_in((await other.get("/feeds")).text)
        assert mine != theirs
        for form in (
            {},
            {"csrf_token": ""},
            {"csrf_token": "forged"},
            {"csrf_token": theirs},
            {"csrf_token": "é" * 43},
        ):
            refused = await client.post(f"/feeds/{feed}/pause", data=form)
            assert refused.status_code == 403, form
        for headers in (
            {},
            {"X-CSRF-Token": "forged"},
            {"X-CSRF-Token": theirs},
            {"X-CSRF-Token": "\u00e9t\u00e9".encode()},
        ):
            refused = await client.post(f"/api/feeds/{feed}/pause", headers=headers)
            assert refused.status_code == 403 and refused.json()["detail"], headers
        # A cross-site form cannot carry the header, nor smuggle the token in a JSON body.
        refused = await client.post(f"/api/feeds/{feed}/pause", json={"csrf_token": mine})
        assert refused.status_code == 403
        assert load_feed(sessions, feed).paused_at is None
        with sessions() as session:
            assert session.scalars(select(Feedback)).first() is None
        # Logging out takes a token as well: a stranger's page cannot end the session.
        assert (await client.post("/logout")).status_code == 403
        assert (await client.get("/feeds")).status_code == 200

        assert (await client.post(f"/feeds/{feed}/pause", data={"csrf_token": mine})).status_code == 303
        assert load_feed(sessions, feed).paused_by == ANALYST


async def test_logins_are_rate_limited_by_address_and_by_user(sqlite_sessions: SessionFactory) -> None:
    # Behind a trusted proxy the client's address comes from X-Forwarded-For: one address per client.
    app = desk_app(
        sqlite_sessions,
        login_attempts=3,
        users=[{"name": ANALYST, "password_hash": password_hash()}, {"name": "bob", "password_hash": password_hash()}],
        trusted_proxies=["127.0.0.1"],
    )
    async with serve(app) as client:

        async def attempt(user: str, password: str, address: str) -> httpx.Response:
            page = await client.get("/login")
            form = {"username": user, "password": password, "csrf_token": csrf_in(page.text), "next": "/"}
            return await client.post("/login", data=form, headers={"X-Forwarded-For": f"203.0.113.250, {address}"})

        for n in range(3):  # one address, three names: the address is refused next
            assert (await attempt(f"nobody{n}", "wrong", "198.51.100.1")).status_code == 401
        blocked = await attempt(ANALYST, PASSWORD, "198.51.100.1")
        assert blocked.status_code == 429 and 1 <= int(blocked.headers["retry-after"]) <= 301
        assert "Too many" in blocked.text and "monitor_session" not in blocked.headers.get("set-cookie", "")
        for n in range(3):  # one name, three addresses: the name is refused next, from anywhere
            assert (await attempt("bob", "wrong", f"198.51.100.{10 + n}")).status_code == 401
        assert (await attempt("bob", PASSWORD, "198.51.100.20")).status_code == 429
        # Others are not locked out by either.
        assert (await attempt(ANALYST, PASSWORD, "198.51.100.30")).status_code == 303


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored_by_the_login_limit(
    sqlite_sessions: SessionFactory,
) -> None:
    app = desk_app(sqlite_sessions, login_attempts=2)
    async with serve(app) as client:
        for n in range(2):
            page = await client.get("/login")
            form = {"username": ANALYST, "password": "wrong", "csrf_token": csrf_in(page.text)}
            await client.post("/login", data=form, headers={"X-Forwarded-For": f"198.51.100.{n}"})
        refused = await log_in(client)
        assert refused.status_code == 429


async def test_a_proxy_header_is_believed_only_from_trusted_proxies(sqlite_sessions: SessionFactory) -> None:
    feed = add_feed(sqlite_sessions, "Wire", "https://feeds.example/rss", next_poll_at=datetime.now(UTC))
    header = {"X-Remote-User": "carol@example.org"}
    trusted = desk_app(sqlite_sessions, trusted_proxy_header="X-Remote-User", trusted_proxies=["127.0.0.0/8"])
    async with serve(trusted) as client:
        page = await client.get("/feeds", headers=header)
        assert page.status_code == 200 and "carol@example.org" in page.text
        assert (await client.get("/api/feeds", headers=header)).status_code == 200
        # The proxied analyst's writes need the CSRF token like a session's.
        assert (await client.post(f"/feeds/{feed}/pause", headers=header)).status_code == 403
        token = csrf_in(page.text)
        done = await client.post(f"/feeds/{feed}/pause", headers=header, data={"csrf_token": token})
        assert done.status_code == 303 and load_feed(sqlite_sessions, feed).paused_by == "carol@example.org"

    untrusted = desk_app(sqlite_sessions, trusted_proxy_header="X-Remote-User", trusted_proxies=["10.0.0.0/8"])
    async with serve(untrusted) as client:
        assert (await client.get("/feeds", headers=header)).status_code == 303
        assert (await client.get("/api/feeds", headers=header)).status_code == 401


async def test_api_tokens_are_used_without_csrf_and_refused_once_revoked(sessions: SessionFactory) -> None:
    feed = add_feed(sessions, "Wire", "https://feeds.example/rss", next_poll_at=datetime.now(UTC))
    with sessions.begin() as session:
        token = create_token(session, "misp", datetime.now(UTC))
    bearer = {"Authorization": f"Bearer {token}"}
    async with serve(desk_app(sessions)) as client:
        assert (await client.get("/api/feeds", headers=bearer)).status_code == 200
        paused = await client.post(f"/api/feeds/{feed}/pause", headers=bearer)
        assert paused.status_code == 200 and paused.json()["paused_by"] == "token:misp"
        assert (await client.get("/api/feeds", headers={"Authorization": f"Bearer {token}x"})).status_code == 401
        assert (await client.get("/api/feeds", headers={"Authorization": f"Basic {token}"})).status_code == 401
        with sessions.begin() as session:
            assert revoke_token(session, "misp", datetime.now(UTC))
        revoked = await client.get("/api/feeds", headers=bearer)
        assert revoked.status_code == 401 and token not in revoked.text
    with sessions() as session:
        assert [(f.action, f.actor) for f in session.scalars(select(Feedback))] == [("pause", "token:misp")]


@pytest.mark.parametrize(
    ("web", "secure"),
    [
        ({}, False),
        ({"base_url": "https://desk.example.org"}, True),
        ({"secure_cookies": "always"}, True),
        ({"base_url": "https://desk.example.org", "secure_cookies": "never"}, False),
    ],
)
async def test_the_session_cookie_is_http_only_same_site_and_secure_behind_tls(
    sqlite_sessions: SessionFactory, web: dict[str, str], secure: bool
) -> None:
    async with serve(desk_app(sqlite_sessions, **web)) as client:
        page = await client.get("/login")
        # Sent back by hand: a client keeps a Secure cookie for https and this test speaks http.
        anonymous = page.headers["set-cookie"].split(";")[0]
        form = {"username": ANALYST, "password": PASSWORD, "csrf_token": csrf_in(page.text)}
        response = await client.post("/login", data=form, headers={"Cookie": anonymous})
    for cookie in (page.headers["set-cookie"].lower(), response.headers["set-cookie"].lower()):
        assert cookie.startswith("monitor_session=")
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert ("secure" in cookie.split("; ")) is secure
    assert response.status_code == 303


async def test_login_makes_a_new_session_and_logout_ends_it_for_every_copy(sqlite_sessions: SessionFactory) -> None:
    app = desk_app(sqlite_sessions)
    async with serve(app) as client:
        before = csrf_in((await client.get("/login")).text)
        assert (await log_in(client)).status_code == 303
        copied = dict(client.cookies)
        page = await client.get("/feeds")
        after = csrf_in(page.text)
        assert after != before  # a token seen before the login (a planted session) is worthless
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
        assert (await client.post("/logout", data={"csrf_token": after})).status_code == 303
        assert (await client.get("/feeds")).status_code == 303
    async with serve(app, cookies=copied) as replay:
        assert (await replay.get("/feeds")).status_code == 303
        assert (await replay.get("/api/feeds")).status_code == 401


async def test_a_new_password_ends_the_sessions_of_the_old(sqlite_sessions: SessionFactory) -> None:
    async with serve(desk_app(sqlite_sessions)) as client:
        await log_in(client)
        copied = dict(client.cookies)
    changed = desk_app(sqlite_sessions, users=[{"name": ANALYST, "password_hash": password_hash("new password!")}])
    async with serve(changed, cookies=copied) as client:
        assert (await client.get("/feeds")).status_code == 303


@pytest.mark.parametrize(
    "target",
    ["//evil.example/x", "https://evil.example/", "/\t/evil.example", "/\\evil.example", "http:/evil", "javascript:x"],
)
async def test_login_never_redirects_off_the_site(sqlite_sessions: SessionFactory, target: str) -> None:
    async with serve(desk_app(sqlite_sessions)) as client:
        page = await client.get("/login", params={"next": target})
        assert "evil" not in page.text and "javascript" not in page.text
        response = await log_in(client, next=target)
    assert response.status_code == 303 and response.headers["location"] == "/"


async def test_login_returns_to_the_page_asked_for(sqlite_sessions: SessionFactory) -> None:
    async with serve(desk_app(sqlite_sessions)) as client:
        response = await log_in(client, next="/feeds?x=1")
    assert response.headers["location"] == "/feeds?x=1"


async def test_markup_from_feeds_and_articles_is_escaped_on_every_page(sessions: SessionFactory) -> None:
    ids = desk_rows(sessions)
    app = desk_app(sessions)
    templates = [path for method, path in routes_behind_login(app) if method == "GET"]
    async with serve(app) as client:
        await log_in(client)
        for template in templates:
            # An id parameter gets each of the rows' ids in turn: some page shows each row.
            paths = sorted({re.sub(r"\{[^}]+\}", str(value), template) for value in ids.values()})
            for path in paths:
                response = await client.get(path)
                assert response.status_code < 500, (path, response.status_code)
                if is_api(path):  # data, not a page: JSON, and the browser told not to guess otherwise
                    assert response.headers["content-type"].startswith("application/json"), path
                    assert response.headers["x-content-type-options"] == "nosniff"
                    continue
                body = response.text
                assert "<script>alert(" not in body and "<img src=x" not in body and "<b>bold" not in body, path
        feeds = (await client.get("/feeds")).text
        assert "&lt;script&gt;alert(" in feeds and "&lt;b&gt;bold&lt;/b&gt;" in feeds
    assert HOSTILE.startswith("<script>")


def test_the_login_limiter_counts_an_ipv6_client_by_its_64_and_keeps_busy_keys_longest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:198.51.100.7") == address_key("198.51.100.7") == "addr:198.51.100.7"
    monkeypatch.setattr(limits, "MAX_KEYS", 3)
    now = [0.0]
    limiter = limits.LoginLimiter(attempts=2, window_s=60, clock=lambda: now[0])
    limiter.failed("addr:attacker", "user:a")
    limiter.failed("addr:attacker", "user:b")  # the attacker's key is the most recent again
    limiter.failed("user:c")  # one key too many: user:a, the least recently failing, goes
    assert limiter.retry_after("addr:attacker") == 60 and limiter.retry_after("user:a") == 0
    now[0] = 61.0
    assert limiter.retry_after("addr:attacker") == 0
