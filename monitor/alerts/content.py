"""What an alert says, independent of the channel that carries it.

The Alert row's payload is ``AlertContent.model_dump(mode="json")``: the analysis decides the
content once, in its transaction, and every channel renders the same facts later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

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
            source="seeds/example.txt", sentence="An example sentence from the seed corpus.", score=1.0
        ),
        test=True,
    )
