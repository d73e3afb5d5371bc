"""Articles per second through store -> process_articles (the real detector), where time goes, and
what an off-topic article costs beside a relevant one.

    HF_HUB_OFFLINE=1 python bench/pipeline.py                       # SQLite: torch, openvino, onnx
    HF_HUB_OFFLINE=1 python bench/pipeline.py --backends openvino --postgres
    HF_HUB_OFFLINE=1 python bench/pipeline.py --prescreen-off-too   # + the cost with the pre-screen off
    HF_HUB_OFFLINE=1 python bench/pipeline.py --backends openvino --backlog 10000   # a real backlog

The stream is 10% on-topic (the dev stream's relevant articles, in their order) and 90% off-topic
(the dev stream's other articles and the entries of the real feeds in ../shared/feeds/real, parsed
with monitor.ingest.parse.parse_feed), mixed with a fixed seed. Every text is used once: the
embedder memoises texts, so repeating articles would flatter the figures. That bounds N (about
310); the 10,000-article backlog is extrapolated from the measured rate, and the output says so.
--backlog N measures it instead: the stream, then retold with every sentence numbered (see
backlog()), stored by one poll, then processed until nothing is left.

Stages (exclusive wall time, a nested stage's time is not counted twice): "store" is the real poll
(a local feed server, fetch, parse, store); then, inside process_articles until nothing is new,
"embed" (Embedder.embed: model and memo), "extract" (the pre-screen's word cues), "parse" (the
spaCy reader, on the articles that pass the pre-screen), "relevance"
(pre-screen and relevance scoring), "novelty" (mentions, same story, judging against the knowledge
base), "detector other" (the rest of the detector) and "database" (claim, knowledge-base loading,
commit: the rest of process_articles).

CPU cost: after the pipeline run, the embedder's memo is emptied and every article of the stream
is analysed again, one at a time in stream order against a knowledge base that learns (as `monitor
eval` does), each as a batch of one (pre-screen, embed ahead, analyze), with time.process_time()
around it (CPU time of all the process's threads, so a loaded machine changes it little). The
ratio is the mean for off-topic articles over the mean for relevant ones (the on-topic articles).
Alone, every article pays one model call for its title and lead, and a call on a few texts costs
about 5 ms whatever their length (the weights stream through the cache once per call), so the
ratio is also measured the service's way: the off-topic articles, then the on-topic ones, claimed
64 at a time, each claim pre-screened in one call and the articles that pass embedded 8 at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import random
import re
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.analysis.detector import ArticleInput, Detector, seed_knowledge
from monitor.analysis.embedder import Embedder
from monitor.analysis.knowledge import KnowledgeBase
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
    off: list[tuple[str, str, datetime | None]] = [
        (r["title"], r["text"], _when(r["published"])) for r in rows if not r["gold"]["relevant"]
    ]
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
    items: list[tuple[str, str, datetime | None, str]] = [
        (r["title"], r["text"], _when(r["published"]), "on") for r in on
    ]
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


def backlog(items: list[FeedItem], size: int) -> list[FeedItem]:
    """SIZE articles: the stream, then the stream retold again and again until SIZE.

    A retelling numbers every sentence of the article ("... [2.14]"), so no text repeats and the
    embedder's memo saves nothing it would not save in the wild. The detector sees a retold
    on-topic article as another outlet's version of a story it knows: it is analysed in full and
    raises no new alert, so the alerts come from the first pass.
    """
    made: list[FeedItem] = []
    for n in range(size):
        item = items[n % len(items)]
        round_ = n // len(items)
        if round_ == 0:
            made.append(item)
            continue
        counter = itertools.count()
        text = item.description or ""
        marked = re.sub(r"([.!?])(\s+|$)", lambda m: f" [{round_}.{next(counter)}]{m.group(1)}{m.group(2)}", text)
        if marked == text:
            marked = f"{text} [{round_}]"
        made.append(
            FeedItem(
                title=f"{item.title} [{round_}]",
                link=f"{item.link}/r{round_}",
                guid=f"{item.guid}-r{round_}",
                description=marked,
                pub_date=item.pub_date,
            )
        )
    return made


def _when(value: Any) -> datetime | None:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


class Profiler:
    """Exclusive wall time per stage: entering a nested stage pauses the one around it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stack: list[tuple[str, float]] = []

    def wrap(self, owner: Any, name: str, stage: str) -> None:
        function = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            now = time.perf_counter()
            if self._stack:
                outer, since = self._stack[-1]
                self.seconds[outer] = self.seconds.get(outer, 0.0) + now - since
            self._stack.append((stage, now))
            try:
                return function(*args, **kwargs)
            finally:
                now = time.perf_counter()
                _, since = self._stack.pop()
                self.seconds[stage] = self.seconds.get(stage, 0.0) + now - since
                if self._stack:
                    self._stack[-1] = (self._stack[-1][0], now)

        setattr(owner, name, timed)

    def reset(self) -> None:
        self.seconds = {}


def instrument(detector: Detector) -> Profiler:
    profiler = Profiler()
    profiler.wrap(detector.embedder, "embed", "embed")
    profiler.wrap(detector.extractor, "extract", "extract")
    profiler.wrap(detector.reader, "read", "parse")
    for name in ("screen", "score", "_topic_link"):
        profiler.wrap(detector.relevance, name, "relevance")
    for name in ("judge", "same_story"):
        profiler.wrap(detector.novelty, name, "novelty")
    for name in ("analyze", "prescreen", "embed_ahead"):
        profiler.wrap(detector, name, "detector other")
    return profiler


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


async def run_once(
    backend: str,
    items: list[FeedItem],
    feeds: int,
    postgres: bool,
    cache_dir: Path,
    prescreen: float | None,
    *,
    cost: bool = True,
) -> dict[str, Any]:
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
            if prescreen is not None:
                analysis_settings = analysis_settings.model_copy(update={"prescreen_threshold": prescreen})
            embedder = Embedder(
                analysis_settings.model, batch_size=analysis_settings.batch_size, backend=backend, cache_dir=cache_dir
            )  # type: ignore[arg-type]
            documents = load_seed_documents(settings.seeds_dir)
            corpus = SeedCorpus.build(documents, embedder, cache_dir)
            stage = AnalysisStage(embedder, documents, corpus, Detector(embedder, corpus, analysis_settings))
            service = bootstrap(settings, stream=io.StringIO(), analysis=stage)
            profiler = instrument(stage.detector)
            started = time.perf_counter()
            polls = await poll_feeds(service, all_feeds=True)
            stored_s = time.perf_counter() - started
            stored = sum(p.new_articles for p in polls)
            profiler.reset()
            processed = relevant = alerted = 0
            started = time.perf_counter()
            calls = [0]
            embedder.on_batch = lambda seconds: calls.__setitem__(0, calls[0] + 1)
            while True:
                report = process_articles(
                    service.sessions,
                    stage.detector,
                    list(service.channels),
                    story_days=analysis_settings.same_story_days,
                    limit=analysis_settings.batch_articles,
                )
                processed += report.processed
                relevant += report.relevant
                alerted += report.alerted
                if report.processed + report.failed == 0:
                    break
            process_s = time.perf_counter() - started
            stages = dict(profiler.seconds)
            await service.aclose()
        finally:
            drop()
        cpu = cpu_cost(embedder, corpus, analysis_settings, documents, items) if cost else None
    return {
        "stored": stored,
        "store_s": stored_s,
        "processed": processed,
        "relevant": relevant,
        "alerted": alerted,
        "process_s": process_s,
        "stages": stages,
        "calls": calls[0],
        "cost": cpu,
    }


WARM_UP = ArticleInput(
    title="Officials say foreign hackers targeted a county election website",
    text="Officials said Russian hackers targeted the county's election website in an attempt to interfere in the vote.",  # noqa: E501
)


def cpu_cost(
    embedder: Embedder, corpus: SeedCorpus, settings: AnalysisSettings, documents: Any, items: list[FeedItem]
) -> dict[str, Any]:
    """CPU seconds per article, each analysed alone (pre-screen, embed ahead, analyze), memo emptied first."""
    embedder._cache.clear()
    detector = Detector(embedder, corpus, settings)
    kb = KnowledgeBase(seed_knowledge(detector, documents))
    detector.analyze(WARM_UP, kb)  # the topic prototypes, embedded once per process
    by_label: dict[str, list[float]] = {"on": [], "off": []}
    screened_out: list[float] = []
    verdict_relevant: list[float] = []
    for item in items:
        article = ArticleInput(
            title=item.title or "", text=item.description or "", url=item.link, published=item.pub_date
        )
        started = time.process_time()
        screens = detector.prescreen([article])
        detector.embed_ahead([a for a, screen in zip([article], screens, strict=True) if screen.passed])
        analysis = detector.analyze(article, kb)
        seconds = time.process_time() - started
        analysis.teach(kb, source_ref=item.link or "", published=item.pub_date)
        by_label["on" if "/on/" in (item.link or "") else "off"].append(seconds)
        if not screens[0].passed:
            screened_out.append(seconds)
        if analysis.relevant:
            verdict_relevant.append(seconds)

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else float("nan")

    batched = {
        label: batched_cost(detector, documents, [i for i in items if ("/on/" in (i.link or "")) == (label == "on")])
        for label in ("off", "on")
    }
    return {
        "batched_off_s": batched["off"],
        "batched_on_s": batched["on"],
        "off_s": mean(by_label["off"]),
        "on_s": mean(by_label["on"]),
        "off_n": len(by_label["off"]),
        "on_n": len(by_label["on"]),
        "screened_out_s": mean(screened_out),
        "screened_out_n": len(screened_out),
        "relevant_s": mean(verdict_relevant),
        "relevant_n": len(verdict_relevant),
    }


def batched_cost(detector: Detector, documents: Any, items: list[FeedItem]) -> float:
    """CPU seconds per article when ITEMS are processed the service's way: claimed 64 at a time,
    each claim pre-screened in one model call and the articles that pass embedded 8 at a time."""
    from monitor.process.embed_ahead import AHEAD_ARTICLES

    detector.embedder._cache.clear()
    kb = KnowledgeBase(seed_knowledge(detector, documents))
    detector.analyze(WARM_UP, kb)
    claim = AnalysisSettings().batch_articles
    started = time.process_time()
    for start in range(0, len(items), claim):
        articles = [
            ArticleInput(title=i.title or "", text=i.description or "", url=i.link, published=i.pub_date)
            for i in items[start : start + claim]
        ]
        screens = detector.prescreen(articles)
        passed = [a for a, screen in zip(articles, screens, strict=True) if screen.passed]
        for ahead in range(0, len(passed), AHEAD_ARTICLES):
            detector.embed_ahead(passed[ahead : ahead + AHEAD_ARTICLES])
        for article in articles:
            detector.analyze(article, kb).teach(kb, source_ref=article.url or "", published=article.published)
    return (time.process_time() - started) / max(len(items), 1)


STAGES = ("embed", "extract", "parse", "relevance", "novelty", "detector other", "database")


def report(backend: str, r: dict[str, Any], label: str = "") -> float:
    name = f"{backend}{label}"
    total = r["store_s"] + r["process_s"]
    rate = r["processed"] / total
    stages = dict(r["stages"])
    stages["database"] = r["process_s"] - sum(stages.values())
    print(
        f"\n[{name}] stored {r['stored']:.0f} in {r['store_s']:.1f} s; processed {r['processed']:.0f} "
        f"({r['relevant']:.0f} relevant, {r['alerted']:.0f} alerted) in {r['process_s']:.1f} s"
    )
    print(f"[{name}] model calls: {r['calls']:.0f} ({r['calls'] / max(r['processed'], 1):.2f} per article)")
    print(f"[{name}] {rate:.1f} articles/s end to end ({r['processed'] / r['process_s']:.1f}/s processing alone)")
    shares = ", ".join(f"{stage} {stages.get(stage, 0.0) / total:.0%}" for stage in STAGES)
    print(f"[{name}] share of time: store (fetch+parse+insert) {r['store_s'] / total:.0%}, {shares}")
    if r["processed"] >= BACKLOG:
        print(
            f"[{name}] a {r['processed']:,.0f}-article backlog cleared in {total / 60:.1f} min (measured: "
            "stored, then processed)"
        )
    else:
        print(
            f"[{name}] 10,000-article backlog: {BACKLOG / rate / 60:.1f} min "
            f"(extrapolated from {r['processed']:.0f} articles; --backlog 10000 measures it)"
        )
    c = r["cost"]
    if c is None:
        return rate
    print(
        f"[{name}] CPU per article, alone: off-topic {c['off_s'] * 1000:.1f} ms (n={c['off_n']}), "
        f"on-topic {c['on_s'] * 1000:.1f} ms (n={c['on_n']}); off-topic / on-topic = {c['off_s'] / c['on_s']:.3f}"
    )
    print(
        f"[{name}] CPU per article, the service's way (claims of {AnalysisSettings().batch_articles}, one "
        "pre-screen call each): "
        f"off-topic {c['batched_off_s'] * 1000:.1f} ms, on-topic {c['batched_on_s'] * 1000:.1f} ms; "
        f"off-topic / on-topic = {c['batched_off_s'] / c['batched_on_s']:.3f}"
    )
    print(
        f"[{name}] by verdict: rejected by the pre-screen {c['screened_out_s'] * 1000:.1f} ms "
        f"(n={c['screened_out_n']}), "
        f"judged relevant {c['relevant_s'] * 1000:.1f} ms (n={c['relevant_n']}); ratio {c['screened_out_s'] / c['relevant_s']:.3f}"  # noqa: E501
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="torch,openvino,onnx")
    parser.add_argument("--postgres", action="store_true", help=f"use {POSTGRES} (a fresh database on that server)")
    parser.add_argument("--feeds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--prescreen-off-too",
        action="store_true",
        help="also run each backend with analysis.prescreen_threshold -1 (off)",
    )
    parser.add_argument("--cache-dir", default=str(ROOT / "data" / "cache"))
    parser.add_argument(
        "--backlog", type=int, default=0, help="process this many articles (the stream retold), no CPU-cost pass"
    )
    args = parser.parse_args()
    items = stream(0.10, args.seed)
    if args.backlog:
        items = backlog(items, args.backlog)
        args.feeds = max(args.feeds, -(-len(items) // 50))  # 50 entries a feed document
    on = sum(1 for item in items if "/on/" in (item.link or ""))
    print(f"command: {' '.join(['python', *sys.argv])}")
    print(
        f"stream: {len(items)} articles, {on} on-topic ({on / len(items):.0%}), "
        f"mean {sum(len(i.title) + len(i.description or '') for i in items) / len(items):.0f} characters; "
        f"database: {'PostgreSQL' if args.postgres else 'SQLite'}; pre-screen at "
        f"{AnalysisSettings().prescreen_threshold}"
    )
    rates = {}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        variants: list[tuple[str, float | None]] = [("", None)]
        if args.prescreen_off_too:
            variants.append((" pre-screen off", -1.0))
        for label, prescreen in variants:
            r = asyncio.run(
                run_once(
                    backend, items, args.feeds, args.postgres, Path(args.cache_dir), prescreen, cost=not args.backlog
                )
            )
            rates[f"{backend}{label}"] = report(backend, r, label)
    if "torch" in rates and len(rates) > 1:
        for name, rate in rates.items():
            if name != "torch":
                print(f"{name} vs torch, same run: {rate / rates['torch']:.2f}x articles/s")


if __name__ == "__main__":
    main()
