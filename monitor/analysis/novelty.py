"""Novelty: each thing an article says, judged against what is known.

A country is new when no earlier source alleged it; a target when no known target has its identity
(whose, what kind, its names) and, without a name, a close wording; a denial when its denier has not
yet denied that allegation (same accused, same country's politics, same operation). Another outlet's
version of a known story brings only what it names that the story did not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np

from monitor.analysis.embedder import Embedder
from monitor.analysis.facts import Fact, FactKind, Story, TargetIdentity
from monitor.analysis.knowledge import KnowledgeBase
from monitor.analysis.mentions import _YEAR, Allegation, Mention, mentions
from monitor.analysis.target_words import (
    _bare,
    _compounds,
    _core,
    _country_words,
    _head,
    _identity_of,
    _names,
    _same_identity,
    _target_names,
)
from monitor.analysis.text import fold, without_owner
from monitor.config import AnalysisSettings


class Article(Protocol):
    """What novelty needs of an article: where it was found and when."""

    title: str
    url: str | None
    published: datetime | None


@dataclass(frozen=True)
class Finding:
    kind: FactKind
    value: str
    about: str
    evidence: str
    closest: Fact | None
    similarity: float | None
    reason: str


@dataclass(frozen=True)
class _Match:
    fact: Fact | None
    similarity: float | None


class Novelty:
    """Judges mentions against a knowledge base; the embedder compares wordings."""

    def __init__(
        self, embedder: Embedder, settings: AnalysisSettings, cues: dict[str, Any], topic_kinds: frozenset[str]
    ) -> None:
        self.embedder = embedder
        self.settings = settings
        self.cues = cues
        # Target kinds whose novelty makes an allegation, and so its denial, another one.
        self.topic_kinds = topic_kinds

    def judge(
        self,
        mentions: list[Mention],
        kb: KnowledgeBase,
        same_story: Story | None,
        article: Article,
        vector: np.ndarray | None = None,
    ) -> tuple[list[Finding], list[Finding], list[Fact]]:
        findings: list[Finding] = []
        known: list[Finding] = []
        new_facts: list[Fact] = []
        accepted_targets: list[Mention] = []
        for mention in mentions:
            if mention.kind == "country":
                finding, is_new = self._judge_country(mention, kb)
            elif mention.kind == "target":
                finding, is_new = self._judge_target(mention, kb, accepted_targets, same_story, known)
            else:
                finding, is_new = self._judge_denial(mention, kb, accepted_targets, same_story)
            if is_new:
                if finding.reason.startswith("same story"):
                    known.append(finding)
                else:
                    findings.append(finding)
                if mention.kind == "target" and not finding.reason.startswith("same story"):
                    accepted_targets.append(mention)
                new_facts.append(_learned(mention, article))
            else:
                known.append(finding)
                if mention.kind == "denial" and same_story is None:
                    # Another wording of a denial already made is kept too (no alert), so that the
                    # next denial is compared with the story it was made in as well.
                    new_facts.append(_learned(mention, article))
        return findings, known, new_facts

    def _judge_country(self, mention: Mention, kb: KnowledgeBase) -> tuple[Finding, bool]:
        countries = kb.of_kind("country")
        same = [f for f in countries if f.value == mention.value]
        if same:
            return Finding(
                "country",
                mention.value,
                "",
                mention.evidence,
                same[0],
                1.0,
                f"{mention.value} is already alleged ({same[0].source_ref})",
            ), False
        match = self._closest(mention.evidence, countries, lambda f: f.evidence)
        closest = f"closest known: {match.fact.value}" if match.fact else "nothing similar is known"
        reason = f"no earlier source alleges {mention.value}; {closest}"
        return Finding("country", mention.value, "", mention.evidence, match.fact, match.similarity, reason), True

    def _judge_target(
        self,
        mention: Mention,
        kb: KnowledgeBase,
        accepted: list[Mention],
        same_story: Story | None,
        known_here: list[Finding] = (),  # type: ignore[assignment]
    ) -> tuple[Finding, bool]:
        targets = kb.of_kind("target")
        identity = TargetIdentity.parse(mention.about)
        if identity is not None:
            return self._judge_identified_target(mention, identity, targets, accepted, same_story)
        match = self._closest(mention.value, targets, lambda f: f.value)
        if self._same_target(mention.value, match, targets):
            assert match.fact is not None
            reason = f'known target: matches "{match.fact.value}" ({match.similarity:.2f})'
            return Finding("target", mention.value, "", mention.evidence, match.fact, match.similarity, reason), False
        # A wording without a name of its own ("presidential campaigns of both parties") after a
        # known target in the same article ("Donald Trump's presidential campaign") is that target.
        earlier = [f for f in known_here if f.kind == "target" and f.closest is not None]
        if earlier:
            here = [Fact("target", f.value, "", f.evidence, "article", "") for f in earlier]
            sibling = self._closest(mention.value, here, lambda f: f.value)
            if self._same_target(mention.value, sibling, here):
                assert sibling.fact is not None
                origin = next(f.closest for f in earlier if f.value == sibling.fact.value)
                reason = (
                    f'known target: another wording of "{sibling.fact.value}" in this article, which matches '
                    f'"{origin.value}"'
                    if origin
                    else "known target"
                )
                return Finding("target", mention.value, "", mention.evidence, origin, sibling.similarity, reason), False
        if accepted:
            siblings = [Fact("target", a.value, "", "", "article", "") for a in accepted]
            sibling = self._closest(mention.value, siblings, lambda f: f.value)
            if self._same_target(mention.value, sibling, siblings):
                return Finding(
                    "target",
                    mention.value,
                    "",
                    mention.evidence,
                    None,
                    sibling.similarity,
                    "another wording of a target already reported in this article",
                ), False
        if same_story is not None:
            # Another outlet's version words the same victims differently; only a name the earlier
            # story never brought (a new person, body or place) is news.
            story_targets = [f for f in same_story.facts if f.kind == "target"]
            story_match = self._closest(mention.value, story_targets, lambda f: f.value)
            story_names = (
                set().union(*(_names(f.value) | _names(f.evidence) for f in same_story.facts))
                if same_story.facts
                else set()
            )
            fresh = _names(mention.value) - story_names - _country_words(mention.value)
            if not fresh or (story_match.similarity or 0) >= self.settings.same_story_target_threshold:
                reason = f"same story as {same_story.ref}" + (
                    f': "{story_match.fact.value}" ({story_match.similarity:.2f})' if story_match.fact else ""
                )
                return Finding(
                    "target", mention.value, "", mention.evidence, story_match.fact, story_match.similarity, reason
                ), True
        closest = (
            f'closest known: "{match.fact.value}" ({match.similarity:.2f})'
            if match.fact
            else "nothing similar is known"
        )
        return Finding(
            "target",
            mention.value,
            "",
            mention.evidence,
            match.fact,
            match.similarity,
            f"no earlier source names this target; {closest}",
        ), True

    def _judge_identified_target(
        self,
        mention: Mention,
        identity: TargetIdentity,
        targets: list[Fact],
        accepted: list[Mention],
        same_story: Story | None,
    ) -> tuple[Finding, bool]:
        """A target is known when a known target has its identity (whose, what kind, its names) and,
        when neither carries a name, a close enough wording; another country's election, or a named
        person no known target names, is new whatever the words."""
        same = [f for f in targets if _same_identity(identity, f)]
        described = f"{identity.kind} of {identity.whose or 'an unnamed country'}"
        match = self._known_within(mention.value, identity, same)
        if match.fact is not None:
            reason = f'known target: {described}, as "{match.fact.value}" ({match.similarity:.2f})'
            return Finding(
                "target", mention.value, mention.about, mention.evidence, match.fact, match.similarity, reason
            ), False
        if mention.at_issue and (politics := _same_politics(identity, targets)) is not None:
            # The vote an article is about, with no act aimed at it, is news only for a country whose
            # politics that year no one has reported a target in ("candidates in Slovakia's regional
            # elections" already told of the vote that a later "working against candidates" is about).
            reason = (
                f'the vote at issue: a target in the politics of {identity.whose} then is known, "{politics.value}"'
            )
            return Finding("target", mention.value, mention.about, mention.evidence, politics, None, reason), False
        here = [Fact("target", a.value, a.about, "", "article", "") for a in accepted]
        # Within one article, one identity is one target: two unnamed wordings of Moldova's election
        # there are the same election, however differently worded.
        sibling = self._known_within(mention.value, identity, [f for f in here if _same_identity(identity, f)], -1.0)
        if sibling.fact is not None:
            reason = f'another wording of "{sibling.fact.value}", already reported in this article'
            return Finding(
                "target", mention.value, mention.about, mention.evidence, None, sibling.similarity, reason
            ), False
        if same_story is not None:
            # Another outlet's version words the same victims differently; only a name the earlier
            # story never brought (a new person, body or place) is news.
            told = " ".join([same_story.title, *(f"{f.value} {f.evidence}" for f in same_story.facts)]).lower()
            named = {n for n in identity.names if not _YEAR.fullmatch(n)}
            if not named or all(name in told for name in named):
                reason = f"same story as {same_story.ref}: it brings no name the earlier story lacked"
                return Finding("target", mention.value, mention.about, mention.evidence, None, None, reason), True
        closest = self._closest(
            without_owner(mention.value, identity.whose),
            same or targets,
            lambda f: without_owner(f.value, _identity_of(f).whose),
        )
        near = (
            f'closest known: "{closest.fact.value}" ({closest.similarity:.2f})'
            if closest.fact
            else "nothing similar is known"
        )
        reason = (
            f"no earlier source names this target ({described}{', ' + identity.name if identity.name else ''}); {near}"
        )
        return Finding(
            "target", mention.value, mention.about, mention.evidence, closest.fact, closest.similarity, reason
        ), True

    def _known_within(
        self, value: str, identity: TargetIdentity, same: list[Fact], threshold: float | None = None
    ) -> _Match:
        """The known target of the same identity that VALUE names: one sharing a name with it, or,
        when VALUE carries no name, the closest wording if it is close enough."""
        if not same:
            return _Match(None, None)
        # Wordings are compared on their own words: the owner said after them is the identity's.
        value = without_owner(value, identity.whose)
        worded = [without_owner(f.value, _identity_of(f).whose) for f in same]
        vectors = self.embedder.embed([value, *worded])
        sims = vectors[1:] @ vectors[0]
        if identity.names:
            named = [i for i, f in enumerate(same) if identity.names & _identity_of(f).names]
            if not named:
                return _Match(None, None)
            best = max(named, key=lambda i: sims[i])
            return _Match(same[best], round(float(sims[best]), 4))
        best = int(sims.argmax())
        limit = self.settings.target_identity_threshold if threshold is None else threshold
        if _bare(value):
            limit = -1.0  # "American campaigns", "voters": a kind of thing and whose, nothing more to be new
        if float(sims[best]) >= limit or fold(value) == fold(worded[best]):
            return _Match(same[best], round(float(sims[best]), 4))
        return _Match(None, None)

    def _same_target(self, value: str, match: _Match, known: list[Fact] | None = None) -> bool:
        """Whether VALUE names a known target. Names carry identity: a name no known wording has
        ("Harris" against "Biden campaign") makes it another target unless the wordings are all but
        identical. Without a fresh name, the same head noun ("candidates of either party" and
        "candidates further down the ballot"), or a named person's entourage ("Biden-Harris team",
        "Joe Biden"), or a close enough wording makes it the same target."""
        if match.fact is None or match.similarity is None:
            return False
        if fold(value) == fold(match.fact.value):
            return True
        candidates = [(match.fact, match.similarity)]
        if known:
            vectors = self.embedder.embed([value, *[f.value for f in known]])
            sims = vectors[1:] @ vectors[0]
            candidates = [(f, float(sim)) for f, sim in zip(known, sims, strict=True)]
        return any(self._same_as(value, fact.value, similarity) for fact, similarity in candidates)

    def _same_as(self, value: str, other: str, similarity: float) -> bool:
        words = self._cue_words()
        names = _target_names(value, words)
        known_words = set(fold(other).split()) | {w.removesuffix("s") for w in fold(other).split()}
        fresh = {n for n in names if n not in known_words}
        # "Biden-Harris": a joint name with a known member is that member's ticket.
        fresh -= {n for n in fresh if any(n in part and (set(part) - {n}) & known_words for part in _compounds(value))}
        if fresh:
            return similarity >= self.settings.target_name_threshold
        head, other_head = _head(value, words), _head(other, words)
        if names:
            entourage = head in words["entourage"] or bool(set(_core(value, words, whole=True)) & words["entourage"])
            if entourage and names & known_words and (_target_names(other, words) or other_head in words["entourage"]):
                return True  # a named person's or body's campaign, team, staff, or people around them
            return similarity >= self.settings.target_shared_name_threshold
        if head and head in _core(other, words):
            return True  # "candidates of either party" and "candidates further down the ballot"
        return similarity >= self.settings.target_match_threshold

    def _cue_words(self) -> dict[str, set[str]]:
        c = self.cues
        return {
            "generic": {w.lower() for w in [*c.get("body_nouns", []), *c.get("entourage_nouns", [])]},
            "entourage": {w.lower() for w in c.get("entourage_nouns", [])},
            "joiners": {j.lower() for j in c.get("target_joiners", [])}
            | {w.lower() for w in c.get("target_stops", [])},
        }

    def _judge_denial(
        self, mention: Mention, kb: KnowledgeBase, fresh: list[Mention], same_story: Story | None
    ) -> tuple[Finding, bool]:
        """A denial is new when its denier has not yet denied that allegation: no earlier denial by
        it of the same accused about the same country's politics, or this allegation is aimed at a
        target of the topic's kinds that no earlier source named (another campaign, another year's
        election: another operation). Another outlet's version of a story in which the denier
        already denied brings no new denial."""
        alleged = Allegation.parse(mention.about)
        electorate = alleged.electorate
        comparable = [
            f
            for f in kb.of_kind("denial")
            if f.value == mention.value and alleged.same_politics(Allegation.parse(f.about))
        ]
        told = [f for f in (same_story.facts if same_story else []) if f.kind == "denial" and f.value == mention.value]
        if told:
            reason = f"same story as {same_story.ref}, in which {mention.value} already denied" if same_story else ""
            return Finding("denial", mention.value, mention.about, mention.evidence, told[0], None, reason), False
        where = f"about {electorate}" if electorate != "?" else "about this"
        where += f" in {alleged.year}" if alleged.year != "?" else ""
        if not comparable:
            reason = f"no earlier denial by {mention.value} {where}"
            return Finding("denial", mention.value, mention.about, mention.evidence, None, None, reason), True
        # Only a new target the denial answers for makes it another allegation: a general "Moscow
        # rejects the charges" in an article that also names a new victim denies nothing new.
        answered = set(fold(f"{alleged.words} {mention.evidence}").split())
        operation = next(
            (
                t
                for t in fresh
                if (i := TargetIdentity.parse(t.about)) is not None
                and i.kind in self.topic_kinds
                and set(fold(without_owner(t.value, i.whose)).split()) <= answered
            ),
            None,
        )
        if operation is not None:
            reason = (
                f"{mention.value} has denied {where} before, but not this allegation: "
                f'it concerns "{operation.value}", a target no earlier source named'
            )
            return Finding("denial", mention.value, mention.about, mention.evidence, comparable[-1], None, reason), True
        reason = (
            f"{mention.value} already denied this allegation ({comparable[-1].source_ref}): "
            f"same accused, {where}, no new target"
        )
        return Finding("denial", mention.value, mention.about, mention.evidence, comparable[-1], None, reason), False

    def _closest(self, text: str, facts: list[Fact], field_of) -> _Match:  # type: ignore[no-untyped-def]
        if not facts:
            return _Match(None, None)
        vectors = self.embedder.embed([text, *[field_of(f) for f in facts]])
        sims = vectors[1:] @ vectors[0]
        best = int(sims.argmax())
        return _Match(facts[best], round(float(sims[best]), 4))

    def same_story(self, vector: np.ndarray, published: datetime | None, kb: KnowledgeBase) -> Story | None:
        best: Story | None = None
        best_sim = self.settings.same_story_threshold
        window = timedelta(days=self.settings.same_story_days)
        for story in kb.stories:
            if published and story.published and abs(published - story.published) > window:
                continue
            similarity = float(story.vector @ vector)
            if similarity >= best_sim:
                best, best_sim = story, similarity
        return best


def _learned(mention: Mention, article: Article) -> Fact:
    """The fact a mention becomes, sourced to the article it was read in."""
    return Fact(
        mention.kind,
        mention.value,
        mention.about,
        mention.evidence,
        "article",
        article.url or article.title,
        article.published,
    )


def _same_politics(election: TargetIdentity, targets: list[Fact]) -> Fact | None:
    """A known target of ELECTION's country in ELECTION's year: an election dated that year, or
    anything else first reported that year (undated seeds count for any year)."""
    if not election.whose:
        return None
    years = {n for n in election.names if _YEAR.fullmatch(n)}
    for fact in targets:
        identity = _identity_of(fact)
        if identity.whose != election.whose:
            continue
        dated = {n for n in identity.names if _YEAR.fullmatch(n)} if identity.kind == "election" else set()
        seen = dated or ({str(fact.first_seen.year)} if fact.first_seen else set())
        if not years or not seen or years & seen:
            return fact
    return None


__all__ = ["Allegation", "Article", "Finding", "Mention", "Novelty", "mentions"]
