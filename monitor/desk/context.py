"""What every desk route needs, built once with the application and kept on app.state."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined

from monitor.config import WebSettings
from monitor.desk.limits import LoginLimiter
from monitor.store.db import SessionFactory
from monitor.store.models import utcnow


@cache
def make_templates() -> Jinja2Templates:
    # One for the process: each Environment compiles every template again on first use.
    # Autoescape everywhere: article text is written by strangers and is never marked safe.
    environment = Environment(
        loader=PackageLoader("monitor.desk", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=environment)


@dataclass
class DeskContext:
    web: WebSettings
    sessions: SessionFactory
    templates: Jinja2Templates = field(default_factory=make_templates)
    limiter: LoginLimiter | None = None
    # Signs the session cookie: web.session_secret, or a random key for this process only.
    session_key: str = ""

    def __post_init__(self) -> None:
        if self.limiter is None:
            self.limiter = LoginLimiter(self.web.login_attempts, self.web.login_window)
        if not self.session_key:
            secret = self.web.session_secret
            self.session_key = secret.get_secret_value() if secret else secrets.token_urlsafe(32)

    def now(self) -> datetime:
        return utcnow()


def desk_context(request: Request) -> DeskContext:
    """The FastAPI dependency that hands a route the desk's context."""
    context: DeskContext = request.app.state.desk
    return context
