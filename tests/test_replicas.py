"""Several `monitor run` processes on one PostgreSQL share the work: each item once, none lost.

These start real service processes (each loads the model), so they are the slowest tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from support.feedserver import FeedItem, FeedServer, rss_document
from support.receivers import SlackReceiver

from monitor.store.db import make_engine, make_session_factory
from monitor.store.models import Alert, Article

# Every test here runs the whole service on the real model: slow, so the fast tier does not even
# import the module. Services started here find the model already exported in their cache_dir.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("exported_models")]

REPO = Path(__file__).resolve().parents[1]
COUNTRIES = ["North Korea", "Venezuela", "Belarus", "Cuba", "Syria", "Turkey", "Egypt", "Vietnam"]


def accusation(n: int, country: str) -> FeedItem:
    return FeedItem(
        title=f"Officials say {country} hackers targeted election office {n}",
        link=f"http://news.example/{n}",
        guid=f"item-{n}",
        description=(
            f"Election officials said hackers working for the government of {country} broke into the "
            f"voter registration systems of county election office {n} ahead of the national election. "
            f"Investigators attributed the intrusion to {country}'s intelligence service."
        ),
    )


def filler(n: int) -> FeedItem:
    return FeedItem(
        title=f"Local bakery wins award number {n}",
        link=f"http://news.example/bakery-{n}",
        guid=f"bakery-{n}",
        description=f"A family bakery in the old town won its {n}th regional prize for sourdough bread.",
    )


def start_replica(config: Path, slack: SlackReceiver, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TEST_SLACK_URL": slack.url, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


def processed_by(log: Path) -> list[int]:
    ids = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("msg") == "article processed":
                ids.append(record["article_id"])
    return ids


def wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def replicas_db(empty_postgres: str) -> str:
    return empty_postgres


def test_three_replicas_share_the_work_and_survive_a_killed_one(tmp_path: Path, replicas_db: str) -> None:
    engine = make_engine(replicas_db)
    sessions = make_session_factory(engine)
    with FeedServer() as server, SlackReceiver() as slack:
        first = [accusation(n, COUNTRIES[n % 4]) if n % 3 == 0 else filler(n) for n in range(24)]
        server.set_feed("/a.xml", rss_document(first[:12]))
        server.set_feed("/b.xml", rss_document(first[12:]))
        config = tmp_path / "replica.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "database_url": replicas_db,
                    "seeds_dir": str(REPO / "seeds"),
                    "cache_dir": str(tmp_path / "cache"),
                    "claim_lease": "5s",
                    "shutdown_grace": "10s",
                    "http": {"enabled": False},
                    "poll": {"interval": "1s"},
                    "analysis": {"batch_articles": 2},
                    "feeds": [{"name": "A", "url": server.url("/a.xml")}, {"name": "B", "url": server.url("/b.xml")}],
                    "alerts": {"console": {"enabled": False}, "slack": {"webhook_url": "${TEST_SLACK_URL}"}},
                }
            ),
            encoding="utf-8",
        )
        logs = [tmp_path / f"replica-{i}.log" for i in range(3)]
        processes = [start_replica(config, slack, log) for log in logs]
        try:

            def all_processed() -> bool:
                with sessions() as session:
                    return (
                        session.scalar(select(func.count()).select_from(Article).where(Article.status == "processed"))
                        == 24
                    )

            wait_for(all_processed, 240, "24 processed articles")
            with sessions() as session:
                alerts = session.scalar(select(func.count()).select_from(Alert))
            wait_for(lambda: len(slack.messages) >= alerts, 60, "every alert delivered")
            time.sleep(2)  # a duplicate, if any, would arrive now

            per_replica = [processed_by(log) for log in logs]
            counts = Counter(article_id for ids in per_replica for article_id in ids)
            assert len(counts) == 24 and set(counts.values()) == {1}, "each article processed exactly once"
            assert sum(1 for ids in per_replica if ids) >= 2, f"work not spread: {[len(i) for i in per_replica]}"
            delivered = Counter(m.json["text"] for m in slack.messages)
            assert alerts >= 4 and len(slack.messages) == alerts and set(delivered.values()) == {1}

            # Kill one replica with work in hand; the others take it over when its lease expires.
            second = [accusation(n, COUNTRIES[4 + n % 4]) if n % 4 == 0 else filler(n) for n in range(100, 130)]
            server.set_feed("/a.xml", rss_document(second))

            def busy_replica() -> int | None:
                for index, log in enumerate(logs):
                    if any(article_id > 24 for article_id in processed_by(log)):
                        return index
                return None

            wait_for(lambda: busy_replica() is not None, 120, "a replica to take new work")
            victim = processes[busy_replica()]
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)

            def everything_processed() -> bool:
                with sessions() as session:
                    return (
                        session.scalar(select(func.count()).select_from(Article).where(Article.status == "processed"))
                        == 54
                    )

            wait_for(everything_processed, 240, "the survivors to finish the killed replica's work")
            with sessions() as session:
                assert (
                    session.scalar(select(func.count()).select_from(Article).where(Article.status != "processed")) == 0
                )
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
    engine.dispose()


def test_sigterm_stops_claiming_and_exits_within_the_grace_period(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'grace.db'}"
    with FeedServer() as server, SlackReceiver() as slack:
        server.set_feed("/a.xml", rss_document([accusation(n, COUNTRIES[n % 8]) for n in range(60)]))
        config = tmp_path / "grace.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "database_url": url,
                    "seeds_dir": str(REPO / "seeds"),
                    "cache_dir": str(tmp_path / "cache"),
                    "shutdown_grace": "10s",
                    "http": {"enabled": False},
                    "analysis": {"batch_articles": 60},
                    "feeds": [{"name": "A", "url": server.url("/a.xml")}],
                    "alerts": {"console": {"enabled": False}, "slack": {"webhook_url": "${TEST_SLACK_URL}"}},
                }
            ),
            encoding="utf-8",
        )
        log = tmp_path / "grace.log"
        process = start_replica(config, slack, log)
        try:
            wait_for(lambda: len(processed_by(log)) >= 2, 180, "processing to start")
            asked = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)
            took = time.monotonic() - asked
        finally:
            if process.poll() is None:
                process.kill()
    assert code == 0
    assert took < 10 + 5, f"exited {took:.1f}s after SIGTERM; the grace period is 10s"
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        left = list(session.scalars(select(Article).where(Article.status == "new")))
        assert left, "the service stopped before finishing the batch, as it should"
        assert all(article.lease_until is None for article in left), "unstarted work is handed back"
    engine.dispose()
