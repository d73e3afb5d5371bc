"""Crash safety, measured: SIGKILL the service at random points, restart it, count what was lost.

    python bench/crash_safety.py                      # SQLite, 50 kills
    python bench/crash_safety.py --kills 10 --seed 7
    python bench/crash_safety.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/crash

A local feed server publishes the articles of tests/data/dev_stream.jsonl a few at a time, one
batch per restart; the service (`python -m monitor run --config X`, a real subprocess) polls,
analyses and sends its alerts to a local Slack-compatible webhook that counts deliveries per
article URL. Each run is killed with SIGKILL at a random moment after it logs "service started"
(the model load, 5-8 s, comes before it). After the last kill the service runs to the end: every
article processed, the outbox drained. Then it prints:

  articles lost      published but never stored, or stored and never analysed (must be 0)
  alerts lost        alert rows not delivered, or delivered rows Slack never received (must be 0)
  duplicate alerts   extra deliveries of one alert: the send-then-crash window (reported)
  also: kills, how many landed while an alert was on the wire, run time

Not part of the test suite: it takes several minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import yaml
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from support.feedserver import FeedItem, FeedServer, rss_document
from support.receivers import SlackReceiver

from monitor.outbox import payload_kind
from monitor.store.models import Alert, Article

STREAM = REPO / "tests" / "data" / "dev_stream.jsonl"


def load_items() -> list[FeedItem]:
    items = []
    for line in STREAM.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        items.append(
            FeedItem(
                title=row["title"],
                link=row["url"],
                guid=row["id"],
                description=row["text"],
                pub_date=row["published"].replace("Z", "+00:00"),
            )
        )
    return items


class Service:
    """One `monitor run` subprocess; its stderr is read in a thread (the pipe must never fill)."""

    def __init__(self, config: Path, log: Path) -> None:
        env = dict(
            os.environ,
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            PYTHONUNBUFFERED="1",
        )
        self.started = threading.Event()
        self._log = log.open("a", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._log.write(line)
            if "service started" in line:
                self.started.set()
        self._log.flush()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()


def write_config(folder: Path, database_url: str, feed_url: str, slack_url: str) -> Path:
    config = {
        "database_url": database_url,
        "seeds_dir": str(REPO / "seeds"),
        "cache_dir": str(REPO / "data" / "cache"),  # the seed embeddings, kept between runs
        "log_level": "INFO",
        "http": {"enabled": False},
        # A killed run's claims (articles, alerts) are taken over after this, not after minutes.
        "claim_lease": 10,
        "poll": {"tick": 0.5},
        "feeds": [{"name": "Crash Wire", "url": feed_url, "interval": 1}],
        "analysis": {"process_interval": 0.5, "batch_articles": 4},
        "alerts": {
            "console": {"enabled": False},
            # Slack's default pace (one message a second) keeps alerts queued while kills land.
            "slack": {"webhook_url": slack_url, "timeout": 5},
            "retry_base": 1,
            "retry_max": 5,
            "dispatch_interval": 0.5,
            "claim_lease": 10,
        },
    }
    path = folder / "monitor.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def in_flight(slack: SlackReceiver, since: float) -> bool:
    return any(post.received_at >= since for post in slack.requests)


def settled(engine_url: str, published: int) -> bool:
    engine = create_engine(engine_url)
    try:
        with Session(engine) as session:
            done = session.scalar(text("SELECT count(*) FROM articles WHERE status != 'new'")) or 0
            pending = session.scalar(text("SELECT count(*) FROM alerts WHERE status = 'pending'")) or 0
    except Exception:
        return False
    finally:
        engine.dispose()
    return done >= published and pending == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--max-delay",
        type=float,
        default=4.0,
        help="kill within this many seconds of the start",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="use this (emptied) PostgreSQL database instead of SQLite",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    items = load_items()
    started_at = time.monotonic()

    with (
        tempfile.TemporaryDirectory(prefix="crash-") as tmp,
        FeedServer() as feeds,
        SlackReceiver() as slack,
    ):
        folder = Path(tmp)
        if args.postgres:
            database_url = args.postgres
            engine = create_engine(database_url)
            with engine.begin() as connection:
                connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
            engine.dispose()
        else:
            database_url = f"sqlite:///{folder / 'monitor.db'}"
        config = write_config(folder, database_url, feeds.url("/feed.xml"), slack.url)
        log = folder / "service.log"
        published = 0
        in_flight_kills = 0
        for kill in range(args.kills):
            # Publish the next share of the stream, so every run has new articles to work on.
            target = min(len(items), round(len(items) * (kill + 1) / args.kills))
            if target > published:
                published = target
                feeds.set_feed("/feed.xml", rss_document(items[:published]))
            service = Service(config, log)
            if not service.started.wait(timeout=120):
                service.kill()
                print(f"run {kill}: the service did not start; see {log}", file=sys.stderr)
                print(log.read_text()[-3000:], file=sys.stderr)
                return 2
            delay = rng.uniform(0, args.max_delay)
            time.sleep(delay)
            moment = time.monotonic()
            service.kill()
            # A request that arrived just before the kill may still have been in the send window.
            in_flight_kills += in_flight(slack, moment - 0.5)
            print(
                f"kill {kill + 1:2d}/{args.kills}: after {delay:.2f}s, published {published}, "
                f"slack messages so far {len(slack.messages)}",
                flush=True,
            )

        feeds.set_feed("/feed.xml", rss_document(items))
        published = len(items)
        service = Service(config, log)
        service.started.wait(timeout=120)
        deadline = time.monotonic() + 420  # a feed claimed by a killed poll waits 300 s
        while time.monotonic() < deadline and not settled(database_url, published):
            time.sleep(1)
        time.sleep(2)  # a last dispatch tick
        service.stop()

        engine = create_engine(database_url)
        with Session(engine) as session:
            articles = list(session.execute(select(Article.entry_key, Article.url, Article.status)))
            rows = list(session.execute(select(Alert.id, Alert.channel, Alert.status, Alert.payload)))
        engine.dispose()

    stored = {url: status for _key, url, status in articles}
    urls = [item.link for item in items]
    lost_articles = [url for url in urls if url not in stored or stored[url] == "new"]
    failed_articles = [url for url in urls if stored.get(url) == "failed"]

    received: Counter[str] = Counter()
    for post in slack.messages:
        body = post.body.decode("utf-8", "replace")
        for url in urls:
            if re.search(re.escape(url.replace("&", "&amp;")) + r"[|>]", body):
                received[url] += 1
    alert_rows = [row for row in rows if row[1] == "slack" and payload_kind(row[3]) != "also_reported"]
    undelivered = [row for row in alert_rows if row[2] != "delivered"]
    never_received = [row for row in alert_rows if row[2] == "delivered" and not received[row[3].get("article_url")]]
    duplicates = sum(count - 1 for count in received.values() if count > 1)
    print()
    print(f"database            {'PostgreSQL' if args.postgres else 'SQLite'}")
    print(f"kills               {args.kills} (SIGKILL, 0-{args.max_delay:g}s after 'service started')")
    print(f"kills near a send   {in_flight_kills}")
    print(f"articles published  {len(urls)}; stored {len(stored)}; failed analysis {len(failed_articles)}")
    print(f"alerts (slack rows) {len(alert_rows)}; Slack messages received {len(slack.messages)}")
    print(f"articles lost       {len(lost_articles)}")
    print(f"alerts lost         {len(undelivered) + len(never_received)}")
    print(f"duplicate alerts    {duplicates}")
    print(f"run time            {time.monotonic() - started_at:.0f}s")
    for url in lost_articles:
        print(f"  lost article: {url}")
    for row in undelivered + never_received:
        print(f"  lost alert: id={row[0]} status={row[2]} url={row[3].get('article_url')}")
    return 0 if not lost_articles and not undelivered and not never_received else 1


if __name__ == "__main__":
    sys.exit(main())
