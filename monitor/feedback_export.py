"""The analysts' reviews as evaluation data: every reviewed article as one record of the
../shared/eval stream format, labelled as the analysts judged it, for `monitor eval` to score.

Confirmed findings (and findings nobody objected to) stay new; wrong and not-new ones are dropped;
what an analyst marked missed is added; a not-relevant article is labelled irrelevant with nothing
new. The "new" labels are relative to what the monitor knew when it read each article, which
included articles left out of the export: scores on a short export are a guide, not a benchmark.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from monitor.store.db import SessionFactory
from monitor.store.models import Review
from monitor.store.reviews import Item, ReviewedArticle, reviewed_articles

# Findings an analyst said were not news.
_DROPPED = frozenset({Review.WRONG, Review.NOT_NEW})


def record_id(article_id: int) -> str:
    return f"article-{article_id}"


def _items(article: ReviewedArticle) -> list[Item]:
    kept = [f for f in article.findings if f.review not in _DROPPED]
    return [*kept, *article.missed]


def gold_of(article: ReviewedArticle, exported: set[int]) -> dict[str, Any]:
    """The labels: relevance, the new countries, targets and denials, alert, same story."""
    relevant = article.review != Review.NOT_RELEVANT and (article.relevant or article.review == Review.MISSED)
    items = _items(article) if relevant else []

    def values(kind: str) -> list[str]:
        return list(dict.fromkeys(i.value for i in items if i.kind == kind))

    countries, targets, deniers = values("country"), values("target"), values("denial")
    same = article.same_story_as_id
    return {
        "relevant": relevant,
        "countries": countries,
        "targets": targets,
        "denials": [{"by": i.value, "about": i.about} for i in items if i.kind == "denial"],
        "new": {"countries": countries, "targets": targets, "denials": deniers},
        "alert": bool(relevant and (countries or targets or deniers)),
        "same_story_as": record_id(same) if same in exported else None,
    }


def records(articles: Iterable[ReviewedArticle]) -> list[dict[str, Any]]:
    chosen = list(articles)
    exported = {a.id for a in chosen}
    return [
        {
            "id": record_id(a.id),
            "published": a.published.isoformat(),
            "outlet": a.outlet,
            "title": a.title,
            "url": a.url or record_id(a.id),
            "text": a.text,
            "gold": gold_of(a, exported),
        }
        for a in chosen
    ]


def export_feedback(sessions: SessionFactory, path: Path) -> int:
    """Write every reviewed article to PATH (JSON lines); how many were written."""
    with sessions() as session:
        rows = records(reviewed_articles(session))
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(rows)
