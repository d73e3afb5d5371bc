"""`monitor feedback export`: the analysts' reviews as a stream that `monitor eval` reads and scores."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from monitor.analysis.evaluate.stream import load_stream
from monitor.cli import main
from monitor.store import feedback
from monitor.store.db import make_engine, make_session_factory
from monitor.store.models import Article
from tests.conftest import REPO, migrated_sqlite
from tests.feedback_fixtures import NOW, add_rows


def test_the_export_labels_each_reviewed_article_as_the_analysts_judged_it(
    tmp_path: Path, sqlite_template: Path
) -> None:
    url = migrated_sqlite(sqlite_template, tmp_path / "monitor.db")
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    rows = add_rows(sessions)
    with sessions.begin() as session:
        off_topic = Article(feed_id=rows.feed, entry_key="a3", url="https://news.example/a3", title="Markets")
        session.add(off_topic)
        session.flush()
        off_topic.relevant, off_topic.published_at = True, NOW
        session.add(Article(feed_id=rows.feed, entry_key="a4", title="Never reviewed", relevant=True))
    with sessions.begin() as session:
        feedback.confirm(session, rows.country_finding, "ana", NOW)
        feedback.wrong(session, rows.finding, "ana", NOW)
        feedback.missed(session, rows.later, "ana", NOW, kind="denial", value="Venezuela", about="hacking campaigns")
        cuba = feedback.missed(session, rows.later, "ana", NOW, kind="country", value="Cuba")
        feedback.not_relevant(session, off_topic.id, "ana", NOW)
    with sessions.begin() as session:
        feedback.undo(session, cuba, "ana", NOW)  # an undone "missed" labels nothing
    engine.dispose()
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump({"database_url": url, "seeds_dir": str(REPO / "seeds"), "feeds": []}))

    out = tmp_path / "reviews.jsonl"
    result = CliRunner().invoke(main, ["feedback", "export", str(out), "--config", str(config)], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    records = {r.id: r for r in load_stream(out)}  # what `monitor eval` reads
    assert set(records) == {f"article-{rows.article}", f"article-{rows.later}", f"article-{off_topic.id}"}
    first = records[f"article-{rows.article}"].gold
    assert first["new"] == {"countries": ["Venezuela"], "targets": [], "denials": []} and first["alert"] is True
    later = records[f"article-{rows.later}"].gold
    assert later["new"] == {"countries": [], "targets": [], "denials": ["Venezuela"]}
    assert later["denials"] == [{"by": "Venezuela", "about": "hacking campaigns"}]
    assert records[f"article-{off_topic.id}"].gold == {
        "relevant": False,
        "countries": [],
        "targets": [],
        "denials": [],
        "new": {"countries": [], "targets": [], "denials": []},
        "alert": False,
        "same_story_as": None,
    }
    assert all(json.loads(line)["title"] for line in out.read_text().splitlines())
