"""Cheap first: an article far from the topic is judged on its title and lead, with a reason."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

from monitor.analysis.detector import ArticleInput, Detector, _lead
from monitor.analysis.embedder import Embedder
from monitor.analysis.knowledge import KnowledgeBase
from monitor.config import AnalysisSettings
from monitor.process import process_articles
from monitor.store.db import SessionFactory
from monitor.store.models import Article, Feed
from tests.analysis_fixtures import detector, eval_file, seed_facts

pytestmark = pytest.mark.slow

NOW = datetime(2025, 3, 1, tzinfo=UTC)

SPORT = ArticleInput(
    title="Chiefs edge Eagles in overtime to win another Super Bowl",
    text=(
        "Patrick Mahomes found Mecole Hardman in the end zone in overtime as Kansas City won again.\n\n"
        "The defence held the Eagles to a field goal on their opening drive of the extra period.\n\n"
        "Coach Andy Reid said the team would enjoy the parade before thinking about next season.\n\n"
        "Tickets for the victory parade sold out within minutes on Monday morning."
    ),
    url="https://news.example/sport/super-bowl",
    published=NOW,
)

# Title and lead about turnout; the allegation comes three paragraphs down.
BURIED = ArticleInput(
    title="Voters turn out in force as county precincts report long queues",
    text=(
        "Queues stretched around the block at several polling stations on Tuesday morning.\n\n"
        "Poll workers handed out water as temperatures climbed in the afternoon.\n\n"
        "Officials said Russian hackers targeted the county's election website in an attempt to "
        "interfere in the vote and undermine confidence in the results."
    ),
    url="https://news.example/turnout-and-hackers",
    published=NOW,
)


@contextmanager
def encoded(embedder: Embedder) -> Iterator[list[str]]:
    """The texts the model itself encodes while the block runs (memo hits are not encoded)."""
    seen: list[str] = []
    encoder = embedder._encoder
    original = encoder.encode

    def record(texts, batch_size):  # type: ignore[no-untyped-def]
        seen.extend(texts)
        return original(texts, batch_size)

    encoder.encode = record  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        encoder.encode = original  # type: ignore[method-assign]


def _detector(**settings: float) -> Detector:
    base = detector()
    return Detector(base.embedder, base.corpus, AnalysisSettings(**settings), base.extractor)


def test_an_off_topic_article_is_rejected_on_title_and_lead_with_a_reason() -> None:
    fresh = ArticleInput(SPORT.title, SPORT.text + "\n\nA late addition that no model read.", SPORT.url, NOW)
    kb = KnowledgeBase(seed_facts())
    with encoded(detector().embedder) as texts:
        analysis = detector().analyze(fresh, kb)
    assert not analysis.relevant and not analysis.findings and not analysis.mentions
    assert analysis.relevance < AnalysisSettings().relevance_threshold
    assert "pre-screen" in analysis.reason and "no one is accused" in analysis.reason, analysis.reason
    assert analysis.closest_seed is not None
    # The title and the lead sentence went through the model; nothing further down did.
    assert not [t for t in texts if "parade" in t or "late addition" in t], texts
    assert texts and all(t in (fresh.title, fresh.text.split("\n")[0]) for t in texts), texts


def test_an_allegation_further_down_passes_the_pre_screen() -> None:
    analysis = detector().analyze(BURIED, KnowledgeBase(seed_facts()))
    assert analysis.relevant, analysis.reason
    assert "pre-screen" not in analysis.reason
    assert [m.value for m in analysis.mentions if m.kind == "country"] == ["Russia"]


def test_minus_one_turns_the_pre_screen_off() -> None:
    off = _detector(prescreen_threshold=-1)
    article = ArticleInput(SPORT.title, SPORT.text + "\n\nThe pre-screen is off for this one.", SPORT.url, NOW)
    kb = KnowledgeBase(seed_facts())
    with encoded(off.embedder) as texts:
        analysis = off.analyze(article, kb)
    assert not analysis.relevant and "pre-screen" not in analysis.reason
    assert any("pre-screen is off" in t for t in texts)


def test_every_relevant_dev_article_passes_and_most_off_topic_ones_without_allegation_do_not() -> None:
    rows = [json.loads(line) for line in eval_file("dev_stream.jsonl").read_text().splitlines() if line.strip()]
    articles = [ArticleInput(r["title"], r["text"], r["url"]) for r in rows]
    screens = detector().prescreen(articles)
    relevant = [s for s, r in zip(screens, rows, strict=True) if r["gold"]["relevant"]]
    off_topic = [s for s, r in zip(screens, rows, strict=True) if not r["gold"]["relevant"]]
    assert relevant and all(s.passed for s in relevant)
    rejected = [s for s in off_topic if not s.passed]
    assert len(rejected) >= len(off_topic) // 3, [s.reason for s in off_topic]
    assert all(s.score is not None and s.score < AnalysisSettings().prescreen_threshold for s in rejected)


def test_a_batch_embedded_ahead_is_not_encoded_again_and_judged_the_same() -> None:
    article = ArticleInput(
        BURIED.title, BURIED.text + "\n\nCounting went on late into the night.", "https://news.example/b2", NOW
    )
    screens = detector().prescreen([SPORT, article])
    assert [s.passed for s in screens] == [False, True]
    detector().embed_ahead([article])
    kb = KnowledgeBase(seed_facts())
    with encoded(detector().embedder) as texts:
        analysis = detector().analyze(article, kb)
    assert analysis.relevant
    assert not set(texts) & set(detector()._extract(article).sentences), texts


def _store(sessions: SessionFactory, articles: list[ArticleInput]) -> list[int]:
    with sessions.begin() as session:
        feed = Feed(name="wire", url="http://feeds.local/wire.xml")
        session.add(feed)
        session.flush()
        rows = [
            Article(feed_id=feed.id, entry_key=f"e{i}", url=a.url, title=a.title, text=a.text, published_at=a.published)
            for i, a in enumerate(articles)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def test_process_articles_screens_the_batch_and_embeds_only_what_passes(sessions: SessionFactory) -> None:
    tag = uuid.uuid4().hex[:8]  # texts the embedder's memo has not seen on another database
    sport = ArticleInput(
        SPORT.title, SPORT.text + f"\n\nStored for processing ({tag}).", "https://news.example/s3", NOW
    )
    buried = ArticleInput(
        BURIED.title, BURIED.text + f"\n\nStored for processing too ({tag}).", "https://news.example/b3", NOW
    )
    ids = _store(sessions, [sport, buried])
    seed_facts()  # derived before, so that only the articles' own work is watched
    with encoded(detector().embedder) as texts:
        report = process_articles(sessions, detector(), ["slack"], story_days=7, limit=10)
    assert (report.processed, report.relevant, report.failed) == (2, 1, 0)
    assert not [t for t in texts if f"Stored for processing ({tag})" in t]  # the sport article's tail
    assert [t for t in texts if f"Stored for processing too ({tag})" in t]
    with sessions() as session:
        rejected = session.get(Article, ids[0])
        assert rejected is not None and rejected.status == "processed" and rejected.relevant is False
        assert "pre-screen" in (rejected.analysis or {}).get("reason", "")


def test_the_lead_is_embedded_only_for_a_relevant_article() -> None:
    tag = uuid.uuid4().hex[:8]  # in the titles, so that the leads are new to the embedder's memo
    # An allegation passes the pre-screen, but the story is a trade dispute: not relevant.
    trade = ArticleInput(
        f"Brazil accuses Argentina of breaking beef export deal ({tag})",
        "Brazil's agriculture minister accused Argentina of breaking a beef export agreement.\n\n"
        "Argentina rejected the accusation on Tuesday.\n\n"
        "Cattle prices fell in Sao Paulo.",
        "https://news.example/beef",
        NOW,
    )
    buried = ArticleInput(f"{BURIED.title} ({tag})", BURIED.text, "https://news.example/b4", NOW)
    kb = KnowledgeBase(seed_facts())
    with encoded(detector().embedder) as texts:
        off = detector().analyze(trade, kb)
        on = detector().analyze(buried, kb)
    assert "pre-screen" not in off.reason and not off.relevant, off.reason
    assert on.relevant, on.reason
    # The lead (the first sentences joined) finds other outlets' versions of a relevant story only.
    assert _lead(detector()._extract(buried)) in texts
    assert _lead(detector()._extract(trade)) not in texts
    # What is stored for the article that is not relevant is its sentence closest to the seeds.
    sentences = detector()._extract(trade).sentences
    assert max(float(off.vector @ v) for v in detector().embedder.embed(sentences)) > 0.9999
