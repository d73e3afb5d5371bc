"""What the database costs per article in process_articles, SQLite beside PostgreSQL in one run.

    python bench/database.py                # 1,280 articles on each
    python bench/database.py --articles 5000 --rounds 3

The detector here is a stand-in that judges every article off-topic at once (no model): what is
left is the processing loop's own work, claims, loading the batch, writing the verdicts, the
commits. Off-topic articles are 90% of a real stream, so this is most of what the database costs.
The relevant articles' transactions (findings, facts, outbox rows) are in bench/pipeline.py's
"database" share. PostgreSQL runs in a database of its own on the local server, dropped after.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.analysis.detector import Analysis, ArticleInput, Detector, Screen
from monitor.analysis.knowledge import KnowledgeBase
from monitor.process import process_articles
from monitor.store.db import make_engine, make_session_factory, upgrade
from monitor.store.models import Article, Feed, KnownFact

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


class OffTopic:
    """Every article far from the topic, decided without a model."""

    def prescreen(self, articles: Sequence[ArticleInput]) -> list[Screen]:
        return [Screen(False, 0.1, "far from the topic") for _ in articles]

    def embed_ahead(self, articles: Sequence[ArticleInput]) -> None:
        return None

    def analyze(self, article: ArticleInput, kb: KnowledgeBase) -> Analysis:
        return Analysis(
            relevance=0.1,
            relevant=False,
            reason="far from the topic",
            vector=np.zeros(384, dtype=np.float32),
            closest_seed=None,
            mentions=[],
            findings=[],
            same_story_as=None,
            new_facts=[],
            title=article.title,
        )


def per_article_ms(url: str, articles: int) -> float:
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        feed = Feed(name="wire", url="http://feeds.local/wire.xml")
        session.add(feed)
        session.flush()
        session.add_all(
            Article(
                feed_id=feed.id,
                entry_key=str(i),
                url=f"http://news.local/{i}",
                title=f"Markets close higher {i}",
                text="Shares rose. " * 50,
            )
            for i in range(articles)
        )
        session.add_all(
            KnownFact(kind="country", value=f"Country {i}", evidence="", source_kind="seed", source_ref="seed")
            for i in range(200)
        )
    started = time.perf_counter()
    processed = 0
    while True:
        report = process_articles(sessions, cast(Detector, OffTopic()), ["slack"], story_days=7, limit=64)
        if not report.processed:
            break
        processed += report.processed
    took = time.perf_counter() - started
    engine.dispose()
    assert processed == articles, (processed, articles)
    return took / articles * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=1280)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import psycopg

    print(f"command: {' '.join(['python', *sys.argv])}")
    results: dict[str, list[float]] = {"SQLite": [], "PostgreSQL": []}
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            results["SQLite"].append(per_article_ms(f"sqlite:///{Path(tmp) / 'bench.db'}", args.articles))
        name = f"monitor_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(ADMIN, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        try:
            results["PostgreSQL"].append(
                per_article_ms(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", args.articles)
            )
        finally:
            with psycopg.connect(ADMIN, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for database, values in results.items():
        print(
            f"{database:10s} {statistics.median(values):.2f} ms of database work per off-topic article "
            f"(median of {len(values)} rounds of {args.articles}; range {min(values):.2f}-{max(values):.2f})"
        )
    ratios = [p / s for p, s in zip(results["PostgreSQL"], results["SQLite"], strict=True)]
    print(f"PostgreSQL / SQLite, same round: {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
