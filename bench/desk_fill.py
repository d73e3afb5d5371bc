"""A monitor's database at the volume of a year's work, for bench/desk.py and for tests (small).

    from desk_fill import Volume, fill
    filled = fill(sessions, Volume(articles=100_000, alerts=5_000, facts=20_000))

Articles have a headline and about 1,500 characters of text drawn from a vocabulary with a
Zipf-like spread (some words in most articles, most in few), so that word searches meet the
document frequencies of real news. Most verdicts are off-topic; the alerted articles carry
findings and one outbox row per channel built by monitor/outbox.py; known facts come from
seeds, articles and analysts; fact matches lean on a few popular facts, as suppressions do.
Rows go in with bulk inserts through the models, in chunks, in id order.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from monitor.outbox import AlertContent, AlsoReported, FindingView, outbox_rows
from monitor.store.db import SessionFactory
from monitor.store.models import Alert, AlertStatus, Article, FactMatch, Feed, Feedback, Finding, KnownFact

CHANNELS = ("slack", "email")
CHUNK = 2_000
COUNTRIES = (
    "Russia China Iran North-Korea Belarus Syria Venezuela Cuba Turkey Pakistan India Israel Egypt "
    "Vietnam Myanmar Eritrea Azerbaijan Serbia Hungary Ukraine Georgia Moldova Nigeria Ethiopia Rwanda"
).split()
TARGETS = "elections ministry parliament grid pipeline hospital bank newspaper army embassy port".split()
COMMON = (
    "the of and to in a is that for on was with he it as at by from his an were are which this be has "
    "had not but they have after also one two who new their been its first year said government people "
    "officials report state minister city week police security country news president court against"
).split()
SYLLABLES = "ka lo mi ne ru sa to vi be da fe go hu ji ko la ma no pa re si tu va we ya zo an el in or".split()


@dataclass(frozen=True)
class Volume:
    articles: int = 100_000
    alerts: int = 5_000
    facts: int = 20_000
    matches: int = 30_000
    feeds: int = 12
    feedback: int = 500
    # Share of articles judged on the topic (the alerted ones are among them).
    relevant_share: float = 0.1
    days: int = 365


@dataclass
class Filled:
    """What a bench or a test needs to address the rows: the alerted articles' ids (newest
    first), one (kind, country) present among findings, and words of known frequency."""

    article_ids: list[int]
    alert_ids: list[int]
    kind_country: tuple[str, str]
    common_word: str
    rare_word: str
    fact_word: str
    texts: dict[int, str] = field(default_factory=dict)


def vocabulary(rng: random.Random, size: int) -> list[str]:
    """COMMON words first, then made-up words of two to four syllables: index = frequency rank."""
    words = list(COMMON)
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def sentences(rng: random.Random, words: Sequence[str], count: int) -> list[str]:
    # Zipf-like: weight 1/rank, so "the" is in every article and the tail in a handful.
    weights = [1.0 / (rank + 1) for rank in range(len(words))]
    cumulative = list(itertools.accumulate(weights))
    pool = []
    for _ in range(count):
        chosen = rng.choices(words, cum_weights=cumulative, k=rng.randint(10, 22))
        pool.append(chosen[0].capitalize() + " " + " ".join(chosen[1:]) + ".")
    return pool


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def _bulk(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    for chunk in _chunks(rows):
        session.execute(insert(model), chunk)


def _feeds(session: Session, volume: Volume, now: datetime) -> list[int]:
    rows = [
        {
            "name": f"Wire {n}",
            "url": f"https://wire{n}.example/rss.xml",
            "config_url": f"https://wire{n}.example/rss.xml",
            "tags": ["world"] if n % 2 else ["cyber", "europe"],
            "next_poll_at": now + timedelta(minutes=n),
            "last_polled_at": now - timedelta(minutes=10),
            "last_status": "error" if n % 5 == 4 else "new_content",
            "last_http_status": 503 if n % 5 == 4 else 200,
            "last_error": "HTTP 503" if n % 5 == 4 else None,
            "consecutive_errors": 3 if n % 5 == 4 else 0,
            "entries_seen": volume.articles // volume.feeds,
            "paused_at": now if n == 1 else None,
            "paused_by": "analyst" if n == 1 else None,
        }
        for n in range(volume.feeds)
    ]
    _bulk(session, Feed, rows)
    return list(session.scalars(select(Feed.id).order_by(Feed.id)))


def _article_rows(
    rng: random.Random, volume: Volume, feed_ids: list[int], pool: list[str], now: datetime
) -> list[dict[str, Any]]:
    start = now - timedelta(days=volume.days)
    step = timedelta(days=volume.days) / max(volume.articles, 1)
    rows = []
    for n in range(volume.articles):
        relevant = rng.random() < volume.relevant_share
        country, target = rng.choice(COUNTRIES), rng.choice(TARGETS)
        title = " ".join(rng.choice(pool).split()[:8]).rstrip(".").capitalize()
        if relevant:
            title = f"{country} accused of hacking {target}: {title.lower()}"
        text = " ".join(rng.sample(pool, 16))  # about 1,500 characters
        if relevant:
            text = f"Officials said {country} was behind the attack on the {target}. " + text
        published = start + step * n + timedelta(minutes=rng.randint(-90, 0))
        relevance = rng.uniform(0.5, 0.9) if relevant else rng.uniform(0.0, 0.45)
        url = f"https://wire.example/{n}/{hashlib.sha1(title.encode()).hexdigest()[:10]}"
        rows.append(
            {
                "feed_id": feed_ids[n % len(feed_ids)],
                "entry_key": url,
                "url": url,
                "url_hash": hashlib.sha256(url.encode()).hexdigest(),
                "title": title,
                "text": text,
                "published_at": published,
                "fetched_at": published + timedelta(minutes=rng.randint(1, 30)),
                "processed_at": published + timedelta(minutes=31),
                "status": "processed",
                "relevance": relevance,
                "relevant": relevant,
                "embedding": rng.randbytes(384 * 4) if relevant else None,
                "analysis": {
                    "relevance": round(relevance, 4),
                    "relevant": relevant,
                    "reason": f"relevance {relevance:.2f}: "
                    + ("close to a seed allegation" if relevant else "far from the topic"),
                    "same_story_as": None,
                    "closest_allegation": None,
                    "mentions": [],
                    "findings": [],
                },
            }
        )
    return rows


def _fact_rows(rng: random.Random, volume: Volume, relevant_ids: list[int], now: datetime) -> list[dict[str, Any]]:
    rows = []
    for n in range(volume.facts):
        roll = n % 20
        kind = "country" if roll == 0 else "denial" if roll < 5 else "target"
        country = COUNTRIES[n % len(COUNTRIES)]
        value = {
            "country": f"{country} {n}",
            "denial": country,
            "target": f"the {rng.choice(TARGETS)} of {rng.choice(COUNTRIES)} {n}",
        }[kind]
        source = "seed" if n < 300 else "analyst" if n % 200 == 0 else "article"
        article_id = rng.choice(relevant_ids) if source == "article" and relevant_ids else None
        rows.append(
            {
                "kind": kind,
                "value": value,
                "about": f"hacking the {rng.choice(TARGETS)} {n}" if kind == "denial" else "",
                "evidence": f"Officials said {country} was behind the attack on the {rng.choice(TARGETS)}.",
                "source_kind": source,
                "source_ref": {"seed": "003.txt", "analyst": "analyst:bench"}.get(source, f"https://wire.example/{n}"),
                "article_id": article_id,
                "first_seen_at": now - timedelta(days=volume.days) + timedelta(minutes=n),
                "retired_at": now if n % 50 == 7 else None,
                "retired_by": "bench" if n % 50 == 7 else None,
            }
        )
    return rows


def _alerts(
    session: Session, rng: random.Random, alerted: list[dict[str, Any]], fact_ids: list[int], names: dict[int, str]
) -> tuple[str, str]:
    findings, alerts, counts = [], [], {}
    statuses = [AlertStatus.DELIVERED] * 90 + [AlertStatus.PENDING] * 5 + [AlertStatus.DEAD] * 3
    statuses += [AlertStatus.FILTERED] * 2
    for article in alerted:
        views, rows = [], []
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice(("country", "country", "target", "denial"))
            country = rng.choice(COUNTRIES)
            value = country if kind != "target" else f"the {rng.choice(TARGETS)} of {country}"
            evidence = article["text"].split(". ")[0] + "."
            views.append(FindingView(kind=kind, value=value, evidence=evidence, similarity=0.3, reason="new"))
            counts[(kind, country)] = counts.get((kind, country), 0) + 1
            rows.append(
                {
                    "article_id": article["id"],
                    "kind": kind,
                    "value": value,
                    "evidence": evidence,
                    "country": country,
                    "closest_fact_id": rng.choice(fact_ids),
                    "similarity": rng.uniform(0.2, 0.6),
                    "reason": "no known fact close enough",
                    "created_at": article["processed_at"],
                }
            )
        findings += rows
        content = AlertContent(
            article_title=article["title"],
            article_url=article["url"],
            feed=names[article["feed_id"]],
            published=article["published_at"],
            relevance=round(article["relevance"], 4),
            findings=views,
        )
        status = rng.choice(statuses)
        for row in outbox_rows(content, CHANNELS, article["id"], article["processed_at"]):
            alerts.append(_alert_dict(row, status, article["processed_at"]))
    _bulk(session, Finding, findings)
    _bulk(session, Alert, alerts)
    return max(counts, key=lambda key: counts[key])


def _alert_dict(row: Alert, status: AlertStatus, at: datetime) -> dict[str, Any]:
    return {
        "article_id": row.article_id,
        "channel": row.channel,
        "payload": row.payload,
        "status": status,
        "attempts": 0 if status == AlertStatus.FILTERED else 1,
        "next_attempt_at": at,
        "created_at": at,
        "delivered_at": at + timedelta(seconds=2) if status == AlertStatus.DELIVERED else None,
        "last_error": "HTTP 500" if status == AlertStatus.DEAD else None,
    }


def _also_reported(
    session: Session, follows: list[tuple[dict[str, Any], dict[str, Any]]], names: dict[int, str]
) -> None:
    rows = []
    for article, original in follows:
        content = AlsoReported(
            article_title=article["title"],
            article_url=article["url"],
            feed=names[article["feed_id"]],
            published=article["published_at"],
            original_article_id=original["id"],
            original_title=original["title"],
        )
        for row in outbox_rows(content, CHANNELS, article["id"], article["processed_at"]):
            rows.append(_alert_dict(row, AlertStatus.DELIVERED, article["processed_at"]))
    _bulk(session, Alert, rows)


def _matches(
    rng: random.Random, volume: Volume, relevant_ids: list[int], facts: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    # A few facts absorb most mentions (a popular country is named again and again).
    cumulative = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(facts))))
    picked = rng.choices(facts, cum_weights=cumulative, k=volume.matches) if facts and relevant_ids else []
    return [
        {
            "article_id": rng.choice(relevant_ids),
            "fact_id": fact["id"],
            "kind": fact["kind"],
            "value": fact["value"],
            "evidence": fact["evidence"],
            "similarity": rng.uniform(0.8, 1.0),
            "created_at": now - timedelta(minutes=rng.randint(0, volume.days * 1440)),
        }
        for fact in picked
    ]


def fill(sessions: SessionFactory, volume: Volume, *, seed: int = 16, keep_texts: bool = False) -> Filled:
    """Fill an empty, migrated database with VOLUME; what was made (KEEP_TEXTS: each article's
    title and text by id, for tests that check searches against the text itself)."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    words = vocabulary(rng, 20_000)
    pool = sentences(rng, words, 5_000)
    with sessions.begin() as session:
        feed_ids = _feeds(session, volume, now)
        names: dict[int, str] = {feed_id: name for feed_id, name in session.execute(select(Feed.id, Feed.name))}
        articles = _article_rows(rng, volume, feed_ids, pool, now)
        _bulk(session, Article, articles)
        for row, article_id in zip(articles, session.scalars(select(Article.id).order_by(Article.id)), strict=True):
            row["id"] = article_id
        relevant = [row for row in articles if row["relevant"]]
        relevant_ids = [row["id"] for row in relevant]
        facts = _fact_rows(rng, volume, relevant_ids, now)
        _bulk(session, KnownFact, facts)
        for row, fact_id in zip(facts, session.scalars(select(KnownFact.id).order_by(KnownFact.id)), strict=True):
            row["id"] = fact_id
        fact_ids = [row["id"] for row in facts]
        alerted = sorted(rng.sample(relevant, min(volume.alerts, len(relevant))), key=lambda row: row["id"])
        kind_country = _alerts(session, rng, alerted, fact_ids, names) if alerted else ("country", COUNTRIES[0])
        alerted_ids = {row["id"] for row in alerted}
        others = [row for row in relevant if row["id"] not in alerted_ids]
        follows = [(row, rng.choice(alerted)) for row in others[: len(others) // 5]] if alerted else []
        _also_reported(session, follows, names)
        same_story = [{"id": row["id"], "same_story_as_id": original["id"]} for row, original in follows]
        for chunk in _chunks(same_story):
            session.execute(update(Article), chunk)
        _bulk(session, FactMatch, _matches(rng, volume, relevant_ids, facts, now))
        _bulk(session, Feedback, _feedback(rng, volume, alerted, fact_ids, now))
    return Filled(
        article_ids=[row["id"] for row in articles],
        alert_ids=sorted(alerted_ids, reverse=True),
        kind_country=kind_country,
        common_word=words[2],
        rare_word=words[3_000],
        fact_word=TARGETS[3],
        texts={row["id"]: row["title"] + "\n" + row["text"] for row in articles} if keep_texts else {},
    )


def _feedback(
    rng: random.Random, volume: Volume, alerted: list[dict[str, Any]], fact_ids: list[int], now: datetime
) -> list[dict[str, Any]]:
    if not alerted or not fact_ids:
        return []
    return [
        {
            "actor": "analyst",
            "action": rng.choice(("confirm", "wrong", "not_new")),
            "article_id": rng.choice(alerted)["id"],
            "fact_id": rng.choice(fact_ids),
            "detail": {"before": {}, "after": {}},
            "note": "",
            "created_at": now - timedelta(minutes=n),
        }
        for n in range(volume.feedback)
    ]
