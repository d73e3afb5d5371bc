"""The desk's feeds: each feed's status, errors and next poll; an analyst pauses and resumes one.

Pages: GET /feeds, POST /feeds/{id}/pause and /feeds/{id}/resume (then 303 back to /feeds).
API: GET /api/feeds, POST /api/feeds/{id}/pause and /api/feeds/{id}/resume.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from monitor.desk.auth import Analyst, authenticate
from monitor.desk.context import DeskContext, desk_context
from monitor.desk.render import render
from monitor.redact import redact_text, redact_url
from monitor.store.db import SessionFactory
from monitor.store.feeds import all_feeds, pause_feed, resume_feed
from monitor.store.models import Feed

FeedId = Path(ge=1, le=2**31 - 1, description="The feed's id (stable).")


class FeedOut(BaseModel):
    """One feed as the desk shows it; URLs and errors with credentials masked."""

    id: int
    name: str
    url: str
    tags: list[str]
    active: bool
    paused: bool
    paused_at: datetime | None
    paused_by: str | None
    last_status: str | None
    last_http_status: int | None
    last_error: str | None
    consecutive_errors: int
    last_polled_at: datetime | None
    last_success_at: datetime | None
    next_poll_at: datetime | None
    entries_seen: int


class FeedList(BaseModel):
    items: list[FeedOut]
    # Every feed fits on one page; the field keeps the shape of the other lists.
    next: str | None = None


def feed_out(feed: Feed) -> FeedOut:
    return FeedOut(
        id=feed.id,
        name=feed.name,
        # A feed URL may carry a password or a key in its query: never shown whole.
        url=redact_url(feed.url),
        tags=list(feed.tags or []),
        active=feed.active,
        paused=feed.paused_at is not None,
        paused_at=feed.paused_at,
        paused_by=feed.paused_by,
        last_status=feed.last_status,
        last_http_status=feed.last_http_status,
        last_error=redact_text(feed.last_error) if feed.last_error else None,
        consecutive_errors=feed.consecutive_errors,
        last_polled_at=feed.last_polled_at,
        last_success_at=feed.last_success_at,
        # Not polled while paused or removed from the configuration: no next poll to show.
        next_poll_at=feed.next_poll_at if feed.active and feed.paused_at is None else None,
        entries_seen=feed.entries_seen,
    )


def list_feeds(sessions: SessionFactory) -> list[FeedOut]:
    with sessions() as session:
        return [feed_out(feed) for feed in all_feeds(session)]


Change = Callable[..., Feed]


def change_feed(desk: DeskContext, change: Change, feed_id: int, analyst: Analyst) -> FeedOut:
    """Pause or resume FEED_ID as ANALYST in one transaction; 404 when there is no such feed."""
    try:
        with desk.sessions.begin() as session:
            return feed_out(change(session, feed_id, analyst.name, desk.now()))
    except LookupError:
        raise HTTPException(status_code=404, detail="no such feed") from None


def pages() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/feeds")
    def feeds_page(
        request: Request, analyst: Analyst = Depends(authenticate), desk: DeskContext = Depends(desk_context)
    ) -> Response:
        return render(request, "feeds.html", analyst, "feeds", feeds=list_feeds(desk.sessions))

    @router.post("/feeds/{feed_id}/pause")
    def pause_page(
        feed_id: int = FeedId, analyst: Analyst = Depends(authenticate), desk: DeskContext = Depends(desk_context)
    ) -> Response:
        change_feed(desk, pause_feed, feed_id, analyst)
        return RedirectResponse(f"/feeds#feed-{feed_id}", status_code=303)

    @router.post("/feeds/{feed_id}/resume")
    def resume_page(
        feed_id: int = FeedId, analyst: Analyst = Depends(authenticate), desk: DeskContext = Depends(desk_context)
    ) -> Response:
        change_feed(desk, resume_feed, feed_id, analyst)
        return RedirectResponse(f"/feeds#feed-{feed_id}", status_code=303)

    return router


def api() -> APIRouter:
    router = APIRouter(tags=["feeds"])

    @router.get("/feeds", response_model=FeedList, summary="Every feed with its status")
    def feeds(desk: DeskContext = Depends(desk_context)) -> FeedList:
        return FeedList(items=list_feeds(desk.sessions))

    @router.post(
        "/feeds/{feed_id}/pause",
        response_model=FeedOut,
        summary="Stop polling a feed until it is resumed",
        responses={404: {"description": "No such feed"}},
    )
    def pause(
        feed_id: int = FeedId, analyst: Analyst = Depends(authenticate), desk: DeskContext = Depends(desk_context)
    ) -> FeedOut:
        return change_feed(desk, pause_feed, feed_id, analyst)

    @router.post(
        "/feeds/{feed_id}/resume",
        response_model=FeedOut,
        summary="Poll a paused feed again",
        responses={404: {"description": "No such feed"}},
    )
    def resume(
        feed_id: int = FeedId, analyst: Analyst = Depends(authenticate), desk: DeskContext = Depends(desk_context)
    ) -> FeedOut:
        return change_feed(desk, resume_feed, feed_id, analyst)

    return router
