"""An analysis in the words the rest of the monitor uses: the findings an alert shows, the
summary `monitor analyze` prints and the article row keeps, the rows a verdict stores."""

from __future__ import annotations

from functools import lru_cache

from monitor.analysis.detector import Analysis
from monitor.analysis.facts import TargetIdentity
from monitor.analysis.gazetteer import default_gazetteer
from monitor.analysis.knowledge import Fact
from monitor.analysis.mentions import Allegation
from monitor.outbox import AlertContent, ClosestAllegation, FindingView
from monitor.store.models import Article
from monitor.store.verdicts import FindingRow


def describe_fact(fact: Fact) -> str:
    if fact.kind == "denial" and fact.about:
        return f"{fact.value} denied {fact.about}"
    return fact.value


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def finding_views(analysis: Analysis) -> list[FindingView]:
    return [
        FindingView(
            kind=finding.kind,
            value=finding.value,
            about=finding.about,
            evidence=finding.evidence,
            closest_known=describe_fact(finding.closest) if finding.closest else None,
            closest_source=finding.closest.source_ref if finding.closest else None,
            similarity=_round(finding.similarity),
            reason=finding.reason,
        )
        for finding in analysis.findings
    ]


def closest_allegation(analysis: Analysis) -> ClosestAllegation | None:
    seed = analysis.closest_seed
    return (
        ClosestAllegation(source=seed.source, sentence=seed.sentence, score=round(float(seed.score), 4))
        if seed
        else None
    )


def review_url(base_url: str | None, article_id: int) -> str | None:
    """The alert's page on the desk at BASE_URL (an alert's id there is its article's), or None."""
    return f"{base_url.rstrip('/')}/alerts/{article_id}" if base_url else None


def alert_content(article: Article, feed_name: str, analysis: Analysis, base_url: str | None = None) -> AlertContent:
    """What the alert about ARTICLE says; with the desk's BASE_URL, the address of its page there."""
    return AlertContent(
        article_title=article.title,
        article_url=article.url,
        feed=feed_name,
        published=article.published_at,
        relevance=round(float(analysis.relevance), 4),
        findings=finding_views(analysis),
        closest_allegation=closest_allegation(analysis),
        review_url=review_url(base_url, article.id),
    )


def analysis_summary(analysis: Analysis) -> dict[str, object]:
    """What `monitor analyze` prints and what the article row keeps of its analysis."""
    allegation = closest_allegation(analysis)
    return {
        "relevance": round(float(analysis.relevance), 4),
        "relevant": analysis.relevant,
        "reason": analysis.reason,
        "same_story_as": analysis.same_story_as,
        "closest_allegation": allegation.model_dump() if allegation else None,
        "mentions": [
            {"kind": m.kind, "value": m.value, "about": m.about, "evidence": m.evidence} for m in analysis.mentions
        ],
        "findings": [view.model_dump() for view in finding_views(analysis)],
    }


@lru_cache(maxsize=1)
def _states() -> frozenset[str]:
    return frozenset(default_gazetteer().countries())


def finding_country(kind: str, value: str, about: str) -> str | None:
    """The state a finding concerns, for the desk's country filter: the accused country itself; for
    a denial the denier when it is a state, else the state whose conduct is denied; for a target
    whose it is. None when the text does not say."""
    if kind == "country":
        return value or None
    if kind == "denial":
        if value in _states():
            return value
        accused = Allegation.parse(about).accused if about else ""
        return accused if accused and accused != "?" else None
    identity = TargetIdentity.parse(about) if about else None
    return identity.whose or None if identity else None


def finding_rows(analysis: Analysis) -> list[FindingRow]:
    """What the findings table keeps: the view's words, the known fact's id, the full similarity."""
    return [
        FindingRow(
            **view.model_dump(include={"kind", "value", "about", "evidence", "reason"}),
            closest_fact_id=finding.closest.id if finding.closest else None,
            closest_value=view.closest_known,
            similarity=None if finding.similarity is None else float(finding.similarity),
            country=finding_country(finding.kind, finding.value, finding.about),
        )
        for finding, view in zip(analysis.findings, finding_views(analysis), strict=True)
    ]
