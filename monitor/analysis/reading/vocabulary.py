"""The words the reader knows: the vocabulary in data/reading.yaml, as sets of lemmas."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.analysis.gazetteer import load_data, load_yaml


@dataclass(frozen=True)
class Vocabulary:
    """The words the reader knows, as sets of lower-case lemmas (data/reading.yaml)."""

    act_verbs: frozenset[str]
    phrasal_act_verbs: frozenset[str]
    ruling_out_verbs: frozenset[str]
    light_verbs: frozenset[str]
    reaching_verbs: frozenset[str]
    delivery_verbs: frozenset[str]
    act_nouns: frozenset[str]
    qualified_act_nouns: frozenset[str]
    act_qualifiers: frozenset[str]
    actor_nouns: frozenset[str]
    actor_suffixes: frozenset[str]
    actor_preps: frozenset[str]
    accuse_verbs: frozenset[str]
    link_verbs: frozenset[str]
    receive_verbs: frozenset[str]
    received_things: frozenset[str]
    accusation_nouns: frozenset[str]
    speech_verbs: frozenset[str]
    deny_verbs: frozenset[str]
    weak_deny_verbs: frozenset[str]
    calling_verbs: frozenset[str]
    dismissive_words: frozenset[str]
    allegation_nouns: frozenset[str]
    not_denied: frozenset[str]
    self_denial_verbs: frozenset[str]
    state_voice_nouns: frozenset[str]
    body_nouns: frozenset[str]
    person_titles: frozenset[str]
    target_kinds: dict[str, frozenset[str]]
    target_rejects: frozenset[str]
    election_events: frozenset[str]
    request_verbs: frozenset[str]
    entourage_nouns: frozenset[str]
    aspect_nouns: frozenset[str]
    disguise_words: frozenset[str]
    disguise_verbs: frozenset[str]
    opposite_nouns: frozenset[str]
    stative_passives: frozenset[str]
    culpability_words: frozenset[str]
    countering_verbs: frozenset[str]
    topic_target_kinds: frozenset[str]
    topic_words: frozenset[str]
    loose_topic_words: frozenset[str]
    spreading_verbs: frozenset[str]
    knowing_words: frozenset[str]

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Vocabulary:
        def words(key: str) -> frozenset[str]:
            return frozenset(str(w).lower() for w in data.get(key) or [])

        kinds = {
            kind: frozenset(str(w).lower() for w in nouns) for kind, nouns in (data.get("target_kinds") or {}).items()
        }
        fields = {name: words(name) for name in cls.__dataclass_fields__ if name != "target_kinds"}
        return cls(target_kinds=kinds, **fields)

    def kind_of(self, lemma: str) -> str | None:
        for kind, nouns in self.target_kinds.items():
            if lemma in nouns:
                return kind
        return None


def load_vocabulary(folder: Path | None = None) -> Vocabulary:
    """The vocabulary from FOLDER/reading.yaml when it has one, else the shipped one."""
    if folder is not None and (folder / "reading.yaml").is_file():
        return Vocabulary.from_data(load_yaml(folder / "reading.yaml"))
    return Vocabulary.from_data(load_data("reading.yaml"))
