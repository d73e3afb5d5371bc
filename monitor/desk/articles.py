"""The desk's articles: every article with the monitor's verdict and its reason, searchable by
words and date (so an analyst can find what was judged off-topic), one article's page, and the
same as JSON under /api."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import Field

from monitor.desk.auth import Analyst, authenticate
from monitor.desk.context import DeskContext, desk_context
from monitor.desk.listing import MAX_ID, ListQuery, Page, Text, highlight, link_of, shown, wants_fragment
from monitor.desk.render import render
from monitor.store.desk_views import ArticleDetail, ArticleFilters, ArticleRow, Verdict, article_detail, list_articles


class ArticleQuery(ListQuery):
    q: Text | None = Field(None, description="Words that must all appear in the title or the text.")
    verdict: Verdict | None = None

    def filters(self) -> ArticleFilters:
        since, until = self.window()
        return ArticleFilters(words=self.q, verdict=self.verdict, since=since, until=until)


class ArticlePage(Page):
    items: list[ArticleRow]


ArticleId = Annotated[int, Path(ge=1, le=MAX_ID)]


def article_page(desk: DeskContext, query: ArticleQuery) -> ArticlePage:
    with desk.sessions() as session:
        items, cursor = list_articles(
            session, query.filters(), limit=query.page_size(desk.web.page_size), before=query.cursor()
        )
    return ArticlePage(items=items, next=cursor)


def one_article(desk: DeskContext, article_id: int) -> ArticleDetail:
    with desk.sessions() as session:
        detail = article_detail(session, article_id)
    if detail is None:
        raise HTTPException(404, "no article with this id")
    return detail


def pages() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/articles", response_class=HTMLResponse)
    def articles_page(
        request: Request,
        query: Annotated[ArticleQuery, Query()],
        analyst: Analyst = Depends(authenticate),
        desk: DeskContext = Depends(desk_context),
    ) -> Response:
        page = article_page(desk, query)
        template = "_article_rows.html" if wants_fragment(request.headers) else "articles.html"
        response = render(
            request, template, analyst, "articles", page=page, query=query, verdicts=list(Verdict),
            next_link=query.link("/articles", page.next), link_of=link_of, shown=shown,
        )  # fmt: skip
        response.headers["Vary"] = "HX-Request"
        return response

    @router.get("/articles/{article_id}", response_class=HTMLResponse)
    def article_view(
        request: Request,
        article_id: ArticleId,
        analyst: Analyst = Depends(authenticate),
        desk: DeskContext = Depends(desk_context),
    ) -> Response:
        article = one_article(desk, article_id)
        marked = {finding.id: highlight(finding.evidence, finding.value) for finding in article.findings}
        return render(
            request, "article.html", analyst, "articles", article=article, marked=marked, link_of=link_of, shown=shown
        )

    return router


def api() -> APIRouter:
    router = APIRouter(tags=["articles"])

    @router.get("/articles", response_model=ArticlePage)
    def list_articles_api(
        query: Annotated[ArticleQuery, Query()], desk: DeskContext = Depends(desk_context)
    ) -> ArticlePage:
        """Articles, newest first, with the verdict and its reason: `{"items": [...], "next": ...}`."""
        return article_page(desk, query)

    @router.get(
        "/articles/{article_id}", response_model=ArticleDetail, responses={404: {"description": "No such article"}}
    )
    def article_api(article_id: ArticleId, desk: DeskContext = Depends(desk_context)) -> ArticleDetail:
        """One article: its verdict and reason, findings, feeds and closest seed allegation."""
        return one_article(desk, article_id)

    return router
