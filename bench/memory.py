"""`monitor run` with 1,000 feeds on a local feed server and the model loaded: RSS, and its slope.

    HF_HUB_OFFLINE=1 python bench/memory.py --minutes 3            # short run
    HF_HUB_OFFLINE=1 python bench/memory.py --minutes 30           # soak
    HF_HUB_OFFLINE=1 python bench/memory.py --minutes 3 --backend torch   # default: analysis.backend's default

The feeds share a pool of real feed entries (../shared/feeds/real), so articles are deduplicated
across feeds as in the wild; every 30 s twenty feeds get a new item, so the service keeps fetching,
storing and analysing. RSS is sampled every 5 s; the slope is a least-squares fit over the samples
after the first minute (warm-up: model, seed knowledge, first poll of every feed). Once a minute
the service's /metrics gives the embedder's memo and the C heap (glibc malloc): bytes in use, and
bytes free in its arenas; a leak grows the first, fragmentation the second.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._service import free_port, scrape, start_service, stop_service, tree_rss_mb, write_config
from monitor.analysis.embedder import MEMO_TEXTS
from monitor.config import AnalysisSettings
from monitor.ingest.parse import parse_feed
from tests.support.feedserver import FeedItem, FeedServer, rss_document

REAL_FEEDS = Path(__file__).resolve().parent.parent.parent / "shared" / "feeds" / "real"


def pool() -> list[tuple[str, str]]:
    entries: list[tuple[str, str]] = []
    for path in sorted(REAL_FEEDS.iterdir()):
        if path.is_file() and path.suffix in {".xml", ".rss", ".rdf", ".atom"}:
            try:
                parsed = parse_feed(path.read_bytes(), url=f"http://feeds.local/{path.name}", headers={})
            except Exception:  # noqa: BLE001
                continue
            entries += [(e.title, e.text) for e in parsed.entries if e.title]
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=60.0, help="poll interval of every feed, seconds")
    parser.add_argument("--backend", default=AnalysisSettings().backend)
    args = parser.parse_args()
    print(f"command: {' '.join(['python', *sys.argv])}")
    entries = pool()
    items = [
        FeedItem(title=t, link=f"http://news.local/pool/{i}", guid=f"pool-{i}", description=d)
        for i, (t, d) in enumerate(entries)
    ]
    with tempfile.TemporaryDirectory() as tmp, FeedServer() as server:
        feeds: list[list[FeedItem]] = []
        for f in range(args.feeds):
            chosen = [items[(f * 7 + k) % len(items)] for k in range(5)]  # 5 entries, shared with other feeds
            feeds.append(chosen)
            server.set_feed(f"/f{f}.xml", rss_document(chosen))
        port = free_port()
        config = write_config(
            Path(tmp),
            [server.url(f"/f{f}.xml") for f in range(args.feeds)],
            interval_s=args.interval,
            backend=args.backend,
            http_port=port,
        )
        log = Path(tmp) / "service.log"
        process = start_service(config, log)
        started = time.monotonic()
        samples: list[tuple[float, float, float]] = []
        memo: list[tuple[float, float]] = []  # (seconds, texts in the embedder's memo), once a minute
        heap: list[tuple[float, float, float]] = []  # (seconds, C heap in use MB, free MB), once a minute
        next_memo = started + 60
        fresh = 0
        next_churn = started + 30
        try:
            while time.monotonic() - started < args.minutes * 60:
                if process.poll() is not None:
                    raise SystemExit(f"monitor run exited with {process.returncode}:\n{log.read_text()[-3000:]}")
                samples.append((time.monotonic() - started, *tree_rss_mb(process.pid)))
                if time.monotonic() >= next_memo and (texts := scrape(port, "monitor_embedder_memo_texts")) is not None:
                    memo.append((time.monotonic() - started, texts))
                    in_use = scrape(port, "monitor_c_heap_bytes", state="in_use")
                    free = scrape(port, "monitor_c_heap_bytes", state="free")
                    if in_use is not None and free is not None:
                        heap.append((time.monotonic() - started, in_use / 2**20, free / 2**20))
                    next_memo += 60
                if time.monotonic() >= next_churn:
                    for k in range(20):
                        f = (fresh + k * 37) % args.feeds
                        title, text = entries[(fresh * 13 + k) % len(entries)]
                        feeds[f] = [
                            FeedItem(
                                title=f"{title} ({fresh}-{k})",
                                link=f"http://news.local/new/{fresh}-{k}",
                                guid=f"new-{fresh}-{k}",
                                description=text,
                            ),
                            *feeds[f][:4],
                        ]
                        server.set_feed(f"/f{f}.xml", rss_document(feeds[f]))
                    fresh += 1
                    next_churn += 30
                time.sleep(5)
            polled = len({r.path for r in server.requests})
        finally:
            stop_service(process)
    times = np.array([t for t, _, _ in samples])
    late = times >= 60
    print(
        f"feeds: {args.feeds} (each polled every {args.interval:.0f} s), {polled} distinct feed paths "
        f"fetched; backend {args.backend}"
    )
    for label, column in (("service process", 1), ("with its parse workers", 2)):
        rss = np.array([sample[column] for sample in samples])
        slope = float(np.polyfit(times[late] / 60, rss[late], 1)[0]) if late.sum() >= 3 else float("nan")
        print(
            f"RSS, {label}: after 1 min {rss[late][0] if late.any() else rss[-1]:.0f} MB, peak {rss.max():.0f} MB, "
            f"end {rss[-1]:.0f} MB (goal <= 1024 MB); slope after warm-up {slope:+.2f} MB/min "
            f"over {times[-1] / 60:.1f} min ({late.sum()} samples)"
        )
    if len(memo) >= 2:
        (t0, n0), (t1, n1) = memo[0], memo[-1]
        per_minute = (n1 - n0) / ((t1 - t0) / 60)
        # A kept vector: 384 float32 (1.5 KB), its array view and its text as the key, about 2 KB.
        print(
            f"embedder memo: {n0:.0f} texts at {t0 / 60:.1f} min, {n1:.0f} at {t1 / 60:.1f} min: "
            f"{per_minute:+.0f} texts/min, "
            f"about {per_minute * 2 / 1024:+.2f} MB/min of the RSS slope (bounded: emptied at {MEMO_TEXTS:,} texts)"
        )
    if len(heap) >= 2:
        minutes = np.array([t for t, _, _ in heap]) / 60
        for label, column in (("in use", 1), ("free in malloc's arenas", 2)):
            values = np.array([sample[column] for sample in heap])
            print(
                f"C heap {label}: {values[0]:.0f} MB at {minutes[0]:.1f} min, {values[-1]:.0f} MB at "
                f"{minutes[-1]:.1f} min, "
                f"slope {float(np.polyfit(minutes, values, 1)[0]):+.2f} MB/min (glibc's mallinfo2, from /metrics)"
            )


if __name__ == "__main__":
    main()
