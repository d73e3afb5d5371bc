"""The value types of the analysis: what an article says (mentions) and what is known (facts).

A leaf module: the reader, the extractor, the knowledge base and the detector all import from here
and from nowhere else in the analysis, so none of them needs another's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np

FactKind = Literal["country", "target", "denial"]

# What kind of thing a target is; "other" when its head noun is none of the vocabulary's kinds.
TARGET_KINDS = ("election", "campaign", "candidate", "party", "parliament", "voters", "systems", "media", "companies")


@dataclass(frozen=True)
class TargetIdentity:
    """Whose it is (a country, "" when the text does not say), what kind of thing it is, and the
    names it carries (people, bodies: lower-case words, space-separated, "" for none)."""

    whose: str
    kind: str
    name: str = ""

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.name.split())

    def key(self) -> str:
        return f"{self.whose or '?'}/{self.kind}/{self.name}"

    @staticmethod
    def parse(key: str) -> TargetIdentity | None:
        parts = key.split("/", 2)
        if len(parts) != 3 or parts[1] not in (*TARGET_KINDS, "other"):
            return None
        return TargetIdentity("" if parts[0] == "?" else parts[0], parts[1], parts[2])


@dataclass(frozen=True)
class Accusation:
    country: str
    evidence: str
    sentence_index: int
    how: str  # the words that made the country the actor, for the finding's explanation


@dataclass(frozen=True)
class TargetMention:
    phrase: str
    evidence: str
    sentence_index: int
    identity: TargetIdentity | None = None
    # The vote an accusing article is about, read where no act had an aim (not an act's object).
    at_issue: bool = False


@dataclass(frozen=True)
class DenialMention:
    denier: str  # a country's canonical name, or a person or body as named
    denier_is_state: bool
    accused: str  # whose alleged conduct is denied ("" when unknown)
    evidence: str
    sentence_index: int
    allegation: str  # the sentence that states what is denied
    denied: str = ""  # what the denial itself says is untrue, in its own words ("" when it only says "the claims")
    speaker: str = ""  # the person or body who spoke for the denier, when it is a state


@dataclass
class Extraction:
    """What one reading of an article found: its sentences (title first) and the mentions in them."""

    sentences: list[str]
    accusations: list[Accusation] = field(default_factory=list)
    targets: list[TargetMention] = field(default_factory=list)
    denials: list[DenialMention] = field(default_factory=list)
    # What a state says it did not do to ("the UAE made no effort to influence the election"): the
    # allegation's target, for relevance and for what the denial is about, never a new target.
    denied_targets: list[TargetMention] = field(default_factory=list)
    mentioned: set[str] = field(default_factory=set)
    # How often the topic's own words (an election, a vote, a campaign) occur; None when unread.
    topic_words: int | None = None
    mention_counts: dict[str, int] = field(default_factory=dict)
    # The years the article gives elections, wherever it names one ("the 2016 election"), by whose
    # they are ("" where the words do not say).
    election_years: dict[str, set[str]] = field(default_factory=dict)

    def electorate(self, exclude: set[str] = frozenset()) -> str:  # type: ignore[assignment]
        """The country whose politics the article is about: the most named one that is not accused."""
        accused = set(self.accused) | set(exclude)
        ranked = sorted(((n, c) for c, n in self.mention_counts.items() if c not in accused), key=lambda x: -x[0])
        return ranked[0][1] if ranked else ""

    def lead(self, sentences: int = 3) -> str:
        return " ".join(self.sentences[:sentences])

    @property
    def accused(self) -> list[str]:
        return list(dict.fromkeys(a.country for a in self.accusations))

    def allegation_sentences(self) -> list[int]:
        return sorted({a.sentence_index for a in self.accusations} | {d.sentence_index for d in self.denials})


@dataclass(frozen=True)
class Fact:
    kind: FactKind
    value: str
    about: str
    evidence: str
    source_kind: Literal["seed", "article", "analyst"]
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
