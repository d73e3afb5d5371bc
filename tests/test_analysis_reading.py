"""The spaCy reader of news text: who is accused, what is targeted, who denies.

Two kinds of test. The table in tests/data/reading_cases.yaml (about 300 invented mini-articles, each
tagged with the construction it exercises) is scored shape by shape; each aspect must reach its floor,
and the per-shape accuracy and the failing cases are printed. A few explicit cases then pin the most
important single behaviours exactly.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

import pytest

from monitor.analysis.gazetteer import default_gazetteer
from monitor.analysis.reading import Reader, load_reader
from tests.reading_cases import Case, Target, load_cases

# Every test here reads with the spaCy pipeline; the table's own checks (no model) are in
# tests/test_reading_cases.py.
pytestmark = pytest.mark.slow

# Overall accuracy floors over the table (fraction of scored cases that are right), a little under
# what the reader measures (0.94, 0.81, 0.93 on 359 / 215 / 95 cases): a regression shows here.
ACCUSED_FLOOR = 0.91
TARGETS_FLOOR = 0.78
DENIERS_FLOOR = 0.90

Aspect = Literal["accused", "targets", "deniers"]
ASPECTS: tuple[Aspect, ...] = ("accused", "targets", "deniers")
FLOORS: dict[Aspect, float] = {"accused": ACCUSED_FLOOR, "targets": TARGETS_FLOOR, "deniers": DENIERS_FLOOR}


# ------------------------------------------------------------------------------------------ what the reader found


@dataclass(frozen=True)
class Got:
    """The parts of a Reading that the table scores, in plain values."""

    accused: tuple[str, ...]
    targets: tuple[tuple[str, str, str], ...]  # (whose, kind, phrase)
    denials: tuple[tuple[str, bool], ...]  # (denier, denier_is_state)

    @property
    def deniers(self) -> tuple[str, ...]:
        return tuple(denier for denier, _ in self.denials)


def read(reader: Reader, title: str, text: str) -> Got:
    reading = reader.read(title, text)
    return Got(
        accused=tuple(reading.accused),
        targets=tuple((t.identity.whose, t.identity.kind, t.phrase) for t in reading.targets),
        denials=tuple((d.denier, bool(d.denier_is_state)) for d in reading.denials),
    )


@pytest.fixture(scope="module")
def reader() -> Reader:
    return load_reader()


@pytest.fixture(scope="module")
def got(reader: Reader) -> dict[str, Got]:
    return {case.id: read(reader, case.title, case.text) for case in load_cases()}


# ------------------------------------------------------------------------------------------ scoring


@cache
def _state_names() -> frozenset[str]:
    return frozenset(name.lower() for name in default_gazetteer().countries())


def _norm(name: str) -> str:
    name = " ".join(name.lower().split())
    return name[4:] if name.startswith("the ") else name


def same_denier(expected: str, found: str) -> bool:
    """Case-insensitive; a person or body also matches when one name contains the other."""
    a, b = _norm(expected), _norm(found)
    if a == b:
        return True
    if a in _state_names() or b in _state_names():
        return False  # a state is named exactly, never "Russian embassy" for "Russia"
    return bool(a and b) and (a in b or b in a)


def deniers_match(expected: Sequence[str], found: Sequence[str]) -> bool:
    """Equal as sets, under same_denier."""
    return all(any(same_denier(e, f) for f in found) for e in expected) and all(
        any(same_denier(e, f) for e in expected) for f in found
    )


def target_found(expected: Target, found: Sequence[tuple[str, str, str]]) -> bool:
    return any(kind == expected.kind and (not expected.whose or whose == expected.whose) for whose, kind, _ in found)


def score(aspect: Aspect, case: Case, found: Got) -> bool | None:
    """Whether the reader got this aspect of the case right; None when the case does not score it."""
    if aspect == "accused":
        return set(found.accused) == case.accused and not (set(found.accused) & case.not_accused)
    if aspect == "targets":
        if not case.targets:
            return None
        return all(target_found(t, found.targets) for t in case.targets)
    if case.deniers is None:
        return None
    return deniers_match(case.deniers, found.deniers)


def expected_text(aspect: Aspect, case: Case) -> str:
    if aspect == "accused":
        extra = f"  not: {sorted(case.not_accused)}" if case.not_accused else ""
        return f"{sorted(case.accused)}{extra}"
    if aspect == "targets":
        return ", ".join(f"{t.whose or '*'}/{t.kind}" for t in case.targets)
    return str(list(case.deniers or ()))


def got_text(aspect: Aspect, found: Got) -> str:
    if aspect == "accused":
        return str(sorted(found.accused))
    if aspect == "targets":
        return "; ".join(f"{whose or '-'}/{kind} {phrase!r}" for whose, kind, phrase in found.targets) or "[]"
    return ", ".join(f"{d}{' (state)' if s else ''}" for d, s in found.denials) or "[]"


def report(aspect: Aspect, cases: Sequence[Case], got: dict[str, Got]) -> tuple[float, str]:
    """Overall accuracy for the aspect, and a printable per-shape table with the failing cases."""
    right: Counter[str] = Counter()
    scored: Counter[str] = Counter()
    failures: dict[str, list[Case]] = defaultdict(list)
    for case in cases:
        verdict = score(aspect, case, got[case.id])
        if verdict is None:
            continue
        scored[case.shape] += 1
        if verdict:
            right[case.shape] += 1
        else:
            failures[case.shape].append(case)
    total_scored, total_right = sum(scored.values()), sum(right.values())
    accuracy = total_right / total_scored if total_scored else 1.0
    width = max((len(shape) for shape in scored), default=5)
    lines = [f"== {aspect}: {total_right}/{total_scored} = {accuracy:.3f} (floor {FLOORS[aspect]:.3f})"]
    lines.append(f"{'shape':<{width}}  right/scored  accuracy")
    for shape in sorted(scored):
        lines.append(f"{shape:<{width}}  {right[shape]:>5}/{scored[shape]:<6}  {right[shape] / scored[shape]:.3f}")
    for shape in sorted(failures):
        for case in failures[shape]:
            title = f"[{case.title}] " if case.title else ""
            lines.append(f"-- {case.id} ({shape}): {title}{case.text}")
            lines.append(f"     expected: {expected_text(aspect, case)}")
            lines.append(f"     got:      {got_text(aspect, got[case.id])}")
    return accuracy, "\n".join(lines)


# ------------------------------------------------------------------------------------------ table tests


@pytest.mark.parametrize("aspect", ASPECTS)
def test_table_accuracy(aspect: Aspect, got: dict[str, Got]) -> None:
    accuracy, table = report(aspect, load_cases(), got)
    print(table)
    assert accuracy >= FLOORS[aspect], f"{aspect} accuracy {accuracy:.3f} < {FLOORS[aspect]:.3f}\n{table}"


# ------------------------------------------------------------------------------------------ exact single behaviours


@dataclass(frozen=True)
class Exact:
    id: str
    text: str
    accused: tuple[str, ...]
    title: str = ""
    absent: tuple[str, ...] = ()  # countries named in the text that must not come out as accused


NEGATIONS = [
    Exact(
        "no-knowledge",
        "'We are not aware of any meddling by Russia in this referendum,' the electoral commission's chair said.",
        (),
        absent=("Russia",),
    ),
    Exact(
        "no-evidence",
        "Police said there was no evidence that Iran had tried to hack the county's vote-counting machines.",
        (),
        absent=("Iran",),
    ),
    Exact(
        "ruled-out",
        "The cyber agency ruled out Chinese involvement in the outage of the results website on Sunday night.",
        (),
        absent=("China",),
    ),
]


@pytest.mark.parametrize("case", NEGATIONS, ids=lambda c: c.id)
def test_negation_makes_no_actor(reader: Reader, case: Exact) -> None:
    assert list(read(reader, case.title, case.text).accused) == []


DATELINES = [
    Exact(
        "dateline-alone",
        "MOSCOW, Feb 11 (Northwire) — Russia's central bank left its key rate unchanged on Friday.",
        (),
        absent=("Russia",),
    ),
    Exact(
        "dateline-other-actor",
        "BEIJING (Northwire) — Philippine officials said Russian hackers had tried to break into the election "
        "commission's servers.",
        ("Russia",),
        absent=("China", "Philippines"),
    ),
]


@pytest.mark.parametrize("case", DATELINES, ids=lambda c: c.id)
def test_dateline_makes_no_actor(reader: Reader, case: Exact) -> None:
    accused = read(reader, case.title, case.text).accused
    assert sorted(accused) == sorted(case.accused)


COUNTERS = [
    Exact(
        "capital-counter",
        "Taiwan's security bureau said China ran thousands of fake accounts before the vote. Beijing rejected the "
        "report and said Washington was the real source of disinformation.",
        ("China",),
        absent=("United States", "Taiwan"),
    ),
    Exact(
        "ministry-counter",
        "Moldova accused Russia of buying votes. Russia's foreign ministry denied it and accused Romania of meddling "
        "in Moldova's election.",
        ("Russia",),
        absent=("Romania", "Moldova"),
    ),
]


@pytest.mark.parametrize("case", COUNTERS, ids=lambda c: c.id)
def test_counter_accusation_makes_no_actor(reader: Reader, case: Exact) -> None:
    accused = read(reader, case.title, case.text).accused
    assert sorted(accused) == sorted(case.accused)


LISTS = [
    Exact(
        "three-names",
        "Russia, China and North Korea all tried to influence the Japanese upper house election, officials said.",
        ("Russia", "China", "North Korea"),
        absent=("Japan",),
    ),
    Exact(
        "two-adjectives",
        "Iranian and Belarusian hackers broke into the Latvian parliament's network, the security police said.",
        ("Iran", "Belarus"),
        absent=("Latvia",),
    ),
]


@pytest.mark.parametrize("case", LISTS, ids=lambda c: c.id)
def test_list_gives_every_country(reader: Reader, case: Exact) -> None:
    accused = read(reader, case.title, case.text).accused
    assert sorted(accused) == sorted(case.accused)


FOREIGN_ELECTIONS = [
    (
        Exact(
            "adjective-election",
            "Russia tried to sway the Bulgarian parliamentary election with a network of fake news sites.",
            ("Russia",),
        ),
        "Bulgaria",
    ),
    (
        Exact(
            "possessive-election",
            "Investigators said China interfered in Canada's federal election through proxy donors.",
            ("China",),
        ),
        "Canada",
    ),
]


@pytest.mark.parametrize(("case", "whose"), FOREIGN_ELECTIONS, ids=lambda v: v.id if isinstance(v, Exact) else v)
def test_another_countrys_election_is_the_target(reader: Reader, case: Exact, whose: str) -> None:
    found = read(reader, case.title, case.text)
    assert sorted(found.accused) == sorted(case.accused)
    assert any(w == whose and kind == "election" for w, kind, _ in found.targets), found.targets


STATE_DENIALS = [
    (
        Exact(
            "spokesman",
            "Czech officials said Russia funded the protest movement. Kremlin spokesman Dmitry Peskov called the "
            "allegations absurd and denied them.",
            ("Russia",),
        ),
        "Russia",
    ),
    (
        Exact(
            "embassy",
            "New Zealand's spy agency said China targeted local councillors. The Chinese embassy in Wellington "
            "rejected the claims as groundless.",
            ("China",),
        ),
        "China",
    ),
    (
        Exact(
            "pronoun",
            "Albania blamed Iran for the attack on its parliament's servers. Iran's embassy issued a statement on "
            "Sunday. It denied any involvement.",
            ("Iran",),
        ),
        "Iran",
    ),
]


@pytest.mark.parametrize(("case", "state"), STATE_DENIALS, ids=lambda v: v.id if isinstance(v, Exact) else v)
def test_spokesperson_speaks_for_the_state(reader: Reader, case: Exact, state: str) -> None:
    found = read(reader, case.title, case.text)
    assert sorted(found.accused) == sorted(case.accused)
    assert found.denials and {denier for denier, _ in found.denials} == {state}, found.denials
    assert all(is_state for _, is_state in found.denials), found.denials


def test_person_denier_is_named_not_a_state(reader: Reader) -> None:
    found = read(
        reader,
        "",
        "Prosecutors say the Unity Front took money from Moscow. Party leader Dana Kovac denied the allegation.",
    )
    assert list(found.accused) == ["Russia"]
    assert len(found.denials) == 1, found.denials
    denier, is_state = found.denials[0]
    assert "dana kovac" in denier.lower() and not is_state


NOT_DENIALS = [
    "The Kremlin declined to comment on reports that Russian hackers targeted the Dutch election.",
    "The embassy denied a visa to the journalist, and parliament rejected the bill on foreign agents.",
]


@pytest.mark.parametrize("text", NOT_DENIALS, ids=["declined-to-comment", "denied-a-visa"])
def test_refusals_are_not_denials(reader: Reader, text: str) -> None:
    assert read(reader, "", text).denials == ()


def test_headline_alone_accuses(reader: Reader) -> None:
    found = read(
        reader,
        "Belarus behind attack on Lithuanian election website, Vilnius says",
        "The site was down for three hours on Sunday evening while results were being published.",
    )
    assert list(found.accused) == ["Belarus"]


@pytest.mark.parametrize(
    ("text", "whose"),
    [
        ("Qatar made no effort to influence the Kenyan election, its foreign ministry said.", "Kenya"),
        ("Belarus did not try to influence the Polish presidential election, its foreign minister said.", "Poland"),
    ],
    ids=["no-effort", "did-not-try"],
)
def test_a_state_denying_the_act_names_its_target(reader: Reader, text: str, whose: str) -> None:
    extraction = reader.read("", text)
    assert not extraction.targets, "what a state says it did not do is no new target"
    assert [(t.identity.whose, t.identity.kind) for t in extraction.denied_targets if t.identity] == [
        (whose, "election")
    ]


def test_the_victims_answer_is_no_denial(reader: Reader) -> None:
    extraction = reader.read(
        "",
        "Hackers working for Russian military intelligence stole the Dutch campaign's emails, investigators said. "
        "The Dutch foreign minister called some of the leaked files fake.",
    )
    assert extraction.accused == ["Russia"]
    assert not extraction.denials, extraction.denials


def test_an_accusation_without_an_aim_targets_the_vote_the_article_is_about(reader: Reader) -> None:
    extraction = reader.read(
        "Moldova's runoff: observers tally a bitter campaign",
        "Officials in Chisinau said Russian interference overshadowed the presidential runoff.",
    )
    assert [(t.identity.whose, t.identity.kind, t.at_issue) for t in extraction.targets if t.identity] == [
        ("Moldova", "election", True)
    ]
    unaccused = reader.read("", "Turnout in the presidential runoff fell to a record low, officials in Chisinau said.")
    assert not unaccused.targets, "no one is accused: the vote is no target"


def test_a_headline_capital_after_a_country_is_no_other_name(reader: Reader) -> None:
    extraction = reader.read("Kremlin Rejects Claims of Russian Meddling in US Elections", "")
    assert [(t.identity.whose, t.identity.kind, t.identity.name) for t in extraction.targets if t.identity] == [
        ("United States", "election", "")
    ]
    post = reader.read("", "Russian hackers targeted The Washington Post's reporters, the newspaper said.")
    assert "United States" not in post.mentioned


def test_a_target_says_whose_it_is_when_its_words_do_not(reader: Reader) -> None:
    extraction = reader.read(
        "Mozambique's election: observers count the cost",
        "Observers in Maputo said Russian operatives tried to sway the vote with fake polls.",
    )
    assert [(t.phrase, t.identity.whose) for t in extraction.targets if t.identity] == [
        ("vote (Mozambique)", "Mozambique")
    ]
    named = reader.read("", "Russian operatives tried to sway Mozambique's vote with fake polls, observers said.")
    assert [t.phrase for t in named.targets] == ["Mozambique's vote"], "its words say whose it is"


@pytest.mark.parametrize(
    ("text", "names_the_topic"),
    [
        ("Accounts linked to Azerbaijan ran an online campaign to smear the Games. The campaign failed.", False),
        ("Hackers linked to Russia broke into the Macron campaign's servers.", True),
        ("Hackers linked to Iran sent phishing emails to campaign staff.", True),
        ("Hackers linked to Iran targeted Biden's campaign.", True),
        ("Accounts linked to China ran a disinformation campaign before the vote.", True),
    ],
)
def test_a_campaign_names_the_topic_only_as_someones(reader: Reader, text: str, names_the_topic: bool) -> None:
    assert bool(reader.read("", text).topic_words) is names_the_topic
