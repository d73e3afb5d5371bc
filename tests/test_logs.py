"""Logs are JSON lines with fixed keys off a terminal, and no secret ever appears in them."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.feedserver import FeedItem, FeedServer, rss_document
from support.receivers import SlackReceiver, SmtpReceiver

from monitor.logs import configure_logging

REPO = Path(__file__).resolve().parents[1]
WEBHOOK_TOKEN = "Zq7secretWebhookToken"
SMTP_PASSWORD = "smtp-Pa55word-secret"


def test_json_lines_carry_the_fixed_keys() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    logging.getLogger("monitor.test").info("article processed", extra={"article_id": 7, "duration_ms": 12.5})
    record = json.loads(stream.getvalue().strip())
    assert record["msg"] == "article processed" and record["level"] == "info"
    assert record["article_id"] == 7 and record["duration_ms"] == 12.5 and record["ts"].endswith("+00:00")
    logging.getLogger().handlers.clear()


@pytest.mark.slow
@pytest.mark.usefixtures("exported_models")  # the service it starts finds the model exported
def test_no_secret_reaches_the_logs_or_check_config(tmp_path: Path) -> None:
    article = FeedItem(
        title="North Korean hackers breached a state voter database, officials say",
        link="http://news.example/nk",
        guid="nk-1",
        description=(
            "Election officials said hackers working for North Korea's intelligence services broke into "
            "the state's voter registration database ahead of the presidential election."
        ),
    )
    with (
        FeedServer() as server,
        SlackReceiver(path=f"/services/T1/B1/{WEBHOOK_TOKEN}") as slack,
        SmtpReceiver(users={"monitor": "the-right-password"}) as smtp,
    ):
        server.set_feed("/rss.xml", rss_document([article]))
        slack.script([500, 500, 500])
        config = tmp_path / "secret.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "database_url": f"sqlite:///{tmp_path / 'secret.db'}",
                    "seeds_dir": str(REPO / "seeds"),
                    "cache_dir": str(tmp_path / "cache"),
                    "log_level": "DEBUG",
                    "feeds": [{"name": "Wire", "url": server.url("/rss.xml")}],
                    "alerts": {
                        "console": {"enabled": False},
                        "slack": {"webhook_url": "${HOOK}"},
                        "email": {
                            "host": "127.0.0.1",
                            "port": smtp.port,
                            "username": "monitor",
                            "password": "${SMTP_PASSWORD}",
                            # The test server has no TLS: a wrong password must still never be logged.
                            "allow_plaintext_auth": True,
                            "from": "monitor@example.org",
                            "to": ["analysts@example.org"],
                        },
                    },
                }
            ),
            encoding="utf-8",
        )
        env = {**os.environ, "HOOK": slack.url, "SMTP_PASSWORD": SMTP_PASSWORD, "HF_HUB_OFFLINE": "1"}
        polled = subprocess.run(
            [sys.executable, "-m", "monitor", "poll", "--once", "--config", str(config)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        checked = subprocess.run(
            [sys.executable, "-m", "monitor", "check-config", "--config", str(config)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert polled.returncode == 0, polled.stderr
    assert slack.requests and not smtp.messages  # both channels were tried and failed: errors were logged
    logged = polled.stdout + polled.stderr + checked.stdout + checked.stderr
    assert "alert retry" in polled.stderr or "alert dead" in polled.stderr
    for secret in (WEBHOOK_TOKEN, SMTP_PASSWORD):
        assert secret not in logged
    json_lines = [line for line in polled.stderr.splitlines() if line.startswith("{")]
    assert json_lines and all({"ts", "level", "msg"} <= set(json.loads(line)) for line in json_lines)
