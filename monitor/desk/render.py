"""Rendering a desk page: the template, with who is looking and the session's CSRF token."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from monitor.desk.auth import Analyst, csrf_token


def render(
    request: Request, template: str, analyst: Analyst, section: str, *, status_code: int = 200, **values: Any
) -> HTMLResponse:
    """TEMPLATE (under monitor/desk/templates) for ANALYST; SECTION lights up its tab."""
    templates = request.app.state.desk.templates
    context = {"analyst": analyst, "csrf_token": csrf_token(request), "section": section, **values}
    response: HTMLResponse = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response
