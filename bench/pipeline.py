"""Articles per second through store -> process_articles (the real detector), and where time goes.

    HF_HUB_OFFLINE=1 python bench/pipeline.py                       # SQLite, torch then onnx
    HF_HUB_OFFLINE=1 python bench/pipeline.py --backends onnx --postgres

The stream is 10% on-topic (the dev stream's relevant articles, in their order) and 90% off-topic
(the dev stream's other articles and the entries of the real feeds in ../shared/feeds/real, parsed
with monitor.ingest.parse.parse_feed), mixed with a fixed seed. Every text is used once: the
embedder memoises texts, so repeating articles would flatter the figures. That bounds N (about
310); the 10,000-article backlog is extrapolated from the measured rate, and the output says so.

Stages: "store" is the real poll (a local feed server, fetch, parse, store); "process" is
process_articles until nothing is new; "embedding" is the time inside Embedder.embed (model and
memo), the rest of "process" is extraction, knowledge-base loading and the database.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.analysis.detector import Detector
from monitor.analysis.embedder import Embedder
from monitor.analysis.seeds import SeedCorpus, load_seed_documents
from monitor.config import AnalysisSettings, FeedConfig, Settings
from monitor.ingest.parse import parse_feed
from monitor.process import process_articles
from monitor.service import AnalysisStage, bootstrap, poll_feeds
from tests.support.feedserver import FeedItem, FeedServer, rss_document

SHARED = ROOT.parent / "shared"
DEV_STREAM = SHARED / "eval" / "dev_stream.jsonl"
REAL_FEEDS = SHARED / "feeds" / "real"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKLOG = 10_000


def stream(on_topic_share: float, seed: int) -> list[FeedItem]:
    rows = [json.loads(line) for line in DEV_STREAM.read_text().splitlines() if line.strip()]
    on = [r for r in rows if r["gold"]["relevant"]]
    off: list[tuple[str, str, datetime | None]] = [(r["title"], r["text"], _when(r["published"])) for r in rows if not r["gold"]["relevant"]]
    for path in sorted(REAL_FEEDS.iterdir()):
        if not path.is_file() or path.suffix not in {".xml", ".rss", ".rdf", ".atom"}:
            continue
        try:
            parsed = parse_feed(path.read_bytes(), url=f"http://feeds.local/{path.name}", headers={})
        except Exception:  # noqa: BLE001 - a feed the parser refuses is simply not part of the mix
            continue
        off += [(e.title, e.text, e.published) for e in parsed.entries if (e.title or e.text)]
    rng = random.Random(seed)
    rng.shuffle(off)
    wanted_off = min(len(off), round(len(on) * (1 - on_topic_share) / on_topic_share))
    items: list[tuple[str, str, datetime | None, str]] = [(r["title"], r["text"], _when(r["published"]), "on") for r in on]
    mixed: list[Any] = [None] * (len(on) + wanted_off)
    slots = sorted(rng.sample(range(len(mixed)), len(on)))  # on-topic keep their stream order
    for slot, item in zip(slots, items, strict=True):
        mixed[slot] = item
    rest = iter(off[:wanted_off])
    mixed = [m if m is not None else (*next(rest), "off") for m in mixed]
    return [
        FeedItem(title=title, link=f"http://news.local/{kind}/{i}", guid=f"item-{i}", description=text, pub_date=when)
        for i, (title, text, when, kind) in enumerate(mixed)
    ]


def _when(value: Any) -> datetime | None:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


class TimedEmbedder:
    """Wraps Embedder.embed: the seconds spent in it, memo lookups included."""

    def __init__(self, embedder: Embedder) -> None:
        self.seconds = 0.0
        self._embed = embedder.embed
        embedder.embed = self  # type: ignore[method-assign]

    def __call__(self, texts: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._embed(texts)
        finally:
            self.seconds += time.perf_counter() - started


def database(postgres: bool, folder: Path) -> tuple[str, Any]:
    """A fresh database; with --postgres a new database on the local server, dropped afterwards."""
    if not postgres:
        return f"sqlite:///{folder / 'bench.db'}", lambda: None
    import psycopg

    name = f"monitor_bench_{uuid.uuid4().hex[:8]}"
    admin = "postgresql://postgres@127.0.0.1:5432/test"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return POSTGRES.rsplit("/", 1)[0] + f"/{name}", drop


def embed_ahead(service: Any, detector: Detector, limit: int) -> None:
    """What process_articles could do first (a proposal, see bench/README.md): embed the sentences
    and leads of the next batch of new articles in one call, so analysing each one hits the memo."""
    from sqlalchemy import select

    from monitor.store.models import Article

    with service.sessions() as session:
        rows = session.execute(
            select(Article.title, Article.text).where(Article.status == "new").order_by(Article.id).limit(limit)
        ).all()
    texts: list[str] = []
    for title, text in rows:
        sentences = detector.extractor.extract(title, text).sentences or [title or text[:200] or " "]
        texts += [*sentences, " ".join(sentences[:4])]
    detector.embedder.embed(texts)


async def run_once(backend: str, items: list[FeedItem], feeds: int, postgres: bool, cache_dir: Path, ahead: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, FeedServer() as server:
        per_feed = -(-len(items) // feeds)
        configs = []
        for f in range(feeds):
            server.set_feed(f"/feed{f}.xml", rss_document(items[f * per_feed : (f + 1) * per_feed]))
            configs.append(FeedConfig(name=f"feed {f}", url=server.url(f"/feed{f}.xml")))
        url, drop = database(postgres, Path(tmp))
        try:
            settings = Settings(database_url=url, seeds_dir=ROOT / "seeds", cache_dir=cache_dir, feeds=configs)
            analysis_settings = AnalysisSettings(backend=backend)  # type: ignore[arg-type]
            embedder = Embedder(analysis_settings.model, batch_size=analysis_settings.batch_size, backend=backend, cache_dir=cache_dir)  # type: ignore[arg-type]
            documents = load_seed_documents(settings.seeds_dir)
            corpus = SeedCorpus.build(documents, embedder, cache_dir)
            stage = AnalysisStage(embedder, documents, corpus, Detector(embedder, corpus, analysis_settings))
            service = bootstrap(settings, stream=io.StringIO(), analysis=stage)
            timer = TimedEmbedder(embedder)
            started = time.perf_counter()
            polls = await poll_feeds(service, all_feeds=True)
            stored_s = time.perf_counter() - started
            stored = sum(p.new_articles for p in polls)
            timer.seconds = 0.0
            processed = relevant = alerted = 0
            started = time.perf_counter()
            calls = [0]
            embedder.on_batch = lambda seconds: calls.__setitem__(0, calls[0] + 1)
            while True:
                if ahead:
                    embed_ahead(service, stage.detector, analysis_settings.batch_articles)
                report = process_articles(service.sessions, stage.detector, list(service.channels), story_days=analysis_settings.same_story_days, limit=analysis_settings.batch_articles)
                processed += report.processed
                relevant += report.relevant
                alerted += report.alerted
                if report.processed + report.failed == 0:
                    break
            process_s = time.perf_counter() - started
            await service.aclose()
        finally:
            drop()
    return {
        "stored": stored, "store_s": stored_s, "processed": processed, "relevant": relevant,
        "alerted": alerted, "process_s": process_s, "embed_s": timer.seconds, "calls": calls[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="torch,onnx")
    parser.add_argument("--postgres", action="store_true", help=f"use {POSTGRES} (a fresh database on that server)")
    parser.add_argument("--feeds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--embed-ahead", action="store_true", help="embed each batch's sentences in one call first (proposal)")
    parser.add_argument("--cache-dir", default=str(ROOT / "data" / "cache"))
    args = parser.parse_args()
    items = stream(0.10, args.seed)
    on = sum(1 for item in items if "/on/" in (item.link or ""))
    print(f"command: {' '.join(['python', *sys.argv])}")
    print(f"stream: {len(items)} articles, {on} on-topic ({on / len(items):.0%}), "
          f"mean {sum(len(i.title) + len(i.description or '') for i in items) / len(items):.0f} characters; "
          f"database: {'PostgreSQL' if args.postgres else 'SQLite'}")
    results = {}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        r = asyncio.run(run_once(backend, items, args.feeds, args.postgres, Path(args.cache_dir), args.embed_ahead))
        results[backend] = r
        total = r["store_s"] + r["process_s"]
        rate = r["processed"] / total
        print(f"\n[{backend}] stored {r['stored']:.0f} in {r['store_s']:.1f} s; processed {r['processed']:.0f} "
              f"({r['relevant']:.0f} relevant, {r['alerted']:.0f} alerted) in {r['process_s']:.1f} s")
        print(f"[{backend}] model calls: {r['calls']:.0f} ({r['calls'] / max(r['processed'], 1):.1f} per article); embed-ahead {'on' if args.embed_ahead else 'off'}")
        print(f"[{backend}] {rate:.1f} articles/s end to end ({r['processed'] / r['process_s']:.1f}/s processing alone)")
        print(f"[{backend}] share of time: embedding {r['embed_s'] / total:.0%}, rest of processing "
              f"{(r['process_s'] - r['embed_s']) / total:.0%}, store (fetch+parse+insert) {r['store_s'] / total:.0%}")
        print(f"[{backend}] 10,000-article backlog: {BACKLOG / rate / 60:.1f} min "
              f"(extrapolated from {r['processed']:.0f} articles, not measured at 10,000)")
    if "torch" in results and len(results) > 1:
        base = results["torch"]
        for backend, r in results.items():
            if backend != "torch":
                speed = (base["store_s"] + base["process_s"]) / (r["store_s"] + r["process_s"])
                print(f"{backend} vs torch, same run: {speed:.2f}x articles/s")


if __name__ == "__main__":
    main()
