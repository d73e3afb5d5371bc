"""Accusations: a state as the doer of an act, the one blamed for it, or the owner of an act
named by a noun; unless the sentence negates it or a denier turns the charge back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from monitor.analysis.facts import Accusation
from monitor.analysis.reading.parse import (
    _countering,
    _in,
    _inside,
    _listed_beside,
    _objects_of,
    _Sentence,
    _with_conjuncts,
)

_SUBJECTS = ("nsubj", "nsubjpass", "csubj")
# Verbs that give their object a second name ("called the hack a Kremlin provocation"); "see" or
# "regard" take no second object, and what follows them names no actor.
_NAMING_VERBS = frozenset({"call", "label", "term", "brand", "dub", "describe", "characterise", "characterize"})


class _Accusations:
    """Part of one article's reading (_ArticleReading): who is accused in a sentence."""

    # ----- accusations ------------------------------------------------------------------------
    def _accusations(self, sentence: _Sentence, deniers: set[str]) -> list[Accusation]:
        found: list[Accusation] = []
        for token in sentence.doc:
            for country, how in self._actors_of(sentence, token):
                if self._negated(token) or self._spread_story(token):
                    continue
                denied = self._under_denial(token)
                if denied and sentence.index in self.state_denier and self.state_denier[sentence.index] != country:
                    continue  # in a state's denial, only that state is the one accused
                speaker = None if denied else self._accuser_state(sentence, token)
                if speaker and speaker != country and speaker in deniers:
                    continue  # a denier turning the charge back on its accuser
                if speaker is None and not denied and deniers - {country} and self._unnamed_voice(token):
                    continue  # "the embassy ... accused American authorities": the denier's voice again
                found.append(Accusation(country, sentence.text, sentence.index, how))
            if self._under_denial(token) and sentence.index in self.state_denier:
                # "Beijing rejected claims that it meddled": the pronoun is the denying state
                if self._act_by_pronoun(token) or self._unowned_act(sentence, token):
                    found.append(
                        Accusation(self.state_denier[sentence.index], sentence.text, sentence.index, f"it {token.text}")
                    )
        unique = {a.country: a for a in reversed(found)}
        return [a for a in found if unique[a.country] is a]

    def _unnamed_voice(self, token: Any) -> bool:
        """Whether who makes the charge is a pronoun or a bare state voice ("the embassy said")."""
        speaker = self._charger(token)
        if speaker is not None and speaker.pos_ == "PRON" and speaker.lower_ in ("it", "he", "she", "they", "we"):
            speaker = self._speaker_token(speaker.head) or speaker
        if speaker is None:
            return False
        if speaker.pos_ == "PRON":
            return speaker.lower_ in ("it", "he", "she", "they", "we")
        phrase = [t for t in speaker.subtree if t.dep_ != "relcl" and not _inside(t, speaker, ("relcl", "acl"))]
        # "the embassy", "the Ministry of External Affairs": a state's voice that names no state
        return _in(speaker, self.v.state_voice_nouns) and not any(
            t.ent_type_ in ("GPE", "NORP", "PERSON") for t in phrase
        )

    def _spread_story(self, token: Any) -> bool:
        """Whether TOKEN is in a story someone spread ("pushed the claim that the United States blew
        up the pipelines"): what an operation said, not a charge."""
        node = token
        for _ in range(12):
            if node.head.i == node.i:
                return False
            if (
                node.dep_ in ("acl", "ccomp")
                and _in(node.head, self.v.allegation_nouns)
                and node.head.dep_ in ("dobj", "nsubjpass")
                and _in(node.head.head, self.v.spreading_verbs)
            ):
                return True
            node = node.head
        return False

    def _under_denial(self, token: Any) -> bool:
        """Whether TOKEN is in what a denial says is untrue ("denied that Moscow had interfered")."""
        node = token
        for _ in range(12):
            if node.head.i == node.i or node.dep_ in ("conj", "advcl", "parataxis"):
                return False  # "denied it and accused Israel": a second statement, not the denied one
            node = node.head
            if _in(node, self.v.deny_verbs | self.v.weak_deny_verbs) and node.pos_ in ("VERB", "NOUN"):
                return True
            if (
                _in(node, self.v.allegation_nouns)
                and node.dep_ == "nsubj"
                and any(self._dismissive(c) for c in node.head.children if c.dep_ in ("acomp", "attr"))
            ):
                return True  # "the allegation that Kremlin-backed media sought to ... was absurd"
        return False

    def _unowned_act(self, sentence: _Sentence, token: Any) -> bool:
        """ "Russia denies any involvement": an act noun that names no doer, in a state's denial, is
        that state's alleged act."""
        return token.pos_ == "NOUN" and _in(token, self.v.act_nouns) and not self._owners(sentence, token)

    def _act_by_pronoun(self, token: Any) -> bool:
        if not (token.pos_ == "VERB" and self._act_verb(token) and self._is_act(token)):
            return False
        return any(a.lower_ in ("it", "they", "we") for a in self._agents(token))

    def _actors_of(self, sentence: _Sentence, token: Any) -> Iterator[tuple[str, str]]:
        lemma = token.lemma_.lower()
        if (
            token.pos_ in ("VERB", "AUX")
            and self._act_verb(token)
            and self._is_act(token)
            and not self._countermeasure(sentence, token)
        ):
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
        if token.pos_ in ("NOUN", "PROPN") and (self._act_noun(token) or self._foreign_act(sentence, token)):
            for owner in self._owners(sentence, token):
                yield owner, f"{owner} {token.text}"
            if token.dep_ == "pobj" and _in(token.head.head, self.v.culpability_words):
                # "the Chinese state was responsible for the hack"
                for agent in (c for c in token.head.head.head.children if c.dep_ == "nsubj"):
                    for country in self._actor_countries(sentence, agent):
                        yield country, f"{agent.text} responsible"
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
            t
            for t in verb.subtree
            if t.i > start
            and t.pos_ in ("NOUN", "PROPN")
            and self.v.kind_of(t.lemma_.lower()) is None
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

    def _accused_objects(self, verb: Any) -> list[Any]:
        """ "blamed Iran", "accused China of", "pinned it on Moscow", "linked to Russia", "Iran was
        accused of": whom an accusing verb charges, when what it charges is an act."""
        lemma = verb.lemma_.lower()
        charged: list[Any] = []
        if lemma in (
            "accuse",
            "blame",
            "implicate",
            "suspect",
            "fault",
            "name",
            "identify",
            "charge",
            "indict",
            "sanction",
            "expose",
            "finger",
            "condemn",
            "denounce",
            "single",
        ):
            charged += [c for c in verb.children if c.dep_ in ("dobj", "nsubjpass")]
            if (
                not charged
                and verb.tag_ in ("VBN", "VBD")
                and any(c.dep_ == "prep" and c.lower_ in ("for", "of", "over") for c in verb.children)
            ):
                # a headline's passive without its "is": "Belarus blamed for cyberattack", "Iran
                # accused of hacking" (the verb takes an object, so a subject without one is charged)
                charged += [c for c in verb.children if c.dep_ == "nsubj"]
        preps = [c for c in verb.children if c.dep_ in ("prep", "agent")]
        if lemma in ("pin", "blame") and not any(p.lower_ == "on" for p in preps):
            # "pinned the breach of the network on North Korea": the parser hangs "on" on the object's last noun
            preps += [
                t for o in verb.children if o.dep_ == "dobj" for t in o.subtree if t.dep_ == "prep" and t.lower_ == "on"
            ][-1:]
        for child in preps:
            if child.lower_ in ("to", "on", "at", "with"):
                charged += _objects_of(child)
        if lemma in ("point",):
            charged += [g for c in verb.children if c.dep_ == "prep" and c.lower_ == "at" for g in _objects_of(c)]
        if charged:
            # "implicated China, along with Russia and Iran, in efforts to": charged beside the object
            charged += [o for holder in (verb, *charged) for o in _listed_beside(holder)]
        # "Iran, which it blamed for a cyberattack": the relative pronoun stands for its antecedent
        charged = [verb.head if c.lower_ in ("which", "who", "whom") and verb.dep_ == "relcl" else c for c in charged]
        if not charged:
            return []
        if lemma in (
            "accuse",
            "charge",
            "indict",
            "suspect",
            "sanction",
            "condemn",
            "denounce",
            "warn",
            "name",
            "identify",
            "expose",
            "single",
        ):
            charge = [t for c in verb.children if c.dep_ in ("prep", "advcl", "xcomp", "ccomp") for t in c.subtree]
            charge += [t for o in charged for c in o.children if c.dep_ == "prep" for t in c.subtree]
            if not any(self._act_word(t) or self._political(t) for t in charge) and not self._act_in_clause(verb):
                return []
        elif not self._act_in_clause(verb) and not self._actor_linked(verb):
            return []
        return [a for agent in charged for a in _with_conjuncts(agent)]

    def _actor_linked(self, verb: Any) -> bool:
        """Whether what a linking verb ties to someone is a doer ("the bots that spammed opposition
        pages were tied to Azerbaijan", "linked the accounts to Iran")."""
        linked = [c for c in verb.children if c.dep_ in ("dobj", "nsubjpass")]
        return _in(verb, self.v.link_verbs) and any(_in(t, self.v.actor_nouns) for t in linked)
