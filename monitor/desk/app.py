"""The web application: the analysts' desk (pages and JSON API, behind a login) and the
operations routes (/healthz, /readyz, /metrics), served by uvicorn inside the service.

    app = create_app(DeskContext(settings.web, sessions), ops=ops_router(metrics, checks))
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.desk import alerts, articles, feedback, feeds, knowledge
from monitor.desk.auth import CsrfRejected, NotAuthenticated, authenticate, csrf_protect, login_redirect, login_router
from monitor.desk.context import DeskContext
from monitor.desk.limits import EndedSessions

API_PREFIX = "/api"
# No script, style or frame from anywhere but the desk itself; nothing may frame the desk.
_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # Article links lead to strangers' sites: they learn nothing of the desk's addresses.
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((name, value) for name, value in _SECURITY_HEADERS if name not in names),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_api(request: Request) -> bool:
    return request.url.path == API_PREFIX or request.url.path.startswith(API_PREFIX + "/")


@cache
def _desk_routers() -> tuple[APIRouter, tuple[tuple[APIRouter, APIRouter], ...]]:
    """The login router and each part's (pages, api), built once per process: building them costs
    tens of milliseconds, and their routes hold no state (a request finds the desk on app.state)."""
    return login_router(), tuple(
        (module.pages(), module.api()) for module in (alerts, articles, knowledge, feeds, feedback)
    )


def _add_desk(app: FastAPI) -> None:
    login, parts = _desk_routers()
    app.include_router(login)
    guarded = [Depends(authenticate), Depends(csrf_protect)]
    for pages, api in parts:
        app.include_router(pages, dependencies=guarded)
        app.include_router(api, prefix=API_PREFIX, dependencies=guarded)

    @app.get("/", include_in_schema=False, dependencies=[Depends(authenticate)])
    async def home() -> Response:
        return RedirectResponse("/alerts", status_code=303)


def create_app(desk: DeskContext, *, ops: APIRouter | None = None) -> FastAPI:
    app = FastAPI(
        title="monitor desk API",
        version="1",
        description="Alerts, findings, known facts and articles of the monitor, and the analysts' feedback.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.desk = desk
    app.state.ended_sessions = EndedSessions(desk.web.session_max_age)
    if ops is not None:
        app.include_router(ops)
    app.mount("/static", StaticFiles(directory=str(files("monitor.desk") / "static")), name="static")
    if desk.web.enabled:
        _add_desk(app)

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return login_redirect(request)

    @app.exception_handler(CsrfRejected)
    async def csrf_rejected(request: Request, exc: CsrfRejected) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": str(exc)}, status_code=403)
        return PlainTextResponse("This form has expired or did not come from the desk. Reload and retry.\n", 403)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        # The offending input is never echoed back: it may be a stranger's markup.
        errors = [{"loc": list(error.get("loc", ())), "msg": error.get("msg", "")} for error in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    https = (desk.web.secure_cookies == "always") or (
        desk.web.secure_cookies == "auto" and (desk.web.base_url or "").startswith("https://")
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=desk.session_key,
        session_cookie="monitor_session",
        max_age=int(desk.web.session_max_age),
        same_site="lax",
        https_only=https,
    )
    app.add_middleware(SecurityHeaders)
    return app
