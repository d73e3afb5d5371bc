"""Rows and clients for the desk's feedback and knowledge tests: a small knowledge base with an
article that taught a fact, its finding, and a logged-in desk (session with CSRF, or API token)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from support.passwords import quick_hash as hash_password

from monitor.config import DeskUser, WebSettings
from monitor.desk.app import create_app
from monitor.desk.context import DeskContext
from monitor.store.db import SessionFactory
from monitor.store.models import Article, FactMatch, Feed, Finding, KnownFact
from monitor.store.tokens import create_token

NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)
PASSWORD = "correct horse battery staple"
_HASH = hash_password(PASSWORD)


@dataclass(frozen=True)
class Rows:
    feed: int
    article: int  # taught "campaigns" (a wrong target) and "Venezuela"
    later: int  # an article whose mention "campaigns" absorbed
    seed_target: int  # a seed target: "Trump campaign"
    seed_country: int  # a seed country: "Russia"
    wrong_fact: int  # target "campaigns", taught by ARTICLE
    country_fact: int  # country "Venezuela", taught by ARTICLE
    finding: int  # ARTICLE's finding "campaigns", closest to the seed target
    country_finding: int  # ARTICLE's finding "Venezuela"


def add_rows(sessions: SessionFactory, evidence: str = "Hackers targeted campaigns across the state.") -> Rows:
    with sessions.begin() as session:
        feed = Feed(name="wire", url="http://feeds.local/wire.xml")
        session.add(feed)
        session.flush()
        article = Article(
            feed_id=feed.id, entry_key="a1", url="https://news.example/a1", title="Venezuelan hackers hit campaigns"
        )
        later = Article(feed_id=feed.id, entry_key="a2", url="https://news.example/a2", title="Campaigns hit again")
        session.add_all([article, later])
        session.flush()
        for one in (article, later):
            one.status, one.relevant, one.relevance, one.processed_at = "processed", True, 0.8, NOW
        seed_target = KnownFact(
            kind="target",
            value="Trump campaign",
            evidence="The Trump campaign was hacked.",
            source_kind="seed",
            source_ref="seed-iran.txt",
            first_seen_at=NOW,
        )
        seed_country = KnownFact(
            kind="country",
            value="Russia",
            evidence="Russia interfered.",
            source_kind="seed",
            source_ref="seed-russia.txt",
            first_seen_at=NOW,
        )
        wrong_fact = KnownFact(
            kind="target",
            value="campaigns",
            evidence=evidence,
            source_kind="article",
            source_ref=article.url or "",
            article_id=article.id,
            first_seen_at=NOW,
        )
        country_fact = KnownFact(
            kind="country",
            value="Venezuela",
            evidence="Venezuelan hackers did it.",
            source_kind="article",
            source_ref=article.url or "",
            article_id=article.id,
            first_seen_at=NOW,
        )
        session.add_all([seed_target, seed_country, wrong_fact, country_fact])
        session.flush()
        finding = Finding(
            article_id=article.id,
            kind="target",
            value="campaigns",
            evidence=evidence,
            closest_fact_id=seed_target.id,
            closest_value="Trump campaign",
            similarity=0.41,
            reason="new target",
        )
        country_finding = Finding(
            article_id=article.id,
            kind="country",
            value="Venezuela",
            evidence="Venezuelan hackers did it.",
            country="Venezuela",
            reason="new country",
        )
        session.add_all([finding, country_finding])
        session.add_all(
            FactMatch(article_id=later.id, fact_id=wrong_fact.id, kind="target", value=v, evidence=v, similarity=0.9)
            for v in ("campaigns", "the campaigns")
        )
        session.flush()
        return Rows(
            feed.id,
            article.id,
            later.id,
            seed_target.id,
            seed_country.id,
            wrong_fact.id,
            country_fact.id,
            finding.id,
            country_finding.id,
        )


def desk_client(sessions: SessionFactory) -> TestClient:
    web = WebSettings(users=[DeskUser(name="ana", password_hash=_HASH)], secure_cookies="never")
    return TestClient(create_app(DeskContext(web, sessions)), follow_redirects=False)


def log_in(client: TestClient) -> str:
    """Logs ana in; the session's CSRF token, as the desk's forms carry it."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    answer = client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token.group(1)})
    assert answer.status_code == 303, answer.text
    form = client.get("/knowledge")
    assert form.status_code == 200, form.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert found
    return found.group(1)


def api_token(sessions: SessionFactory, name: str = "script") -> dict[str, str]:
    with sessions.begin() as session:
        token = create_token(session, name, NOW)
    return {"Authorization": f"Bearer {token}"}
