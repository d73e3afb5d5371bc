"""What an article says, as mentions to judge: the accused states, the targets with their identity
(an election dated by its year), and each denier's denial with the allegation it answers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from monitor.analysis.facts import Extraction, FactKind, TargetIdentity


@dataclass(frozen=True)
class Mention:
    kind: FactKind
    value: str
    about: str
    evidence: str
    specific: bool = False  # a denial that names what it denies in its own words
    at_issue: bool = False  # a target that is only the vote the article is about


def mentions(extraction: Extraction, published: datetime | None = None) -> list[Mention]:
    """What an article says, one mention per kind and value: the accused states, the targets with
    their identity (an election dated by its year, else the article's), and one denial per denier
    with the allegation it answers: who is accused, whose politics, which operation (the article's
    first identified target) and the words."""
    said: list[Mention] = []
    seen: set[tuple[str, str, str]] = set()

    def add(mention: Mention) -> None:
        key = (mention.kind, mention.value, mention.about)
        if key not in seen:
            seen.add(key)
            said.append(mention)

    for accusation in extraction.accusations:
        add(Mention("country", accusation.country, "", accusation.evidence))
    years = _election_years(extraction)
    identities = [
        _dated(t.identity, t.phrase, published, years, extraction.election_years) if t.identity else None
        for t in extraction.targets
    ]
    for target, identity in zip(extraction.targets, identities, strict=True):
        add(
            Mention(
                "target", target.phrase, identity.key() if identity else "", target.evidence, at_issue=target.at_issue
            )
        )
    operation = next((i for i in identities if i is not None and i.kind != "other"), None)
    for denial in extraction.denials:
        electorate = (operation.whose if operation else "") or extraction.electorate(
            exclude={d.denier for d in extraction.denials}
        )
        # What is denied: the denier's own words when they name it ("that it was behind the hoax
        # bomb threats"), else the allegation the denial answers, else the article's lead.
        stated = [d.denied for d in extraction.denials if d.denier == denial.denier and d.denied]
        specific = max(stated, key=lambda t: len(t.split()), default="")
        # A denial that names what it is about ("denied interfering in the vote") answers that, not
        # the article's lead.
        names_its_target = any(
            t.sentence_index == denial.sentence_index and t.identity and t.identity.kind != "other"
            for t in [*extraction.targets, *extraction.denied_targets]
        )
        answered = specific or (
            denial.allegation if denial.allegation != denial.evidence or names_its_target else extraction.lead()
        )
        year = next((n for n in operation.names if _YEAR.fullmatch(n)), "") if operation else ""
        # Without a dated operation, the year the allegation itself states ("Madagascar's 2018
        # presidential election"), else the article's.
        year = year or next(iter(_YEAR.findall(answered)), "") or (str(published.year) if published else "")
        about = Allegation(
            denial.accused or "?", electorate or "?", year or "?", operation.key() if operation else "?", answered
        ).key()
        if ("denial", denial.denier) in {(m.kind, m.value) for m in said}:
            continue  # one denial per denier per article: the first states it best
        add(Mention("denial", denial.denier, about, denial.evidence, bool(specific)))
    return said


class Allegation(NamedTuple):
    """The allegation a denial answers, kept in the denial fact's key: who is accused, whose
    politics it concerns, which year's, the operation's target identity and the words."""

    accused: str
    electorate: str
    year: str
    operation: str
    words: str

    def key(self) -> str:
        text = re.sub(r"\s+", " ", self.words).strip()
        return " | ".join([self.accused, self.electorate, self.year, self.operation, text])[:300]

    @classmethod
    def parse(cls, about: str) -> Allegation:
        parts = about.split(" | ", 4)
        if len(parts) == 5 and (parts[2] == "?" or _YEAR.fullmatch(parts[2])):
            return cls(*parts)
        # Keys written before years and operations were kept: accused | electorate | words.
        parts = about.split(" | ", 2)
        return cls(parts[0], parts[1], "?", "?", parts[2]) if len(parts) == 3 else cls("?", "?", "?", "?", about)

    def same_politics(self, other: Allegation) -> bool:
        """Same accused, same country's politics, same year, where both sides say."""
        return all(
            a == b or "?" in (a, b)
            for a, b in ((self.accused, other.accused), (self.electorate, other.electorate), (self.year, other.year))
        )


_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")


def _election_years(extraction: Extraction) -> dict[str, str]:
    """For each country, the one year the article's own words give its elections, if just one:
    "the 2020 US presidential elections" dates "US elections" in the same article."""
    found: dict[str, set[str]] = {}
    for target in extraction.targets:
        if target.identity and target.identity.kind == "election" and target.identity.whose:
            found.setdefault(target.identity.whose, set()).update(_YEAR.findall(target.phrase))
    return {whose: next(iter(years)) for whose, years in found.items() if len(years) == 1}


def _dated(
    identity: TargetIdentity,
    phrase: str,
    published: datetime | None,
    article_years: dict[str, str] | None = None,
    election_years: dict[str, set[str]] | None = None,
) -> TargetIdentity:
    """An election is that year's election: the year the phrase names, else the one year the article
    gives that country's elections, else the article's year."""
    if identity.kind != "election":
        return identity
    stated = (article_years or {}).get(identity.whose)
    given = (election_years or {}).get(identity.whose, set()) | (election_years or {}).get("", set())
    if not stated and len(given) == 1:
        stated = next(iter(given))
    years = _YEAR.findall(phrase) or ([stated] if stated else []) or ([str(published.year)] if published else [])
    names = [n for n in identity.name.split() if not _YEAR.fullmatch(n)]
    return TargetIdentity(identity.whose, identity.kind, " ".join([*names, *dict.fromkeys(years)]))
