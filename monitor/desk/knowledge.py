"""The desk's knowledge: every known fact by kind, with its evidence, its source, when it was first
seen and how many later mentions it absorbed (the alerts it suppressed); searchable, filterable, and
each fact can be retired or merged into another (monitor/desk/feedback.py does those)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from monitor.desk.auth import Analyst, authenticate
from monitor.desk.context import DeskContext, desk_context
from monitor.desk.feedback import FeedbackOut
from monitor.desk.render import render
from monitor.store import facts_view
from monitor.store.facts_view import KIND_ORDER, FactFilter, FactKindName, SourceName
from monitor.store.feedback import audit_trail

Who = Annotated[Analyst, Depends(authenticate)]
Desk = Annotated[DeskContext, Depends(desk_context)]
State = Literal["active", "retired", "all"]
_RETIRED: dict[str, bool | None] = {"active": False, "retired": True, "all": None}


class FactOut(BaseModel):
    """A known fact. `about` is what a denial denies, or a target's identity (whose/kind/names)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    value: str
    about: str
    evidence: str
    source_kind: str = Field(description="seed, article or analyst")
    source_ref: str = Field(description="the seed file, the article's URL, or analyst:NAME")
    article_id: int | None
    article_title: str | None
    first_seen_at: datetime
    retired_at: datetime | None
    retired_by: str | None
    merged_into_id: int | None
    absorbed: int = Field(description="later mentions judged known because of this fact")


class FactPage(BaseModel):
    items: list[FactOut]
    next: str | None = Field(description="Pass as `after` for the next page; null on the last.")


class MatchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    article_id: int
    article_title: str
    value: str
    evidence: str
    similarity: float | None
    created_at: datetime


class FactDetail(BaseModel):
    fact: FactOut
    matches: list[MatchOut] = Field(description="the latest mentions it absorbed")
    feedback: list[FeedbackOut] = Field(description="what analysts did to it, newest first")


def _filter(q: str, kind: FactKindName | None, source: SourceName | None, state: State, fact: int | None) -> FactFilter:
    return FactFilter(words=q.strip(), kind=kind, source=source, retired=_RETIRED[state], fact_id=fact)


def _page(desk: DeskContext, chosen: FactFilter, after: str | None, limit: int) -> tuple[FactPage, dict[str, int]]:
    with desk.sessions() as session:
        views, following = facts_view.list_facts(session, chosen, after=after, limit=limit)
        counts = facts_view.kind_counts(session, chosen)
    return FactPage(items=[FactOut.model_validate(v) for v in views], next=following), counts


Words = Annotated[str, Query(max_length=200, description="words in the value, about or evidence")]
Kind = Annotated[FactKindName | None, Query()]
Source = Annotated[SourceName | None, Query()]
After = Annotated[str | None, Query(max_length=24)]
OneFact = Annotated[int | None, Query(ge=1, le=2**31 - 1)]


def pages() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/knowledge")
    def knowledge_page(
        request: Request,
        analyst: Who,
        desk: Desk,
        q: Words = "",
        kind: Kind = None,
        source: Source = None,
        state: State = "active",
        after: After = None,
        fact: OneFact = None,
    ) -> Response:
        chosen = _filter(q, kind, source, state, fact)
        page, counts = _page(desk, chosen, after, desk.web.page_size)
        groups = [(k, [f for f in page.items if f.kind == k]) for k in KIND_ORDER]
        return render(
            request,
            "knowledge.html",
            analyst,
            "knowledge",
            page=page,
            groups=[(k, facts) for k, facts in groups if facts],
            counts=counts,
            q=q,
            kind=kind or "",
            source=source or "",
            state=state,
            here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            next_query=_next_query(q, kind, source, state, page.next),
        )

    return router


def _next_query(q: str, kind: str | None, source: str | None, state: str, after: str | None) -> str | None:
    if after is None:
        return None
    values = {"q": q, "kind": kind or "", "source": source or "", "state": state, "after": after}
    return urlencode({k: v for k, v in values.items() if v})


def api() -> APIRouter:
    router = APIRouter(tags=["knowledge"])

    @router.get("/facts")
    def list_facts(
        desk: Desk,
        q: Words = "",
        kind: Kind = None,
        source: Source = None,
        state: State = "active",
        after: After = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> FactPage:
        """Known facts, countries then targets then denials, each kind oldest first; paginated by
        key: pass `next` as `after`."""
        page, _ = _page(desk, _filter(q, kind, source, state, None), after, limit)
        return page

    @router.get("/facts/{fact_id}", responses={404: {"description": "No such fact"}})
    def get_fact(fact_id: Annotated[int, Path(ge=1, le=2**31 - 1)], desk: Desk) -> FactDetail:
        """One fact, with the latest mentions it absorbed and what analysts did to it."""
        with desk.sessions() as session:
            view = facts_view.fact_view(session, fact_id)
            if view is None:
                raise HTTPException(404, f"no fact {fact_id}")
            matches = [MatchOut.model_validate(m) for m in facts_view.fact_matches(session, fact_id)]
            trail = [FeedbackOut.model_validate(row) for row in audit_trail(session, fact_id=fact_id, limit=50)]
        return FactDetail(fact=FactOut.model_validate(view), matches=matches, feedback=trail)

    return router
