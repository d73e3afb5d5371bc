"""The desk in a real browser: Debian's Chromium driven by Playwright, against `monitor run` started
here with a real feed from a local server and the real model.

An analyst logs in, filters the alerts, opens one, marks a finding wrong and sees the knowledge
page change. The run leaves two screenshots in docs/ (the README shows them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from support.feedserver import FeedItem, FeedServer, rss_document
from support.receivers import SlackReceiver

from monitor.desk.auth import hash_password

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("exported_models")]

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "correct horse battery staple"

ACCUSATION = FeedItem(
    title="North Korean hackers breached Ohio voter database, officials say",
    link="http://news.example/2024/10/ohio-voter-database",
    guid="news-example-ohio-1",
    pub_date="Tue, 15 Oct 2024 14:00:00 GMT",
    description=(
        "Ohio's secretary of state said on Tuesday that foreign hackers had accessed the state's voter "
        "rolls ahead of the presidential election. Federal investigators said hackers working for North "
        "Korea's military intelligence agency broke into the state's voter registration database in "
        "September. The FBI attributed the intrusion to a group linked to Pyongyang and said no votes "
        "were changed."
    ),
)
OFF_TOPIC = FeedItem(
    title="Chiefs edge Ravens in overtime thriller",
    link="http://news.example/2024/10/chiefs-ravens",
    guid="news-example-sport-1",
    pub_date="Tue, 15 Oct 2024 15:00:00 GMT",
    description="Patrick Mahomes threw for three touchdowns as Kansas City beat Baltimore 27-24 in overtime.",
)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[str, SlackReceiver]]:
    """`monitor run` on SQLite with one local feed, Slack, and one analyst; yields the desk's URL."""
    with FeedServer() as feeds, SlackReceiver() as slack:
        feeds.set_feed("/rss.xml", rss_document([OFF_TOPIC, ACCUSATION]))
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        config = {
            "http": {"host": "127.0.0.1", "port": port},
            "web": {"base_url": base, "users": [{"name": "ana", "password_hash": hash_password(PASSWORD)}]},
            "database_url": f"sqlite:///{tmp_path / 'desk.db'}",
            "seeds_dir": str(REPO / "seeds"),
            "cache_dir": str(tmp_path / "cache"),
            "poll": {"interval": "1h"},
            "feeds": [{"name": "Local Wire", "url": feeds.url("/rss.xml"), "tags": ["wire"]}],
            "alerts": {"console": {"enabled": False}, "slack": {"webhook_url": slack.url}},
        }
        path = tmp_path / "monitor.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(path)],
            cwd=REPO,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 240
            while not slack.messages and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.2)
            assert slack.messages, process.stderr.read() if process.poll() is not None else "no alert in time"
            yield base, slack
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def test_an_analyst_reviews_an_alert_and_corrects_what_the_monitor_knows(desk: tuple[str, SlackReceiver]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, slack = desk
    # The Slack alert carries a Review button that leads to the alert's page on this desk.
    assert f"{base}/alerts/" in str(slack.messages[0].json)
    DOCS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            # Without a session the desk sends the browser to the login page.
            page.goto(f"{base}/alerts")
            expect(page).to_have_url(f"{base}/login?next=%2Falerts")
            page.get_by_label("User name").fill("ana")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            expect(page).to_have_url(f"{base}/alerts")

            # Filter: alerts with a new country.
            page.locator("form.filters select[name=kind]").select_option("country")
            page.locator("form.filters").get_by_role("button", name="Filter").click()
            row = page.locator("#rows tr", has_text="North Korea")
            expect(row).to_have_count(1)
            expect(page.locator("#rows")).not_to_contain_text("Chiefs edge Ravens")
            page.screenshot(path=str(DOCS / "desk-alerts.png"), full_page=True)

            # The alert: the finding and its evidence, the known facts it was compared with.
            row.get_by_role("link").first.click()
            expect(page.locator("h1")).to_contain_text("North Korean hackers breached Ohio voter database")
            finding = page.locator(".finding", has_text="New country: North Korea")
            expect(finding).to_have_count(1)
            expect(finding.locator("mark").first).to_contain_text("North Korea")
            page.screenshot(path=str(DOCS / "desk-alert.png"), full_page=True)

            # What the monitor learned from it is on the knowledge page...
            page.goto(f"{base}/knowledge?q=North+Korea&kind=country")
            expect(page.locator("table")).to_contain_text("North Korea")

            # ...until the analyst says the finding was wrong.
            page.go_back()
            finding.get_by_role("button", name="Wrong").click()
            expect(finding).to_contain_text("wrong")
            page.goto(f"{base}/knowledge?q=North+Korea&kind=country")
            expect(page.locator("tr", has_text="North Korea")).to_have_count(0)
            page.goto(f"{base}/knowledge?q=North+Korea&kind=country&state=retired")
            expect(page.locator("tr.retired", has_text="North Korea")).to_have_count(1)
            expect(page.locator("tr.retired", has_text="North Korea")).to_contain_text("retired by ana")
            # The audit trail says who did what, and offers to undo it.
            page.locator("header nav").get_by_role("link", name="Audit trail").click()
            expect(page.locator("main")).to_contain_text("wrong")
            expect(page.locator("main")).to_contain_text("ana")
        finally:
            browser.close()
    # The API wants credentials of its own: the browser's session is not a script's token.
    with httpx.Client(base_url=base) as client:
        assert client.get("/api/alerts").status_code == 401
