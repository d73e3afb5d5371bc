"""The words of a target phrase: its names, its head noun, whether it is a bare noun, and whether
two identities are the same thing."""

from __future__ import annotations

import re

from monitor.analysis.facts import Fact, TargetIdentity
from monitor.analysis.text import fold


def _identity_of(fact: Fact) -> TargetIdentity:
    return TargetIdentity.parse(fact.about) or TargetIdentity("", "other", "")


def _same_identity(identity: TargetIdentity, fact: Fact) -> bool:
    """Same kind of thing of the same country; a side that does not say whose matches any. A
    candidate and a campaign are one kind when they share a name: "Joe Biden" and "Biden's team"."""
    other = TargetIdentity.parse(fact.about)
    if other is None:
        return False
    same_kind = other.kind == identity.kind or (
        {other.kind, identity.kind} == _PERSON_AND_CAMPAIGN and bool(other.names & identity.names)
    )
    return same_kind and (other.whose == identity.whose or not other.whose or not identity.whose)


_PERSON_AND_CAMPAIGN = {"candidate", "campaign"}


def _bare(phrase: str) -> bool:
    """Whether PHRASE is a bare noun, at most with whose it is: "voters", "American campaigns",
    "the country's elections", not "Black voters" nor "local election offices"."""
    countries = _country_words(phrase)
    words = [w.removesuffix("'s").removesuffix("’s") for w in phrase.lower().split()]
    rest = [
        w
        for w in words
        if w not in _DETERMINERS and w not in _QUANTITIES and w not in countries and not re.fullmatch(r"[\d,.]+", w)
    ]
    return len(rest) <= 1


# "a few individuals", "at least six candidates", "dozens of voters": how many says nothing of who.
_QUANTITIES = {
    "few",
    "several",
    "some",
    "many",
    "least",
    "at",
    "of",
    "dozens",
    "hundreds",
    "thousands",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "dozen",
}

_DETERMINERS = {
    "the",
    "a",
    "an",
    "its",
    "their",
    "his",
    "her",
    "our",
    "this",
    "that",
    "these",
    "those",
    "country",
    "nation",
}


def _country_words(phrase: str) -> set[str]:
    from monitor.analysis.gazetteer import default_gazetteer

    return {w.lower() for m in default_gazetteer().find(phrase) for w in m.alias.split()}


def _target_names(phrase: str, words: dict[str, set[str]]) -> set[str]:
    """The names in a target phrase, compound names split, generic capitalised nouns ("Party",
    "President") left out."""
    found = set()
    for name in _names(phrase):
        found.update(p for p in name.split("-") if p and p not in words["generic"])
    return found


def _compounds(phrase: str) -> list[set[str]]:
    return [set(w.lower().split("-")) for w in re.findall(r"\b[A-Z][\w']*(?:-[A-Z][\w']*)+", phrase)]


def _core(phrase: str, words: dict[str, set[str]], *, whole: bool = False) -> list[str]:
    """The words of a target phrase before its complement ("of ...", "associated with ..."), singular."""
    tokens = fold(phrase).split()
    for i, token in enumerate(tokens if not whole else []):
        if i and (token in words["joiners"] or " ".join(tokens[i : i + 2]) in words["joiners"]) and token != "and":
            tokens = tokens[:i]
            break
    return [t[:-1] if t.endswith("s") and not t.endswith("ss") else t for t in tokens]


def _head(phrase: str, words: dict[str, set[str]]) -> str:
    """The head noun of a target phrase: the last word of its core."""
    core = _core(phrase, words)
    return core[-1] if core else ""


def _names(phrase: str) -> set[str]:
    """Proper-name words of a phrase ("Harris", "Taiwanese"), lower-cased."""
    return {w.lower().removesuffix("'s") for w in re.findall(r"\b[A-Z][\w'-]*", phrase) if len(w) > 1} - {
        "the",
        "a",
        "an",
    }
