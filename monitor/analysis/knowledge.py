"""What is already known: alleged countries, targets and denials, each with its first source,
plus the relevant stories seen so far (to recognise another outlet's version of the same event)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from monitor.analysis.facts import Fact, FactKind, Story

__all__ = ["Fact", "FactKind", "KnowledgeBase", "Story"]


class KnowledgeBase:
    """Facts and stories in the order they were learned; one fact per (kind, value, about)."""

    def __init__(self, facts: Iterable[Fact] = (), stories: Iterable[Story] = ()) -> None:
        self.facts: list[Fact] = []
        self._keys: set[tuple[str, str, str]] = set()
        for fact in facts:
            self.add(fact)
        self.stories: list[Story] = list(stories)

    def add(self, fact: Fact) -> bool:
        """Adds FACT unless one with its key is known; whether it was added."""
        if fact.key in self._keys:
            return False
        self._keys.add(fact.key)
        self.facts.append(fact)
        return True

    def of_kind(self, kind: FactKind) -> list[Fact]:
        return [f for f in self.facts if f.kind == kind]

    def learn(self, facts: Sequence[Fact], story: Story) -> list[Fact]:
        """Adds FACTS (those not yet known) and remembers STORY, which carries the ones added."""
        added = [fact for fact in facts if self.add(fact)]
        story.facts = added
        self.stories.append(story)
        return added
