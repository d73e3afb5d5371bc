"""The desk's alerts: the list (filters, newest first, paged) and one alert's page, and the same
as JSON under /api. An alert's id is the id of the article that alerted."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from monitor.desk.auth import Analyst, authenticate
from monitor.desk.context import DeskContext, desk_context
from monitor.desk.listing import MAX_ID, ListQuery, Page, Text, highlight, link_of, shown, wants_fragment
from monitor.desk.render import render
from monitor.outbox import FindingKind
from monitor.store.desk_views import AlertDetail, AlertFilters, AlertRow, alert_detail, list_alerts
from monitor.store.models import AlertStatus


class AlertQuery(ListQuery):
    kind: FindingKind | None = None
    country: Text | None = None
    feed: Text | None = None
    tag: Text | None = None
    status: AlertStatus | None = None

    def filters(self) -> AlertFilters:
        since, until = self.window()
        return AlertFilters(
            kind=self.kind, country=self.country, feed=self.feed, tag=self.tag,
            status=self.status.value if self.status else None, since=since, until=until,
        )  # fmt: skip


class AlertPage(Page):
    items: list[AlertRow]


AlertId = Annotated[int, Path(ge=1, le=MAX_ID, description="The id of the article that alerted.")]


def alert_page(desk: DeskContext, query: AlertQuery) -> AlertPage:
    with desk.sessions() as session:
        items, cursor = list_alerts(
            session, query.filters(), limit=query.page_size(desk.web.page_size), before=query.cursor()
        )
    return AlertPage(items=items, next=cursor)


def one_alert(desk: DeskContext, article_id: int) -> AlertDetail:
    with desk.sessions() as session:
        detail = alert_detail(session, article_id)
    if detail is None:
        raise HTTPException(404, "no alert with this id")
    return detail


def pages() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/alerts", response_class=HTMLResponse)
    def alerts_page(
        request: Request,
        query: Annotated[AlertQuery, Query()],
        analyst: Analyst = Depends(authenticate),
        desk: DeskContext = Depends(desk_context),
    ) -> Response:
        page = alert_page(desk, query)
        template = "_alert_rows.html" if wants_fragment(request.headers) else "alerts.html"
        response = render(
            request, template, analyst, "alerts", page=page, query=query, statuses=list(AlertStatus),
            next_link=query.link("/alerts", page.next), link_of=link_of, shown=shown,
        )  # fmt: skip
        response.headers["Vary"] = "HX-Request"
        return response

    @router.get("/alerts/{article_id}", response_class=HTMLResponse)
    def alert_view(
        request: Request,
        article_id: AlertId,
        analyst: Analyst = Depends(authenticate),
        desk: DeskContext = Depends(desk_context),
    ) -> Response:
        alert = one_alert(desk, article_id)
        marked = {finding.id: highlight(finding.evidence, finding.value) for finding in alert.findings}
        return render(
            request, "alert.html", analyst, "alerts", alert=alert, article=alert, marked=marked,
            link_of=link_of, shown=shown,
        )  # fmt: skip

    return router


def api() -> APIRouter:
    router = APIRouter(tags=["alerts"])

    @router.get("/alerts", response_model=AlertPage)
    def list_alerts_api(query: Annotated[AlertQuery, Query()], desk: DeskContext = Depends(desk_context)) -> AlertPage:
        """Articles that alerted, newest first: `{"items": [...], "next": cursor-or-null}`."""
        return alert_page(desk, query)

    @router.get("/alerts/{article_id}", response_model=AlertDetail, responses={404: {"description": "No such alert"}})
    def alert_api(article_id: AlertId, desk: DeskContext = Depends(desk_context)) -> AlertDetail:
        """One alert: the article, its findings, the same story elsewhere, delivery per channel."""
        return one_alert(desk, article_id)

    return router
