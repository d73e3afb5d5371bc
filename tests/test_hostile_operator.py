"""The hostile world, operator side: the real `monitor` command line against servers on 127.0.0.1
that misbehave on purpose, beside healthy ones. An SMTP server without STARTTLS, a webhook that
answers a byte at a time, a flood of idle connections on the ops endpoint, secrets that must not
be printed, markup and terminal escapes in feed text. Each case asserts the outcome and that the
healthy feeds and channels were not affected."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support.feedserver import FeedItem, FeedServer, rss_document
from support.receivers import DripReceiver, SlackReceiver, SmtpReceiver

from monitor.terminal import has_unsafe

REPO = Path(__file__).resolve().parents[1]
SMTP_PASSWORD = "hostile-smtp-password"
DB_PASSWORD = "hostile-db-password"
FEED_KEY = "hostile-feed-api-key"
WEBHOOK_TOKEN = "hostile-webhook-token"

# The real CLI and service in processes of their own: the full suite runs them, the fast tier does not.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")]

EVIDENCE = "Officials said hackers working for North Korea's intelligence services broke into the voter database."
RELEVANT = FeedItem(
    title="North Korean hackers breached Ohio voter database, officials say",
    link="http://news.example/2024/10/ohio-voter-database",
    guid="hostile-healthy-1",
    pub_date="Tue, 15 Oct 2024 14:00:00 GMT",
    description=(
        "Ohio's secretary of state said on Tuesday that foreign hackers had accessed the state's voter "
        f"rolls ahead of the presidential election. {EVIDENCE} The FBI attributed the intrusion to a group "
        "linked to Pyongyang and said no votes were changed."
    ),
)


def monitor(*args: str, config: Path, timeout: float = 240, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TTY_COMPATIBLE": "1", "FORCE_COLOR": "1", **env}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args, "--config", str(config)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_config(tmp_path: Path, **settings: Any) -> Path:
    values = {
        "database_url": f"sqlite:///{tmp_path / 'hostile.db'}",
        "seeds_dir": str(REPO / "seeds"),
        "cache_dir": str(tmp_path / "cache"),
        **settings,
    }
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver() as receiver:
        yield receiver


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


# --- channels that misbehave, beside one that does not ------------------------------------------


def test_test_alert_keeps_the_password_from_a_starttls_less_server_and_cuts_a_dripping_webhook(
    tmp_path: Path, slack: SlackReceiver
) -> None:
    with SmtpReceiver(users={"monitor": SMTP_PASSWORD}) as smtp, DripReceiver(interval_s=0.5) as drip:
        config = write_config(
            tmp_path,
            alerts={
                "console": {"enabled": False},
                "slack": {"webhook_url": slack.url, "timeout": "2s"},
                "email": {
                    "host": smtp.host,
                    "port": smtp.port,
                    "username": "monitor",
                    "password": "${SMTP_PASSWORD}",
                    "from": "monitor@example.org",
                    "to": ["desk@example.org"],
                },
                "webhook": {
                    "url": drip.url + f"?token={WEBHOOK_TOKEN}",
                    "secret": "${WEBHOOK_SECRET}",
                    "timeout": "1s",
                },
            },
        )
        started = time.monotonic()
        done = monitor("test-alert", config=config, SMTP_PASSWORD=SMTP_PASSWORD, WEBHOOK_SECRET="w" * 32)
        took = time.monotonic() - started
        assert smtp.auth_attempts == [] and smtp.messages == []
        assert drip.requests == 1 and drip.finished == 0
    lines = dict(line.split(": ", 1) for line in done.stdout.strip().splitlines())
    assert done.returncode == 1, done.stdout + done.stderr
    assert lines["slack"] == "delivered" and len(slack.messages) == 1  # the healthy channel
    assert lines["email"].startswith("permanent") and "STARTTLS" in lines["email"]
    assert lines["webhook"].startswith("retry") and "not finished within 1.25s" in lines["webhook"]
    assert took < 30  # the drip alone would take about 16 s, and the CLI's start a few more
    for secret in (SMTP_PASSWORD, WEBHOOK_TOKEN):
        assert secret not in done.stdout + done.stderr


def test_check_config_and_config_errors_print_no_secret(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        database_url="postgresql+psycopg://monitor:${DB_PASSWORD}@db.example/monitor",
        feeds=[{"name": "Keyed", "url": f"https://news.example/rss?api_key={FEED_KEY}"}],
        alerts={"webhook": {"url": f"https://hooks.example/in/{WEBHOOK_TOKEN}", "secret": "${DB_PASSWORD}"}},
    )
    shown = monitor("check-config", config=config, DB_PASSWORD=DB_PASSWORD)
    assert shown.returncode == 0, shown.stderr
    assert "monitor:***@db.example" in shown.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        f"database_url: mysql://monitor:{DB_PASSWORD}@db.example/monitor\n"
        f"alerts: {{webhook: {{url: 'hooks.example/in/{WEBHOOK_TOKEN}', secret: x}}}}\n",
        encoding="utf-8",
    )
    refused = monitor("check-config", config=broken)
    assert refused.returncode == 2 and "database_url" in refused.stderr and "alerts.webhook.url" in refused.stderr
    for result in (shown, refused):
        for secret in (DB_PASSWORD, FEED_KEY, WEBHOOK_TOKEN):
            assert secret not in result.stdout + result.stderr


# --- feeds that misbehave, beside one that does not ---------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("exported_models")
def test_hostile_feed_text_and_a_keyed_failing_feed_beside_a_healthy_one(
    tmp_path: Path, feed_server: FeedServer, slack: SlackReceiver
) -> None:
    hostile_item = FeedItem(
        title="Breaking [/] [link=https://evil.example/]news[/link] \x1b]0;owned\x07 \u202eexe.txt \x9b2J",
        link="http://hostile.example/story",
        guid="hostile-1",
        description="A story about the weather [bold]today[/bold].",
    )
    feed_server.set_feed("/healthy.xml", rss_document([RELEVANT]))
    feed_server.set_feed("/hostile.xml", rss_document([hostile_item]))
    feed_server.set_response("/keyed.xml", 500, body="upstream says no \x1b[2J\x07")
    keyed_url = feed_server.url(f"/keyed.xml?api_key={FEED_KEY}")
    config = write_config(
        tmp_path,
        feeds=[
            {"name": "Healthy wire", "url": feed_server.url("/healthy.xml")},
            {"name": "Hostile [/] [b]wire[/b]", "url": feed_server.url("/hostile.xml")},
            {"name": "Keyed wire", "url": keyed_url},
        ],
        poll={"failing_alert_after": "1s", "backoff_base": "1s", "backoff_max": "1s"},
        alerts={"console": {"enabled": False}, "slack": {"webhook_url": slack.url, "rate_limit": None}},
    )
    first = monitor("poll", "--once", config=config)
    assert first.returncode == 0, first.stderr
    time.sleep(1.2)
    second = monitor("poll", "--once", config=config)  # the keyed feed has now failed for over 1 s
    assert second.returncode == 0, second.stderr
    feeds = monitor("feeds", config=config)
    alerts = monitor("alerts", config=config)
    for shown in (first, second, feeds, alerts):
        assert shown.returncode == 0, shown.stderr
        assert FEED_KEY not in shown.stdout + shown.stderr
        assert "\x1b]" not in shown.stdout and "\x07" not in shown.stdout and "\u202e" not in shown.stdout
        assert not any(has_unsafe(line) for line in shown.stderr.splitlines())  # JSON logs
    assert "Hostile [/] [b]wire[/b]" in feeds.stdout
    assert "api_key=***" in feeds.stdout
    # The healthy feed's news reached Slack; the failing feed's operator alert came masked.
    texts = [json.dumps(message.json) for message in slack.messages]
    assert any("North Korea" in text for text in texts)
    failing = [text for text in texts if "Feed failing: Keyed wire" in text]
    assert failing and all(FEED_KEY not in text and "api_key=***" in text for text in failing)


# --- the ops endpoint under a flood -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _few_descriptors() -> None:
    # What a small container gets: a flood of sockets used to take them all from the service.
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


@pytest.mark.slow
@pytest.mark.usefixtures("exported_models")
def test_a_flood_of_idle_connections_leaves_the_service_its_descriptors(
    tmp_path: Path, feed_server: FeedServer, slack: SlackReceiver
) -> None:
    feed_server.set_feed("/healthy.xml", rss_document([]))
    port = _free_port()
    config = write_config(
        tmp_path,
        feeds=[{"name": "Healthy wire", "url": feed_server.url("/healthy.xml"), "interval": "1s"}],
        alerts={"console": {"enabled": False}, "slack": {"webhook_url": slack.url, "rate_limit": None}},
        http={"port": port, "max_connections": 16},
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_few_descriptors,
    )
    flood: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        for _ in range(400):  # more than the service's whole descriptor limit
            flood.append(socket.create_connection(("127.0.0.1", port)))
        # While the flood holds: the healthy feed's news is still fetched, stored and sent.
        feed_server.set_feed("/healthy.xml", rss_document([RELEVANT]))
        until = time.monotonic() + 60
        while not slack.messages and time.monotonic() < until and process.poll() is None:
            time.sleep(0.2)
        assert slack.messages, "the healthy feed's alert did not go out during the flood"
        assert "North Korea" in json.dumps(slack.messages[0].json)
        busy = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert busy.status_code in (200, 503)  # answered, not refused or hung
    finally:
        for sock in flood:
            sock.close()
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    stderr = process.stderr.read() if process.stderr else ""
    assert "Too many open files" not in stderr
