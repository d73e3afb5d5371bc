"""What an analysed article leaves behind, in one transaction: its verdict, its findings, the
facts it teaches and its outbox rows (alerts, or "also reported by" lines)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from monitor import outbox
from monitor.analysis.detector import Analysis
from monitor.process.findings import alert_content, analysis_summary, finding_rows
from monitor.process.followups import add_also_reported
from monitor.store.knowledge import MatchRow, add_fact_matches, add_learned_facts
from monitor.store.models import Alert, Article, utcnow
from monitor.store.verdicts import add_findings, record_verdict, verdict


def verdict_of(analysis: Analysis, now: datetime) -> dict[str, Any]:
    """The article row's new values; a relevant article also keeps its vector and its story."""
    values = verdict(
        relevance=float(analysis.relevance),
        relevant=bool(analysis.relevant),
        summary=analysis_summary(analysis),
        now=now,
    )
    if analysis.relevant:
        values["embedding"] = np.asarray(analysis.vector, dtype=np.float32).tobytes()
        ref = analysis.same_story_as
        values["same_story_as_id"] = int(ref) if ref and ref.isdigit() else None
    return values


def fact_matches(analysis: Analysis) -> list[MatchRow]:
    """The mentions judged known, each with the stored fact that absorbed it. A mention matched to
    a wording of this same article, or to nothing, has no stored fact to count against."""
    return [
        MatchRow(
            fact_id=known.closest.id,
            kind=known.kind,
            value=known.value,
            evidence=known.evidence,
            similarity=None if known.similarity is None else float(known.similarity),
        )
        for known in analysis.known
        if known.closest is not None and known.closest.id is not None
    ]


def commit_analysis(
    session: Session,
    article: Article,
    feed_name: str,
    analysis: Analysis,
    channels: Sequence[str],
    also_reported: Sequence[str] = (),
    base_url: str | None = None,
) -> list[Alert] | None:
    """Record ANALYSIS of ARTICLE in SESSION (the caller commits). None, with nothing recorded, when
    the article is no longer new: another processor got to it after this one's lease ran out. An
    alert links to its page on the desk at BASE_URL (web.base_url), if set."""
    now = utcnow()
    values = verdict_of(analysis, now)
    if not record_verdict(session, article.id, values):
        return None
    if analysis.relevant:
        # What the also-reported rows below read of the article, without making it dirty again.
        set_committed_value(article, "same_story_as_id", values["same_story_as_id"])
    add_findings(session, article.id, finding_rows(analysis))
    add_learned_facts(session, analysis.new_facts, article.url or f"article:{article.id}", article.id, now)
    add_fact_matches(session, article.id, fact_matches(analysis), now)
    if analysis.relevant and analysis.findings:
        return outbox.add_alerts(
            session, alert_content(article, feed_name, analysis, base_url), channels, article.id, now
        )
    if analysis.relevant and also_reported:
        # A repeat of an alerted story that brings nothing new: an "also reported by" line on the
        # channels that can attach one to that alert, never an alert.
        return add_also_reported(session, article, feed_name, also_reported, now)
    return []
