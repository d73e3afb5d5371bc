"""Rows the desk's alert and article tests read, written through the store the way the service
writes them (articles stored from entries, verdicts and findings recorded, outbox rows added and
delivered), and a client logged in to the desk through its login form."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select

from monitor import outbox
from monitor.config import DeskUser, WebSettings
from monitor.desk.app import create_app
from monitor.desk.context import DeskContext
from monitor.outbox import AlertContent, AlsoReported, Delivery, DeliveryStatus, FindingView, RetryPolicy
from monitor.store.articles import store_entries
from monitor.store.db import SessionFactory
from monitor.store.models import Alert, Article, Feed
from monitor.store.verdicts import FindingRow, add_findings, record_failure, record_verdict, verdict
from support.passwords import quick_hash as hash_password

PASSWORD = "correct horse battery staple"
# One hash for the run: argon2 is slow on purpose.
_HASH = hash_password(PASSWORD)
# Entry keys and addresses unique across every Desk of a run.
_SERIAL = itertools.count(1)
HOSTILE_TITLES = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


@dataclass
class Entry:
    key: str
    url: str | None
    title: str
    text: str = ""
    published: datetime | None = None


@dataclass
class Found:
    kind: str
    value: str
    evidence: str
    about: str = ""
    closest: str | None = None
    similarity: float | None = None
    reason: str = "nothing similar known"

    def row(self) -> FindingRow:
        return FindingRow(
            kind=self.kind, value=self.value, about=self.about, evidence=self.evidence, closest_fact_id=None,
            closest_value=self.closest, similarity=self.similarity, reason=self.reason,
        )  # fmt: skip

    def view(self) -> FindingView:
        return FindingView(kind=self.kind, value=self.value, about=self.about, evidence=self.evidence)  # type: ignore[arg-type]


@dataclass
class Desk:
    sessions: SessionFactory
    feeds: dict[str, int] = field(default_factory=dict)

    def feed(self, name: str, tags: Sequence[str] = ()) -> int:
        with self.sessions.begin() as session:
            feed = Feed(name=name, url=f"https://{name.lower()}.example.org/feed", tags=list(tags))
            session.add(feed)
            session.flush()
            self.feeds[name] = feed.id
            return feed.id

    def known_feed(self, name: str) -> int:
        """A feed another Desk made, for this one's articles."""
        with self.sessions() as session:
            feed_id = session.scalar(select(Feed.id).where(Feed.name == name))
        assert feed_id is not None
        self.feeds[name] = feed_id
        return feed_id

    def article(self, feed: str, title: str, *, text: str = "", fetched: datetime, url: str | None = None) -> int:
        """An article as polling stores it; its id."""
        serial = next(_SERIAL)
        key = f"entry-{serial}"
        entry = Entry(key=key, url=url or f"https://news.example.org/{serial}", title=title, text=text)
        with self.sessions.begin() as session:
            stored = store_entries(session, self.feeds[feed], [entry], fetched, 100_000)
            assert stored.new == 1
        with self.sessions() as session:
            article_id = session.scalar(select(Article.id).where(Article.entry_key == key))
            assert article_id is not None
            return article_id

    def link(self, feed: str, url: str, fetched: datetime) -> None:
        """The article at URL, brought again by another feed: linked to it, not stored twice."""
        entry = Entry(key=f"entry-{next(_SERIAL)}", url=url, title="the same")
        with self.sessions.begin() as session:
            assert store_entries(session, self.feeds[feed], [entry], fetched, 100_000).linked == 1

    def judge(
        self,
        article_id: int,
        *,
        relevant: bool,
        reason: str,
        relevance: float = 0.7,
        findings: Sequence[Found] = (),
        channels: Sequence[str] = ("slack", "email"),
        same_story_as: int | None = None,
        at: datetime | None = None,
    ) -> None:
        """A verdict as processing commits it: findings, and an alert on CHANNELS when it has any."""
        now = at or datetime.now(UTC)
        summary: dict[str, Any] = {
            "relevance": relevance, "relevant": relevant, "reason": reason,
            "closest_allegation": {"source": "seeds/000.txt", "sentence": "Russia hacked the vote.", "score": 0.81},
        }  # fmt: skip
        values = verdict(relevance=relevance, relevant=relevant, summary=summary, now=now)
        values["same_story_as_id"] = same_story_as
        with self.sessions.begin() as session:
            assert record_verdict(session, article_id, values)
            add_findings(session, article_id, [found.row() for found in findings])
            title, feed, url = self._about(session, article_id)
            if relevant and findings:
                content = AlertContent(
                    article_title=title, article_url=url, feed=feed, published=None, relevance=relevance,
                    findings=[found.view() for found in findings],
                )  # fmt: skip
                outbox.add_alerts(session, content, channels, article_id, now)
            elif relevant and same_story_as is not None:
                line = AlsoReported(
                    article_title=title, article_url=url, feed=feed, published=None, original_article_id=same_story_as
                )
                outbox.add_alerts(session, line, channels, article_id, now)

    @staticmethod
    def _about(session: Any, article_id: int) -> tuple[str, str, str | None]:
        article = session.get(Article, article_id)
        return article.title, article.feed.name, article.url

    def fail(self, article_id: int, error: str) -> None:
        for _ in range(3):
            record_failure(self.sessions, article_id, error)

    def deliver(self, article_id: int, channel: str, ok: bool = True) -> None:
        """One send of the article's row on CHANNEL: delivered, or refused for good (dead)."""
        with self.sessions() as session:
            alert_id = session.scalar(select(Alert.id).where(Alert.article_id == article_id, Alert.channel == channel))
        assert alert_id is not None
        result = Delivery(DeliveryStatus.DELIVERED) if ok else Delivery(DeliveryStatus.PERMANENT, "slack: 404 gone")
        outbox.record_attempt(self.sessions, [alert_id], result, RetryPolicy(1, 10, 3), None)


def desk_app(sessions: SessionFactory, **web: Any) -> Any:
    settings = WebSettings(users=[DeskUser(name="ana", password_hash=_HASH)], **web)  # type: ignore[list-item]
    return create_app(DeskContext(settings, sessions))


@asynccontextmanager
async def logged_in(sessions: SessionFactory, **web: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the desk on SESSIONS' database, logged in through the login form as "ana"."""
    transport = httpx.ASGITransport(app=desk_app(sessions, **web))
    async with httpx.AsyncClient(transport=transport, base_url="http://desk.test") as client:
        form = await client.get("/login")
        match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert match, form.text
        answer = await client.post(
            "/login", data={"username": "ana", "password": PASSWORD, "csrf_token": match.group(1), "next": "/alerts"}
        )
        assert answer.status_code == 303, answer.text
        yield client


async def walk(client: httpx.AsyncClient, path: str, params: dict[str, Any]) -> list[list[int]]:
    """Every page of an API list, following `next`: the ids of each page."""
    pages: list[list[int]] = []
    cursor = None
    while True:
        answer = await client.get(path, params={**params, **({"before": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == {"items", "next"}
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "the cursor does not move"
