"""The command line on a real database and the real model: each subcommand does what --help says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import select
from support.receivers import SlackReceiver

from monitor.cli import main
from monitor.store.db import make_engine, make_session_factory, migrations_dir
from monitor.store.models import Alert, Article, Feed

REPO = Path(__file__).resolve().parents[1]

ARTICLE = """North Korean hackers breached a state voter database, officials say

Election officials said hackers working for North Korea's intelligence services broke into the
state's voter registration database ahead of the presidential election. The FBI attributed the
intrusion to a group linked to Pyongyang.
"""


def config(tmp_path: Path, **extra: object) -> Path:
    settings = {
        "database_url": f"sqlite:///{tmp_path / 'cli.db'}",
        "seeds_dir": str(REPO / "seeds"),
        "cache_dir": str(tmp_path / "cache"),
        "feeds": [{"name": "Wire", "url": "http://127.0.0.1:9/rss.xml", "tags": ["wire"]}],
        **extra,
    }
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def invoke(*args: str, input: str | None = None) -> object:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_every_command_explains_itself() -> None:
    for command in ["run", "poll", "analyze", "kb", "feeds", "test-alert", "check-config", "eval", "alerts"]:
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "--config" in result.output, command
    assert invoke("db", "upgrade", "--help").exit_code == 0


def test_db_upgrade_then_feeds_lists_each_feed(tmp_path: Path) -> None:
    path = config(tmp_path)
    upgraded = invoke("db", "upgrade", "--config", str(path))
    head = ScriptDirectory(str(migrations_dir())).get_current_head()
    assert upgraded.exit_code == 0 and f"revision {head}" in upgraded.output
    listed = invoke("feeds", "--config", str(path))
    assert listed.exit_code == 0
    assert "Wire" in listed.output and "never polled" in listed.output


def test_check_config_hides_secrets(tmp_path: Path) -> None:
    secret = "https://hooks.slack.example/services/T1/B2/very-secret-token"
    path = config(
        tmp_path,
        alerts={
            "slack": {"webhook_url": secret},
            "email": {
                "host": "smtp.example",
                "password": "hunter2-secret",
                "username": "u",
                "from": "a@b.example",
                "to": ["c@d.example"],
            },
        },
    )
    result = invoke("check-config", "--config", str(path))
    assert result.exit_code == 0
    assert "very-secret-token" not in result.output and "hunter2-secret" not in result.output
    assert "**********" in result.output


def test_config_errors_exit_2_with_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("analysis: {batch_size: many}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["check-config", "--config", str(path)])
    assert result.exit_code == 2
    assert "analysis.batch_size" in result.output


@pytest.mark.slow
@pytest.mark.usefixtures("exported_models")  # the command builds the model from its own settings
def test_analyze_prints_what_an_article_would_trigger_and_stores_nothing(tmp_path: Path) -> None:
    path = config(tmp_path)
    result = invoke("analyze", "-", "--config", str(path), input=ARTICLE)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["relevant"] is True
    countries = [f for f in report["findings"] if f["kind"] == "country"]
    assert [f["value"] for f in countries] == ["North Korea"]
    assert "North Korea" in countries[0]["evidence"]
    assert not (tmp_path / "cli.db").exists()


PAGE = """<!DOCTYPE html><html><head><title>Site name | Home</title>
<meta property="article:published_time" content="2026-05-04T09:00:00Z"></head><body>
<nav><a href="/">Home</a> <a href="/world">World</a> <a href="/login">Sign in to your account</a></nav>
<article><h1>North Korean hackers breached a state voter database, officials say</h1>
<p>Election officials said hackers working for North Korea's intelligence services broke into the
state's voter registration database in an attempt to disrupt the presidential election.</p>
<p>The FBI attributed the intrusion to a group linked to Pyongyang, and said it had warned the
state's election office weeks before the breach was found.</p></article>
<footer>Subscribe to our newsletter. Copyright Site name.</footer></body></html>
"""


@pytest.mark.slow
@pytest.mark.usefixtures("exported_models")
def test_analyze_reads_an_html_page_by_its_article_text(tmp_path: Path) -> None:
    # A saved news page: its headline and date are the page's, the menus and footer are not text.
    result = invoke("analyze", "-", "--config", str(config(tmp_path)), input=PAGE)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["relevant"] is True, report["reason"]
    assert [f["value"] for f in report["findings"] if f["kind"] == "country"] == ["North Korea"]
    evidence = " ".join(m["evidence"] for m in report["mentions"])
    assert "<" not in evidence and "newsletter" not in evidence and "Sign in" not in evidence
    elections = [m["about"] for m in report["mentions"] if "/election/" in m["about"]]
    assert elections and all(about.endswith("2026") for about in elections), elections  # the page's own date


@pytest.mark.slow
@pytest.mark.usefixtures("cli_shares_the_model")
def test_kb_shows_the_seed_knowledge_with_sources(tmp_path: Path) -> None:
    path = config(tmp_path)
    result = invoke("kb", "--json", "--config", str(path))
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    countries = {f["value"] for f in facts if f["kind"] == "country"}
    assert {"Russia", "China", "Iran"} <= countries
    assert all(f["evidence"] and f["source"].endswith(".txt") for f in facts)
    table = invoke("kb", "--config", str(path))
    assert "Russia" in table.stdout and "evidence" in table.stdout and "source" in table.stdout


def test_test_alert_reaches_slack(tmp_path: Path) -> None:
    with SlackReceiver() as slack:
        path = config(tmp_path, alerts={"console": {"enabled": False}, "slack": {"webhook_url": slack.url}})
        result = invoke("test-alert", "--config", str(path))
        assert result.exit_code == 0, result.output
        assert "slack: delivered" in result.output
        assert len(slack.messages) == 1
        assert "test" in slack.messages[0].body.decode().lower()


def test_alerts_lists_and_requeues_dead_alerts(tmp_path: Path) -> None:
    path = config(tmp_path)
    assert invoke("db", "upgrade", "--config", str(path)).exit_code == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    with make_session_factory(engine).begin() as session:
        feed = Feed(name="Wire", url="http://127.0.0.1:9/rss.xml")
        session.add(feed)
        session.flush()
        article = Article(feed_id=feed.id, entry_key="k", title="Some title")
        session.add(article)
        session.flush()
        session.add(
            Alert(
                article_id=article.id,
                channel="slack",
                payload={},
                status="dead",
                attempts=12,
                last_error="slack: 404 not found",
            )
        )
    listed = invoke("alerts", "--config", str(path))
    assert listed.exit_code == 0 and "slack: 404 not found" in listed.output and "dead" in listed.output
    requeued = invoke("alerts", "retry", "--all-failed", "--config", str(path))
    assert requeued.exit_code == 0 and "requeued 1" in requeued.output
    with make_session_factory(engine)() as session:
        alert = session.scalar(select(Alert))
        assert (alert.status, alert.attempts) == ("pending", 0)
    engine.dispose()


def test_a_backend_that_cannot_run_is_a_config_error(tmp_path: Path) -> None:
    path = config(tmp_path, analysis={"backend": "openvino", "device": "cuda"})
    result = CliRunner().invoke(main, ["analyze", "-", "--config", str(path)], input="A title\n\nSome text.")
    assert result.exit_code == 2
    assert "analysis.backend: openvino runs on the CPU" in result.output and "cuda" in result.output


def test_a_missing_seeds_folder_is_a_config_error(tmp_path: Path) -> None:
    path = config(tmp_path, seeds_dir=str(tmp_path / "no-seeds"))
    result = CliRunner().invoke(main, ["analyze", "-", "--config", str(path)], input="A title\n\nSome text.")
    assert result.exit_code == 2
    assert f"seeds_dir: folder {tmp_path / 'no-seeds'} does not exist" in result.output
    assert "Traceback" not in result.output


def test_eval_names_the_broken_line_of_a_stream_before_loading_the_model(tmp_path: Path) -> None:
    stream = tmp_path / "stream.jsonl"
    stream.write_text('{"id": "a1", "title": "T", "text": "x"}\n{"title": "no id"}\n', encoding="utf-8")
    path = config(tmp_path, seeds_dir=str(tmp_path / "no-seeds"))
    result = CliRunner().invoke(main, ["eval", str(stream), "--config", str(path)])
    assert result.exit_code == 2
    assert f"{stream}:2: not a stream record" in result.output
    assert "seeds_dir" not in result.output
