"""The table of reading cases (tests/data/reading_cases.yaml): about 300 invented mini-articles, each
tagged with the construction it exercises and what the reader should find there. Loading it needs no
model; tests/test_analysis_reading.py scores the reader on it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CASES_PATH = Path(__file__).resolve().parent / "data" / "reading_cases.yaml"


# ------------------------------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Target:
    whose: str  # "" when the case does not say whose it is: any country matches
    kind: str


@dataclass(frozen=True)
class Case:
    id: str
    shape: str
    title: str
    text: str
    accused: frozenset[str]
    not_accused: frozenset[str]
    targets: tuple[Target, ...]
    deniers: tuple[str, ...] | None  # None: the case does not score deniers


@cache
def load_cases() -> tuple[Case, ...]:
    # libyaml's parser where PyYAML was built with it: the same table, a tenth of the time.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    raw = yaml.load(CASES_PATH.read_text(encoding="utf-8"), Loader=loader)
    cases = []
    for entry in raw["cases"]:
        expect: dict[str, Any] = entry["expect"]
        deniers = expect.get("deniers")
        cases.append(
            Case(
                id=str(entry["id"]),
                shape=str(entry["shape"]),
                title=str(entry.get("title") or ""),
                text=str(entry["text"]),
                accused=frozenset(expect["accused"]),
                not_accused=frozenset(expect.get("not_accused") or []),
                targets=tuple(Target(str(t["whose"] or ""), str(t["kind"])) for t in expect.get("targets") or []),
                deniers=None if deniers is None else tuple(str(d) for d in deniers),
            )
        )
    return tuple(cases)
