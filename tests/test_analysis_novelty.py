"""Novelty on targets with an identity, driven without the embedding model.

The embedder is a stand-in (a bag of words hashed into a unit vector): the real model cannot make
wordings with no word in common close, so these tests only ever rely on shared words being close and
disjoint wordings being far, which the real model also does. The end-to-end tests use the real one.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.analysis.facts import Fact, Story, TargetIdentity
from monitor.analysis.gazetteer import load_data, load_yaml
from monitor.analysis.knowledge import KnowledgeBase
from monitor.analysis.novelty import Mention, Novelty
from monitor.config import AnalysisSettings

DIMENSION = 256
TOPIC_KINDS = frozenset({"election", "campaign", "candidate", "party", "parliament", "voters"})


class WordsEmbedder:
    """Each word a fixed random direction; a text the normalised sum of its words."""

    dimension = DIMENSION

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little")
                out[row] += np.random.default_rng(seed).standard_normal(DIMENSION).astype(np.float32)
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else out[row]
        return out


@pytest.fixture(scope="module")
def cues() -> dict[str, Any]:
    """The shipped cue words, read once for the module: Novelty only reads them."""
    return load_data("cues.yaml")


def test_word_lists_read_yaml_booleans_as_words(tmp_path: Path) -> None:
    # The loader behind the cue words and the user's lists: "NO" is Norway, not False.
    words = tmp_path / "words.yaml"
    words.write_text("[no, NO, on, Off, yes, 2016]\n", encoding="utf-8")
    assert load_yaml(words) == ["no", "NO", "on", "Off", "yes", 2016]


@pytest.fixture()
def novelty(cues: dict[str, Any]) -> Novelty:
    return Novelty(WordsEmbedder(), AnalysisSettings(), cues, TOPIC_KINDS)  # type: ignore[arg-type]


class _Article:
    title = "an article"
    url = "https://news.example/a"
    published = datetime(2025, 1, 1, tzinfo=UTC)


def _target(value: str, whose: str, kind: str, name: str = "") -> Fact:
    return Fact(
        "target", value, TargetIdentity(whose, kind, name).key(), f"Hackers targeted the {value}.", "seed", "seed.txt"
    )


def _mention(value: str, whose: str, kind: str, name: str = "") -> Mention:
    return Mention("target", value, TargetIdentity(whose, kind, name).key(), f"Hackers targeted the {value}.")


def _judge(novelty: Novelty, mention: Mention, *facts: Fact, story: Story | None = None) -> tuple[bool, str]:
    findings, known, _ = novelty.judge([mention], KnowledgeBase(facts), story, _Article())
    if findings:
        return True, findings[0].reason
    return False, known[0].reason


KNOWN = [
    _target("2020 presidential election", "United States", "election"),
    _target("Trump campaign", "United States", "campaign", "trump"),
    _target("state election systems", "United States", "systems"),
]


@pytest.mark.parametrize(
    ("mention", "is_new"),
    [
        # Another country's election is new, however alike the words.
        (_mention("2022 Brazilian presidential election", "Brazil", "election"), True),
        (_mention("presidential election", "France", "election"), True),
        # The same country's election in other words is known.
        (_mention("presidential election", "United States", "election"), False),
        # The same campaign in other words is known: the name carries the identity.
        (_mention("Donald Trump's re-election effort", "United States", "campaign", "donald trump"), False),
        # A candidate and their campaign are one target when they share a name.
        (_mention("President Trump", "United States", "candidate", "trump"), False),
        # Another named campaign is another target.
        (_mention("Harris campaign", "United States", "campaign", "harris"), True),
        # Another kind of thing of the same country is another target.
        (_mention("state election systems", "United States", "voters"), True),
        # A named person the knowledge base does not name is new even beside a known kind.
        (_mention("Senator Jane Roe", "United States", "candidate", "jane roe"), True),
    ],
)
def test_targets_are_judged_on_their_identity_first(novelty: Novelty, mention: Mention, is_new: bool) -> None:
    new, reason = _judge(novelty, mention, *KNOWN)
    assert new is is_new, reason


def test_an_unnamed_target_of_a_known_identity_needs_a_close_wording(novelty: Novelty) -> None:
    known = _target("voter registration databases", "United States", "systems")
    close, _ = _judge(novelty, _mention("state voter registration databases", "United States", "systems"), known)
    far, reason = _judge(novelty, _mention("county payroll servers", "United States", "systems"), known)
    assert not close
    assert far, reason


def test_the_reason_names_the_identity_and_the_closest_known_target(novelty: Novelty) -> None:
    new, reason = _judge(novelty, _mention("Bundestag", "Germany", "parliament", "bundestag"), *KNOWN)
    assert new
    assert "parliament of Germany" in reason and "bundestag" in reason


def test_a_second_wording_in_the_same_article_is_reported_once(novelty: Novelty) -> None:
    first = _mention("Moldovan presidential election", "Moldova", "election")
    second = _mention("Moldova's presidential vote", "Moldova", "election")
    findings, known, facts = novelty.judge([first, second], KnowledgeBase(KNOWN), None, _Article())
    assert [f.value for f in findings] == ["Moldovan presidential election"]
    assert "already reported in this article" in known[0].reason
    assert [f.value for f in facts] == ["Moldovan presidential election"]


def test_another_outlets_version_brings_only_fresh_names(novelty: Novelty) -> None:
    earlier = _target("Moldovan presidential election", "Moldova", "election")
    story = Story("story-1", "Hackers hit Moldova's election", np.zeros(DIMENSION, dtype=np.float32), None, [earlier])
    kb_facts = [*KNOWN, earlier]
    reworded, reason = _judge(
        novelty, _mention("Moldova's central election commission", "Moldova", "systems"), *kb_facts, story=story
    )
    named, _ = _judge(
        novelty, _mention("candidate Ana Rusu", "Moldova", "candidate", "ana rusu"), *kb_facts, story=story
    )
    assert not reworded, reason
    assert named


def test_a_fact_without_identity_is_never_the_same_identity(novelty: Novelty) -> None:
    legacy = Fact("target", "presidential election", "", "", "seed", "seed.txt")
    new, reason = _judge(novelty, _mention("presidential election", "United States", "election"), legacy)
    assert new, reason


@pytest.mark.parametrize(
    ("value", "is_new"),
    [
        # A bare kind of thing with whose it is names nothing new once that kind of thing of that
        # country is known, however far its words are from the known one's.
        ("American campaigns", False),
        ("the campaigns", False),
        # How many says nothing of who: "a few", "at least six".
        ("a few campaigns", False),
        ("at least six campaigns (United States)", False),
        # A qualifier makes it a thing of its own, judged by its wording.
        ("county campaigns of Green candidates", True),
    ],
)
def test_a_bare_noun_names_nothing_new(novelty: Novelty, value: str, is_new: bool) -> None:
    new, reason = _judge(novelty, _mention(value, "United States", "campaign"), *KNOWN)
    assert new is is_new, reason
