"""What is already known: alleged countries, targets and denials, each with its first source,
plus the relevant stories seen so far (to recognise another outlet's version of the same event)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from monitor.analysis.detector import Analysis

FactKind = Literal["country", "target", "denial"]


@dataclass(frozen=True)
class Fact:
    kind: FactKind
    value: str
    about: str
    evidence: str
    source_kind: Literal["seed", "article"]
    source_ref: str
    first_seen: datetime | None = None
    id: int | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.value, self.about)


@dataclass
class Story:
    ref: str
    title: str
    vector: np.ndarray
    published: datetime | None
    facts: list[Fact] = field(default_factory=list)


class KnowledgeBase:
    """Facts and stories in the order they were learned; one fact per (kind, value, about)."""

    def __init__(self, facts: Iterable[Fact] = (), stories: Iterable[Story] = ()) -> None:
        self.facts: list[Fact] = []
        self._keys: set[tuple[str, str, str]] = set()
        for fact in facts:
            self._add(fact)
        self.stories: list[Story] = list(stories)

    def _add(self, fact: Fact) -> bool:
        if fact.key in self._keys:
            return False
        self._keys.add(fact.key)
        self.facts.append(fact)
        return True

    def of_kind(self, kind: FactKind) -> list[Fact]:
        return [f for f in self.facts if f.kind == kind]

    def knows(self, kind: FactKind, value: str, about: str = "") -> bool:
        return (kind, value, about) in self._keys

    def copy(self) -> KnowledgeBase:
        return KnowledgeBase(self.facts, self.stories)

    def learn(
        self, analysis: Analysis, *, source_ref: str, published: datetime | None, story_ref: str | None = None
    ) -> list[Fact]:
        """Adds what the article brought (only if it was relevant) and remembers it as a story.

        STORY_REF names the story (the stored article's id); it defaults to SOURCE_REF.
        """
        if not analysis.relevant:
            return []
        added: list[Fact] = []
        for fact in analysis.new_facts:
            stamped = replace(fact, source_ref=source_ref, first_seen=fact.first_seen or published)
            if self._add(stamped):
                added.append(stamped)
        self.stories.append(
            Story(
                ref=story_ref or source_ref,
                title=analysis.title,
                vector=analysis.vector,
                published=published,
                facts=added,
            )
        )
        return added
