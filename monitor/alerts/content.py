"""What an alert says, independent of the channel that carries it.

The Alert row's payload is ``AlertContent.model_dump(mode="json")``: the analysis decides the
content once, in its transaction, and every channel renders the same facts later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

FindingKind = Literal["country", "target", "denial"]


class FindingView(BaseModel):
    """One thing the article brought that the knowledge base did not hold."""

    kind: FindingKind
    value: str
    # For a denial: the allegation denied; empty for countries and targets.
    about: str = ""
    evidence: str
    closest_known: str | None = None
    closest_source: str | None = None
    similarity: float | None = None
    reason: str = ""

    def headline(self) -> str:
        """What is new, in the analyst's words: "New country: North Korea"."""
        if self.kind == "denial":
            if self.about:
                return f"New denial: {self.about} by {self.value}"
            return f"New denial by {self.value}"
        return f"New {self.kind}: {self.value}"


class ClosestAllegation(BaseModel):
    """The seed sentence the article is most similar to, so analysts see the context."""

    source: str
    sentence: str
    score: float


class AlertContent(BaseModel):
    article_title: str
    article_url: str | None
    feed: str
    published: datetime | None
    relevance: float
    findings: list[FindingView] = Field(default_factory=list)
    closest_allegation: ClosestAllegation | None = None
    # True for `monitor test-alert`: rendered with a visible TEST marker.
    test: bool = False

    def headline(self) -> str:
        """The first finding's headline, with a count of the others."""
        if not self.findings:
            return "Test alert" if self.test else "New report"
        first = self.findings[0].headline()
        others = len(self.findings) - 1
        return f"{first} (+{others} more)" if others else first


class AlsoReported(BaseModel):
    """Another outlet reported a story already alerted, adding nothing new: a line, not an alert.

    Its outbox row's payload is ``model_dump(mode="json")``; ``kind`` tells it from an AlertContent.
    """

    kind: Literal["also_reported"] = "also_reported"
    article_title: str
    article_url: str | None
    feed: str
    published: datetime | None
    # The article whose alert this follows up, and that alert's title (for a digest line).
    original_article_id: int
    original_title: str = ""

    def headline(self) -> str:
        return f"Also reported by {self.feed}"


ALSO_REPORTED = "also_reported"


def payload_kind(payload: dict[str, Any]) -> str:
    """ "alert" for an AlertContent payload, "also_reported" for an AlsoReported one."""
    return str(payload.get("kind") or "alert")


def filter_content(
    content: AlertContent,
    *,
    kinds: list[str] | None,
    min_relevance: float,
    feed_tags: list[str],
    article_tags: list[str] | None,
) -> tuple[AlertContent | None, str | None]:
    """(what a channel with these filters shows, None) or (None, why it shows nothing)."""
    if content.test:
        return content, None
    if content.relevance < min_relevance:
        return (
            None,
            f"filtered: relevance {content.relevance:.2f} below {min_relevance:.2f}",
        )
    if feed_tags and not set(feed_tags) & set(article_tags or []):
        return None, "filtered: the feed carries none of the tags " + ", ".join(
            feed_tags
        )
    if kinds is not None:
        kept = [finding for finding in content.findings if finding.kind in kinds]
        if not kept:
            return None, "filtered: no finding of kind " + ", ".join(kinds)
        if len(kept) != len(content.findings):
            content = content.model_copy(update={"findings": kept})
    return content, None


def sample_alert(now: datetime | None = None) -> AlertContent:
    """What `monitor test-alert` sends: every part filled in, marked as a test, about no real topic."""
    return AlertContent(
        article_title="Test alert from the monitor",
        article_url="https://example.org/monitor/test-alert",
        feed="monitor test-alert",
        published=now or datetime.now(UTC),
        relevance=1.0,
        findings=[
            FindingView(
                kind="country",
                value="Example Country",
                evidence="This is a test alert; the monitor found nothing new.",
                reason="sent by monitor test-alert to check this channel",
            )
        ],
        closest_allegation=ClosestAllegation(
            source="seeds/example.txt",
            sentence="An example sentence from the seed corpus.",
            score=1.0,
        ),
        test=True,
    )
