"""The feeds page and API on SQLite and PostgreSQL: status, errors and next poll shown (escaped,
credentials masked); pause and resume by an analyst, audited; a paused feed is never polled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select
from support.rows import add_feed, load_feed
from support.webapp import ANALYST, csrf_in, desk_app, log_in, serve

from monitor.cli import main
from monitor.config import FeedConfig
from monitor.store.db import SessionFactory
from monitor.store.feeds import all_feeds, claim_due_feeds, named_targets, pause_feed, resume_feed, sync_feeds
from monitor.store.models import Feedback

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def audit(sessions: SessionFactory) -> list[tuple[str, str, int]]:
    with sessions() as session:
        rows = session.scalars(select(Feedback).order_by(Feedback.id))
        return [(row.action, row.actor, row.detail["feed_id"]) for row in rows]


def test_a_paused_feed_is_not_claimed_nor_polled_by_poll_once_and_config_sync_keeps_it_paused(
    sessions: SessionFactory,
) -> None:
    due = add_feed(sessions, "Due", "http://127.0.0.1:9/due.xml", next_poll_at=NOW - timedelta(minutes=5))
    other = add_feed(sessions, "Other", "http://127.0.0.1:9/o.xml", next_poll_at=NOW - timedelta(minutes=5))
    with sessions.begin() as session:
        pause_feed(session, due, "ana", NOW)
        pause_feed(session, due, "bob", NOW)  # already paused: nothing changes, nothing recorded
    with sessions.begin() as session:
        assert claim_due_feeds(session, NOW, limit=10) == [other]
    assert [t.name for t in named_targets(sessions, None)] == ["Other"]
    assert named_targets(sessions, "Due") == []

    configs = [
        FeedConfig(name="Due", url="http://127.0.0.1:9/due.xml"),
        FeedConfig(name="Other", url="http://127.0.0.1:9/o.xml"),
    ]
    with sessions.begin() as session:
        sync_feeds(session, configs, NOW)
    paused = load_feed(sessions, due)
    assert paused.paused_at is not None and paused.paused_by == "ana"

    with sessions.begin() as session:
        resume_feed(session, due, "bob", NOW + timedelta(hours=1))
    resumed = load_feed(sessions, due)
    assert resumed.paused_at is None and resumed.paused_by is None
    with sessions.begin() as session:
        assert due in claim_due_feeds(session, NOW + timedelta(hours=1), limit=10)
    assert audit(sessions) == [("pause", "ana", due), ("resume", "bob", due)]
    with sessions.begin() as session, pytest.raises(LookupError):
        pause_feed(session, 999_999, "ana", NOW)


async def test_the_feeds_page_shows_status_and_errors_escaped_and_pauses_and_resumes(sessions: SessionFactory) -> None:
    hostile = add_feed(
        sessions,
        "<script>alert('name')</script><b>Wire</b>",
        "https://user:hunter2@feeds.example/rss?token=abc",
        next_poll_at=datetime.now(UTC),
        last_status="error",
        last_http_status=500,
        last_error="<img src=x onerror=alert(1)> at https://user:hunter2@feeds.example/rss",
        consecutive_errors=3,
    )
    async with serve(desk_app(sessions)) as client:
        await log_in(client)
        page = await client.get("/feeds")
        assert page.status_code == 200
        html = page.text
        assert "<script>alert(" not in html and "<img src=x" not in html and "<b>Wire" not in html
        assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
        assert "hunter2" not in html
        assert "HTTP 500" in html and ">3<" in html

        csrf = csrf_in(html)
        paused = await client.post(f"/feeds/{hostile}/pause", data={"csrf_token": csrf})
        assert paused.status_code == 303 and paused.headers["location"].startswith("/feeds")
        after = (await client.get("/feeds")).text
        assert "paused</span> by ana" in after and "Resume" in after

        listed = (await client.get("/api/feeds", headers={"X-CSRF-Token": csrf})).json()
        assert listed["next"] is None
        (item,) = listed["items"]
        assert item["paused"] is True and item["paused_by"] == ANALYST and item["next_poll_at"] is None
        assert "hunter2" not in str(item) and item["consecutive_errors"] == 3

        resumed = await client.post(f"/api/feeds/{hostile}/resume", headers={"X-CSRF-Token": csrf})
        assert resumed.status_code == 200 and resumed.json()["paused"] is False
        assert (await client.post("/api/feeds/424242/pause", headers={"X-CSRF-Token": csrf})).status_code == 404
    assert audit(sessions) == [("pause", ANALYST, hostile), ("resume", ANALYST, hostile)]


def test_monitor_feeds_says_who_paused_a_feed(tmp_path: Path, database_url: str, sessions: SessionFactory) -> None:
    path = tmp_path / "monitor.yaml"
    feeds = [{"name": "Wire", "url": "http://127.0.0.1:9/rss.xml"}]
    path.write_text(yaml.safe_dump({"database_url": database_url, "feeds": feeds}), encoding="utf-8")
    assert CliRunner().invoke(main, ["feeds", "--config", str(path)]).exit_code == 0
    with sessions.begin() as session:
        (wire,) = all_feeds(session)
        pause_feed(session, wire.id, "ana", NOW)
    listed = CliRunner().invoke(main, ["feeds", "--config", str(path)], catch_exceptions=False)
    assert listed.exit_code == 0 and "paused by ana" in listed.output
