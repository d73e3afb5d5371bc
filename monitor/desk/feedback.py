"""The desk's feedback: the analysts' actions on findings, articles and facts, as HTML form posts
(POST, then 303 back to the page the form was on) and as a JSON API, and the audit trail.

Every action is one transaction in monitor/store/feedback.py: its change and its audit row are
written together. A missing finding, article, fact or audit row answers 404; an action the present
state does not allow (already reviewed, already undone, a later action in the way) 409.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from monitor.desk.auth import Analyst, authenticate
from monitor.desk.context import DeskContext, desk_context
from monitor.desk.render import render
from monitor.store import feedback as store
from monitor.store.feedback import Action, Conflict, FeedbackError, Invalid, NotFound, Session

# Ids are database integers: anything larger names nothing (and must not reach the database).
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
Note = Annotated[str, Form(max_length=2000)]
Back = Annotated[str, Form(max_length=2000)]
Who = Annotated[Analyst, Depends(authenticate)]
Desk = Annotated[DeskContext, Depends(desk_context)]


def status_of(error: FeedbackError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Invalid):
        return 422
    return 409 if isinstance(error, Conflict) else 400


def run_action(desk: DeskContext, analyst: Analyst, action: Action) -> int:
    """ACTION for ANALYST in one transaction: its change and its audit row, or neither."""
    with desk.sessions.begin() as session:
        return action(session, analyst.name, desk.now())


def local_path(target: str, default: str) -> str:
    """Where a form sends the browser back to: a path on the desk, never another site."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or len(target) > 2000:
        return default
    parts = urlsplit(target)
    return default if parts.scheme or parts.netloc else target


class FeedbackOut(BaseModel):
    """One audit row: who did what, when, to which finding, article or fact."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    actor: str
    action: str
    finding_id: int | None
    article_id: int | None
    fact_id: int | None
    detail: dict[str, Any]
    note: str
    created_at: datetime
    undone_at: datetime | None
    undone_by: str | None
    undoes_id: int | None


class FeedbackPage(BaseModel):
    items: list[FeedbackOut]
    next: str | None = Field(description="Pass as `before` for the next (older) page; null on the last.")


class FindingReview(BaseModel):
    action: Literal["confirm", "not_new", "wrong"]
    fact_id: int | None = Field(None, ge=1, le=2**31 - 1, description="not_new: the known fact it repeats")
    note: str = Field("", max_length=2000)


class ArticleReview(BaseModel):
    action: Literal["missed", "not_relevant"]
    kind: Literal["country", "target", "denial"] | None = Field(None, description="missed: what kind of item")
    value: str = Field("", max_length=300, description="missed: the country, target or denier")
    about: str = Field("", max_length=300, description="missed, a denial: what is denied")
    evidence: str = Field("", max_length=5000)
    note: str = Field("", max_length=2000)


class NoteIn(BaseModel):
    note: str = Field("", max_length=2000)


class MergeIn(BaseModel):
    into: int = Field(ge=1, le=2**31 - 1, description="The fact that stands for both from now on")
    note: str = Field("", max_length=2000)


def _finding_action(finding_id: int, review: FindingReview) -> Action:
    if review.action == "confirm":
        return lambda s, who, now: store.confirm(s, finding_id, who, now, review.note)
    if review.action == "not_new":
        return lambda s, who, now: store.not_new(s, finding_id, who, now, review.fact_id, review.note)
    return lambda s, who, now: store.wrong(s, finding_id, who, now, review.note)


def _article_action(article_id: int, review: ArticleReview) -> Action:
    if review.action == "not_relevant":
        return lambda s, who, now: store.not_relevant(s, article_id, who, now, review.note)
    kind = review.kind or ""
    return lambda s, who, now: store.missed(
        s,
        article_id,
        who,
        now,
        kind=kind,
        value=review.value,
        about=review.about,
        evidence=review.evidence,
        note=review.note,
    )


def _undo_last(finding_id: int | None, article_id: int | None, note: str) -> Action:
    def act(session: Session, who: str, now: datetime) -> int:
        last = store.last_action(session, finding_id=finding_id, article_id=article_id)
        if last is None:
            raise Conflict("nothing to undo here")
        return store.undo(session, last, who, now, note)

    return act


def pages() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def form_post(
        request: Request, desk: DeskContext, analyst: Analyst, back: str, default: str, action: Action
    ) -> Response:
        target = local_path(back, default)
        try:
            run_action(desk, analyst, action)
        except FeedbackError as exc:
            code = status_of(exc)
            return render(request, "feedback_error.html", analyst, "", status_code=code, message=str(exc), back=target)
        return RedirectResponse(target, status_code=303)

    @router.post("/findings/{finding_id}/{verb}")
    def finding_form(
        request: Request,
        finding_id: Id,
        verb: Literal["confirm", "not-new", "wrong", "undo"],
        analyst: Who,
        desk: Desk,
        back: Back = "/alerts",
        note: Note = "",
        fact_id: Annotated[str, Form(max_length=12)] = "",
    ) -> Response:
        if verb == "undo":
            action = _undo_last(finding_id, None, note)
        else:
            chosen = int(fact_id.strip()) if re.fullmatch(r"[0-9]{1,9}", fact_id.strip()) else None
            review = FindingReview(action=verb.replace("-", "_"), fact_id=chosen, note=note)  # type: ignore[arg-type]
            action = _finding_action(finding_id, review)
        return form_post(request, desk, analyst, back, "/alerts", action)

    @router.post("/articles/{article_id}/{verb}")
    def article_form(
        request: Request,
        article_id: Id,
        verb: Literal["missed", "not-relevant", "undo"],
        analyst: Who,
        desk: Desk,
        back: Back = "/articles",
        note: Note = "",
        kind: Annotated[str, Form(max_length=20)] = "",
        value: Annotated[str, Form(max_length=300)] = "",
        about: Annotated[str, Form(max_length=300)] = "",
        evidence: Annotated[str, Form(max_length=5000)] = "",
    ) -> Response:
        if verb == "undo":
            action = _undo_last(None, article_id, note)
        elif verb == "not-relevant":
            action = _article_action(article_id, ArticleReview(action="not_relevant", note=note))
        else:

            def action(s: Session, who: str, now: datetime) -> int:
                return store.missed(
                    s, article_id, who, now, kind=kind, value=value, about=about, evidence=evidence, note=note
                )

        return form_post(request, desk, analyst, back, "/articles", action)

    @router.post("/facts/{fact_id}/retire")
    def retire_form(
        request: Request, fact_id: Id, analyst: Who, desk: Desk, back: Back = "/knowledge", note: Note = ""
    ) -> Response:
        return form_post(
            request, desk, analyst, back, "/knowledge", lambda s, who, now: store.retire(s, fact_id, who, now, note)
        )

    @router.post("/facts/{fact_id}/merge")
    def merge_form(
        request: Request,
        fact_id: Id,
        analyst: Who,
        desk: Desk,
        into: Annotated[int, Form(ge=1, le=2**31 - 1)],
        back: Back = "/knowledge",
        note: Note = "",
    ) -> Response:
        return form_post(
            request,
            desk,
            analyst,
            back,
            "/knowledge",
            lambda s, who, now: store.merge(s, fact_id, into, who, now, note),
        )

    @router.post("/feedback/{feedback_id}/undo")
    def undo_form(
        request: Request, feedback_id: Id, analyst: Who, desk: Desk, back: Back = "/feedback", note: Note = ""
    ) -> Response:
        return form_post(
            request, desk, analyst, back, "/feedback", lambda s, who, now: store.undo(s, feedback_id, who, now, note)
        )

    @router.get("/feedback")
    def feedback_page(
        request: Request,
        analyst: Who,
        desk: Desk,
        before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    ) -> Response:
        page = _trail(desk, None, None, None, before, desk.web.page_size)
        return render(request, "feedback.html", analyst, "feedback", page=page)

    return router


def _trail(
    desk: DeskContext,
    finding_id: int | None,
    article_id: int | None,
    fact_id: int | None,
    before: int | None,
    limit: int,
) -> FeedbackPage:
    with desk.sessions() as session:
        rows = store.audit_trail(
            session, finding_id=finding_id, article_id=article_id, fact_id=fact_id, before_id=before, limit=limit + 1
        )
        items = [FeedbackOut.model_validate(row) for row in rows[:limit]]
    return FeedbackPage(items=items, next=str(items[-1].id) if len(rows) > limit else None)


def api() -> APIRouter:
    router = APIRouter(tags=["feedback"])
    errors: dict[int | str, dict[str, Any]] = {
        404: {"description": "No such finding, article, fact or audit row"},
        409: {"description": "Not possible now: already reviewed or undone, or a later action is in the way"},
    }

    def act(desk: DeskContext, analyst: Analyst, action: Action) -> FeedbackOut:
        try:
            feedback_id = run_action(desk, analyst, action)
        except FeedbackError as exc:
            raise HTTPException(status_of(exc), str(exc)) from None
        with desk.sessions() as session:
            return FeedbackOut.model_validate(store.feedback_row(session, feedback_id))

    @router.post("/findings/{finding_id}/review", responses=errors)
    def review_finding(finding_id: Id, review: FindingReview, analyst: Who, desk: Desk) -> FeedbackOut:
        """Confirm a finding, mark it not new (linked to the known fact it repeats), or wrong (the
        fact it taught is retired). Returns the audit row."""
        return act(desk, analyst, _finding_action(finding_id, review))

    @router.post("/articles/{article_id}/review", responses={**errors, 422: {"description": "Invalid fact"}})
    def review_article(article_id: Id, review: ArticleReview, analyst: Who, desk: Desk) -> FeedbackOut:
        """Mark an article missed (its new item becomes a fact with the analyst as source) or not
        relevant (what it taught is retired). Returns the audit row."""
        return act(desk, analyst, _article_action(article_id, review))

    @router.post("/facts/{fact_id}/retire", responses=errors)
    def retire_fact(fact_id: Id, analyst: Who, desk: Desk, body: NoteIn | None = None) -> FeedbackOut:
        """Retire a fact: it stays for the record and suppresses nothing from now on."""
        note = body.note if body else ""
        return act(desk, analyst, lambda s, who, now: store.retire(s, fact_id, who, now, note))

    @router.post("/facts/{fact_id}/merge", responses=errors)
    def merge_fact(fact_id: Id, body: MergeIn, analyst: Who, desk: Desk) -> FeedbackOut:
        """Merge a fact into another of its kind that names the same thing."""
        return act(desk, analyst, lambda s, who, now: store.merge(s, fact_id, body.into, who, now, body.note))

    @router.post("/feedback/{feedback_id}/undo", responses=errors)
    def undo(feedback_id: Id, analyst: Who, desk: Desk, body: NoteIn | None = None) -> FeedbackOut:
        """Undo an action: what it changed is restored. Returns the "undo" audit row."""
        note = body.note if body else ""
        return act(desk, analyst, lambda s, who, now: store.undo(s, feedback_id, who, now, note))

    @router.get("/feedback")
    def list_feedback(
        desk: Desk,
        finding_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
        article_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
        fact_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
        before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> FeedbackPage:
        """The audit trail, newest first: all of it, or what was done to one finding, article or fact."""
        return _trail(desk, finding_id, article_id, fact_id, before, limit)

    return router
