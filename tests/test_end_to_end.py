"""The whole path on real parts: a local feed, the real model, Slack and SMTP servers, both databases."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import func, select
from support.feedserver import FeedItem, FeedServer, rss_document
from support.receivers import SlackReceiver, SmtpReceiver

from monitor.config import Settings, load_settings
from monitor.service import AnalysisStage, Service, bootstrap, run_cycle
from monitor.store.models import Alert, Article, Feed, Finding, KnownFact

# Every test here runs the whole service on the real model: slow, so the fast tier does not even
# import the module. Services started here find the model already exported in their cache_dir.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("exported_models")]

REPO = Path(__file__).resolve().parents[1]

EVIDENCE = (
    "Federal investigators said hackers working for North Korea's military intelligence agency "
    "broke into the state's voter registration database in September."
)
NEW_COUNTRY_ARTICLE = FeedItem(
    title="North Korean hackers breached Ohio voter database, officials say",
    link="http://news.example/2024/10/ohio-voter-database?utm_source=rss",
    guid="news-example-ohio-1",
    pub_date="Tue, 15 Oct 2024 14:00:00 GMT",
    description=(
        "Ohio's secretary of state said on Tuesday that foreign hackers had accessed the state's "
        f"voter rolls ahead of the presidential election. {EVIDENCE} The FBI attributed the intrusion "
        "to a group linked to Pyongyang and said no votes were changed. Officials warned that the "
        "stolen registration data could be used to send voters false information about polling places."
    ),
)
OFF_TOPIC_ARTICLE = FeedItem(
    title="Chiefs edge Ravens in overtime thriller",
    link="http://news.example/2024/10/chiefs-ravens",
    guid="news-example-sport-1",
    pub_date="Tue, 15 Oct 2024 15:00:00 GMT",
    description="Patrick Mahomes threw for three touchdowns as Kansas City beat Baltimore 27-24 in overtime.",
)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver


def write_config(
    tmp_path: Path,
    database_url: str,
    feeds: list[dict[str, object]],
    slack: SlackReceiver,
    smtp: SmtpReceiver,
    http_port: int = 0,
) -> Path:
    config = {
        "http": {"host": "127.0.0.1", "port": http_port},
        "database_url": database_url,
        "seeds_dir": str(REPO / "seeds"),
        "cache_dir": str(tmp_path / "cache"),
        "poll": {"interval": "1s", "timeout": "3s"},
        "feeds": feeds,
        "alerts": {
            "console": {"enabled": False},
            "slack": {"webhook_url": "${TEST_SLACK_URL}"},
            "email": {
                "host": "127.0.0.1",
                "port": smtp.port,
                "from": "monitor@example.org",
                "to": ["analysts@example.org"],
                "timeout": "5s",
            },
            "retry_base": "1s",
            "max_attempts": 3,
        },
    }
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def slack_texts(payload: object) -> str:
    """Every text in a Block Kit payload, as the reader sees it (mrkdwn entities decoded)."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    found.append(value.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(payload)
    return "\n".join(found)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def settings_for(path: Path, slack: SlackReceiver) -> Settings:
    return load_settings(path, {"TEST_SLACK_URL": slack.url})


def cli(
    args: list[str], *, slack: SlackReceiver, timeout: float = 240, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TEST_SLACK_URL": slack.url, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,  # type: ignore[call-overload]
    )


async def cycle(settings: Settings, stage: AnalysisStage) -> tuple[Service, object]:
    service = bootstrap(settings, analysis=stage)
    try:
        report = await run_cycle(service)
    finally:
        await service.aclose()
    return service, report


async def test_a_new_country_alerts_once_on_slack_and_email(
    tmp_path: Path,
    database_url: str,
    analysis_stage: AnalysisStage,
    feed_server: FeedServer,
    slack: SlackReceiver,
    smtp: SmtpReceiver,
) -> None:
    feed_server.set_feed("/rss.xml", rss_document([OFF_TOPIC_ARTICLE, NEW_COUNTRY_ARTICLE]))
    path = write_config(
        tmp_path, database_url, [{"name": "Local Wire", "url": feed_server.url("/rss.xml")}], slack, smtp
    )
    settings = settings_for(path, slack)

    service, _ = await cycle(settings, analysis_stage)

    with service.sessions() as session:
        finding = session.scalar(select(Finding).where(Finding.kind == "country"))
        assert finding.value == "North Korea"
        evidence = finding.evidence
    assert "North Korea" in evidence and evidence in NEW_COUNTRY_ARTICLE.title + " " + NEW_COUNTRY_ARTICLE.description
    assert len(slack.messages) == 1
    slack_text = slack_texts(slack.messages[0].json)
    assert "New country: North Korea" in slack_text and evidence in slack_text
    assert "http://news.example/2024/10/ohio-voter-database" in slack_text
    assert "Local Wire" in slack_text
    assert len(smtp.messages) == 1
    mail = smtp.messages[0].message
    assert "North Korea" in mail["Subject"]
    plain = mail.get_body(preferencelist=("plain",)).get_content()
    assert evidence in plain and "Local Wire" in plain
    with service.sessions() as session:
        articles = {a.title: a for a in session.scalars(select(Article))}
        assert articles[OFF_TOPIC_ARTICLE.title].relevant is False
        assert articles[NEW_COUNTRY_ARTICLE.title].relevant is True
        fact = session.scalar(select(KnownFact).where(KnownFact.kind == "country", KnownFact.value == "North Korea"))
        assert fact is not None and fact.source_kind == "article" and fact.evidence == evidence
        assert session.scalar(select(func.count()).select_from(Alert).where(Alert.status == "delivered")) == 2

    # A second poll: the server answers 304 and nothing new is sent.
    await cycle(settings, analysis_stage)
    conditional = feed_server.requests_for("/rss.xml")[-1]
    assert conditional.headers.get("if-none-match") or conditional.headers.get("If-None-Match")
    assert (len(slack.messages), len(smtp.messages)) == (1, 1)

    # A restarted process (a real new one) finds everything done: still no duplicate.
    feed_server.set_feed("/rss.xml", rss_document([NEW_COUNTRY_ARTICLE, OFF_TOPIC_ARTICLE], title="reordered"))
    done = cli(["poll", "--once", "--config", str(path)], slack=slack)
    assert done.returncode == 0, done.stderr
    assert (len(slack.messages), len(smtp.messages)) == (1, 1)


async def test_a_broken_feed_and_a_refusing_smtp_server_break_nothing_else(
    tmp_path: Path,
    database_url: str,
    analysis_stage: AnalysisStage,
    feed_server: FeedServer,
    slack: SlackReceiver,
    smtp: SmtpReceiver,
) -> None:
    feed_server.set_feed("/good.xml", rss_document([NEW_COUNTRY_ARTICLE]))
    feed_server.set_feed("/broken.xml", b"<rss><channel><item><title>unclosed", content_type="application/rss+xml")
    feed_server.set_response("/html.xml", 200, {"Content-Type": "text/html"}, b"<html><body>not a feed</body></html>")
    feeds = [
        {"name": "Good", "url": feed_server.url("/good.xml")},
        {"name": "Broken", "url": feed_server.url("/broken.xml")},
        {"name": "Html", "url": feed_server.url("/html.xml")},
        {"name": "Unreachable", "url": "http://127.0.0.1:9/rss.xml"},
    ]
    path = write_config(tmp_path, database_url, feeds, slack, smtp)
    smtp.refuse(550, times=1)
    service, report = await cycle(settings_for(path, slack), analysis_stage)

    with service.sessions() as session:
        rows = {feed.name: feed for feed in session.scalars(select(Feed))}
        assert rows["Good"].last_status == "ok" and rows["Good"].consecutive_errors == 0
        assert rows["Unreachable"].consecutive_errors == 1
        assert rows["Unreachable"].last_error.startswith("fetch: ")
        assert rows["Html"].last_error.startswith("parse: ")
        assert rows["Unreachable"].next_poll_at > rows["Good"].last_polled_at
        email = session.scalar(select(Alert).where(Alert.channel == "email"))
        assert email.status == "dead" and "550" in email.last_error
        slack_alert = session.scalar(select(Alert).where(Alert.channel == "slack"))
        assert slack_alert.status == "delivered"
    assert len(slack.messages) == 1 and "New country: North Korea" in slack_texts(slack.messages[0].json)
    assert smtp.messages == []


def test_bad_config_refuses_to_start_with_the_key_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("poll:\n  interval: often\nalerts:\n  slak: {}\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "poll.interval" in done.stderr and "'often' is not a duration" in done.stderr
    assert "alerts.slak: unknown key" in done.stderr
    assert not (tmp_path / "data").exists()


def test_run_serves_until_sigterm_then_stops_cleanly(
    tmp_path: Path, feed_server: FeedServer, slack: SlackReceiver, smtp: SmtpReceiver
) -> None:
    feed_server.set_feed("/rss.xml", rss_document([NEW_COUNTRY_ARTICLE]))
    port = free_port()
    path = write_config(
        tmp_path,
        f"sqlite:///{tmp_path / 'run.db'}",
        [{"name": "Local Wire", "url": feed_server.url("/rss.xml")}],
        slack,
        smtp,
        http_port=port,
    )
    env = {**os.environ, "TEST_SLACK_URL": slack.url}
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not (slack.messages and smtp.messages) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert slack.messages and smtp.messages, (
            process.stderr.read() if process.poll() is not None else "no alert in time"
        )
        polls_before = len(feed_server.requests_for("/rss.xml"))
        # interval 1s is honoured: another poll comes within a few seconds, not at the default 15 minutes.
        deadline = time.monotonic() + 10
        while len(feed_server.requests_for("/rss.xml")) <= polls_before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(feed_server.requests_for("/rss.xml")) > polls_before
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'monitor_alerts_total{channel="slack",status="delivered"} 1.0' in metrics
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert len(slack.messages) == 1 and len(smtp.messages) == 1


def test_a_second_process_on_the_same_sqlite_file_refuses_to_start(tmp_path: Path) -> None:
    from monitor.store.lock import single_process_lock

    url = f"sqlite:///{tmp_path / 'one.db'}"
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump({"database_url": url, "seeds_dir": str(REPO / "seeds")}), encoding="utf-8")
    lock = single_process_lock(url)
    assert lock is not None and single_process_lock("postgresql+psycopg://u@h/db") is None
    lock.acquire()  # stands for a running service
    try:
        done = subprocess.run(
            [sys.executable, "-m", "monitor", "poll", "--once", "--config", str(path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        lock.release()
    assert done.returncode == 3
    assert "only one service process may run" in done.stderr and str(os.getpid()) in done.stderr
