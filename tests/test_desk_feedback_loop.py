"""The point of the desk's feedback, end to end on the real model: a wrong fact learned from one
article suppresses the alert of a later article; marked wrong on the desk, it no longer does, and
the next such article alerts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from monitor.process import process_articles
from monitor.store.db import SessionFactory
from monitor.store.knowledge import store_seed_knowledge
from monitor.store.models import Article, FactMatch, Feed, Finding, KnownFact
from tests.analysis_fixtures import detector, seed_facts
from tests.feedback_fixtures import desk_client, log_in

pytestmark = pytest.mark.slow

PUBLISHED = datetime(2025, 3, 1, tzinfo=UTC)
FIRST = (
    "Officials say Venezuelan hackers targeted the county election office",
    "Officials said Venezuelan hackers targeted the county's election office in an attempt to interfere "
    "in the vote and undermine confidence in the results.",
)
# Another report of the same kind: nothing in it is new once the first one is known.
REPEAT = (
    "Venezuelan hackers again targeted the county election office, officials say",
    "Officials said on Friday that Venezuelan hackers had again targeted the county's election office in "
    "an attempt to interfere in the vote and undermine confidence in the results.",
)


def arrive(sessions: SessionFactory, feed_id: int, key: str, title: str, text: str) -> int:
    with sessions.begin() as session:
        article = Article(
            feed_id=feed_id,
            entry_key=key,
            url=f"https://news.example/{key}",
            title=title,
            text=text,
            published_at=PUBLISHED,
        )
        session.add(article)
        session.flush()
        return article.id


def process(sessions: SessionFactory) -> list[Finding]:
    """One processing run (the knowledge base read afresh, no recent stories: each article is its
    own story here), and the findings it recorded."""
    before = _finding_ids(sessions)
    report = process_articles(sessions, detector(), ["slack"], story_days=0, limit=10)
    assert report.processed == 1 and report.failed == 0
    with sessions() as session:
        return [f for f in session.scalars(select(Finding).order_by(Finding.id)) if f.id not in before]


def _finding_ids(sessions: SessionFactory) -> set[int]:
    with sessions() as session:
        return set(session.scalars(select(Finding.id)))


def test_a_fact_marked_wrong_on_the_desk_stops_suppressing_alerts(sessions: SessionFactory) -> None:
    with sessions.begin() as session:
        feed = Feed(name="wire", url="http://feeds.local/wire.xml")
        session.add(feed)
        store_seed_knowledge(session, list(seed_facts()))
        session.flush()
        feed_id = feed.id

    arrive(sessions, feed_id, "first", *FIRST)
    first = process(sessions)
    targets = [f for f in first if f.kind == "target"]
    assert targets, [(f.kind, f.value, f.reason) for f in first]

    # The repeat brings nothing new: its target is absorbed by the fact the first article taught.
    repeat_id = arrive(sessions, feed_id, "repeat", *REPEAT)
    assert process(sessions) == []
    with sessions() as session:
        absorbed = session.scalars(select(FactMatch).where(FactMatch.article_id == repeat_id)).all()
        taught = {f.id: f for f in session.scalars(select(KnownFact).where(KnownFact.source_kind == "article"))}
    assert {m.fact_id for m in absorbed if m.kind == "target"} & set(taught), [(m.kind, m.value) for m in absorbed]

    # An analyst marks the first article's target wrong, on the desk.
    with desk_client(sessions) as client:
        token = log_in(client)
        for finding in targets:
            answer = client.post(f"/findings/{finding.id}/wrong", data={"csrf_token": token, "back": "/alerts"})
            assert answer.status_code == 303, answer.text
    with sessions() as session:
        retired = session.scalars(select(KnownFact).where(KnownFact.retired_at.is_not(None))).all()
    assert {f.value for f in retired} == {f.value for f in targets}

    # The next such article alerts on the target again; what was right (the country) stays known.
    arrive(sessions, feed_id, "again", REPEAT[0], REPEAT[1] + " The office said its systems were restored.")
    again = process(sessions)
    assert {f.kind for f in again} == {"target"}, [(f.kind, f.value, f.reason) for f in again]
    assert {f.country for f in first if f.kind == "country"} == {"Venezuela"}
