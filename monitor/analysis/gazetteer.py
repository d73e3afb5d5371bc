"""Which country a name stands for: country names, adjectives, capitals, metonyms, state media,
state organs and state-linked hacking groups, all from the YAML files in data/."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

AliasKind = Literal["name", "adjective", "capital", "metonym", "state_media", "state_organ", "threat_group"]


@dataclass(frozen=True)
class CountryMention:
    country: str  # canonical short name, e.g. "North Korea"
    alias: str  # the words as written
    kind: AliasKind
    start: int
    end: int


# libyaml's parser where PyYAML was built with it: the word lists load ten times faster, with the
# same safe constructors and the resolvers below.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _WordsLoader(_SafeLoader):
    """YAML 1.1 reads "no", "on" and "NO" (Norway) as booleans; in word lists they are words."""


_WordsLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_data(name: str) -> Any:
    """A YAML data file shipped in monitor/analysis/data/."""
    with resources.files("monitor.analysis").joinpath("data", name).open("r", encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_WordsLoader)


def load_yaml(path: Path) -> Any:
    """A user's YAML word list, read like the shipped ones."""
    with path.open("r", encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_WordsLoader)


def _pycountry_names(code: str) -> tuple[str, list[str]]:
    import pycountry

    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        return code, []
    names = [country.name, getattr(country, "common_name", ""), getattr(country, "official_name", "")]
    names = [n for n in names if n and "," not in n]  # "Korea, Republic of" is never written in prose
    return country.name, names


class Gazetteer:
    """Finds country mentions in text; longest alias wins, acronyms only in capitals."""

    def __init__(self, countries: dict[str, Any], state_actors: dict[str, Any]) -> None:
        self._aliases: dict[str, tuple[str, AliasKind]] = {}
        self._names: dict[str, str] = {}
        never_alone = set(countries.get("never_alone") or [])
        import pycountry

        extras = countries.get("countries") or {}
        for country in pycountry.countries:
            code = country.alpha_2
            default_name, names = _pycountry_names(code)
            entry = extras.get(code) or {}
            canonical = entry.get("name") or getattr(country, "common_name", None) or default_name
            self._names[code] = canonical
            for name in [canonical, *names, *(entry.get("also") or [])]:
                self._add(name, canonical, "name", never_alone)
            for adjective in entry.get("adj") or []:
                self._add(adjective, canonical, "adjective", never_alone)
            for capital in entry.get("cap") or []:
                self._add(capital, canonical, "capital", never_alone)
            for metonym in entry.get("metonyms") or []:
                self._add(metonym, canonical, "metonym", never_alone)
        for section, kind in (
            ("state_media", "state_media"),
            ("state_organs", "state_organ"),
            ("threat_groups", "threat_group"),
        ):
            for code, names in ((state_actors.get(section) or {}).get("entries") or {}).items():
                canonical = self._names.get(code, code)
                for name in names:
                    self._add(name, canonical, kind, never_alone)  # type: ignore[arg-type]
        ordered = sorted(self._aliases, key=len, reverse=True)
        pattern = "|".join(re.escape(a) for a in ordered)
        # Letters or digits on either side mean a longer word ("Iranians" is handled by the plural).
        self._pattern = re.compile(rf"(?<![\w-])(?:{pattern})(?:s)?(?![\w])")
        self._lower = {a.lower(): a for a in ordered if not _is_acronym(a)}

    def _add(self, alias: str, country: str, kind: AliasKind, never_alone: set[str]) -> None:
        alias = alias.strip()
        if not alias or alias in never_alone:
            return
        # The first meaning given wins: a country's own name beats a group that shares it.
        self._aliases.setdefault(alias, (country, kind))

    def find(self, text: str) -> list[CountryMention]:
        mentions: list[CountryMention] = []
        for match in self._pattern.finditer(text):
            written = match.group(0)
            alias = written if written in self._aliases else written[:-1]
            if alias not in self._aliases:
                continue
            if written != alias and _is_acronym(alias):
                continue  # "USs" or "RTs" are not words
            country, kind = self._aliases[alias]
            mentions.append(CountryMention(country, written, kind, match.start(), match.end()))
        return mentions

    def countries(self) -> list[str]:
        return sorted(set(self._names.values()))


def _is_acronym(alias: str) -> bool:
    letters = [c for c in alias if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


@lru_cache(maxsize=1)
def default_gazetteer() -> Gazetteer:
    return Gazetteer(load_data("countries.yaml"), load_data("state_actors.yaml"))
