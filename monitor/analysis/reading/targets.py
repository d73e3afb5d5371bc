"""Targets: what an act is aimed at, as a clean noun phrase, and whose and what kind it is."""

from __future__ import annotations

from typing import Any

from monitor.analysis.facts import TargetIdentity, TargetMention
from monitor.analysis.reading.parse import (
    _beyond_of,
    _in,
    _locatives,
    _objects_of,
    _Sentence,
    _text,
    _with_conjuncts,
)


class _Targets:
    """Part of one article's reading (_ArticleReading): the targets of the acts."""

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

    def _election_at_issue(self, accused: set[str]) -> list[TargetMention]:
        """The vote an accusing article is about, when no act in it was read as aimed at anything: the
        first vote named where a state is accused, else in the title or the lead ("organs of the
        Russian state stood behind the plot on the day of the parliamentary elections")."""
        if not self.result.accusations or self.result.targets or self.result.denied_targets:
            return []
        accusing = {a.sentence_index for a in self.result.accusations}
        lead = [s for s in self.sentences if s.index < self.title_sentences + 2 and s.index not in accusing]
        for sentence in [s for s in self.sentences if s.index in accusing] + lead:
            for token in sentence.doc:
                if not self._names_a_vote(token) or token.dep_ in ("compound", "amod"):
                    continue
                if any(
                    (c.dep_ == "det" and c.lower_ in ("a", "an", "every", "each")) or c.lower_ in ("next", "future")
                    for c in token.children
                ):
                    continue  # "before an election", "every federal election since", "the next election"
                phrase = self._phrase(sentence, token)
                if phrase is not None:
                    identity = self._identity(sentence, token, phrase, accused)
                    return [TargetMention(_text(phrase), sentence.text, sentence.index, identity, at_issue=True)]
        return []

    def _act_by_actor(self, sentence: _Sentence, token: Any) -> bool:
        """An act whose doer is a state or an attacker ("hackers", "a foreign state"), or a passive
        act with no doer named ("the servers were breached")."""
        if token.pos_ == "VERB" and self._act_verb(token) and self._is_act(token):
            agents = self._agents(token)
            if not agents:
                # "accused of hacking the parties", "responsible for breaching the network": the
                # gerund after a preposition is the act the sentence's actor is charged with
                return (
                    any(c.dep_ == "nsubjpass" for c in token.children)
                    or token.dep_ in ("acl", "xcomp", "advcl")
                    or (token.dep_ == "pcomp" and token.tag_ == "VBG")
                )
            return any(
                self._actor_countries(sentence, a)
                or _in(a, self.v.actor_nouns | self.v.act_nouns | self.v.qualified_act_nouns)
                or a.ent_type_ in ("ORG", "NORP", "GPE")
                for a in agents
            )
        if token.pos_ == "NOUN" and (self._act_noun(token) or self._foreign_act(sentence, token)):
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
        if (
            verb
            and _in(act, self.v.delivery_verbs)
            and any(self._act_noun(c) for c in act.children if c.dep_ in ("dobj", "nsubjpass"))
        ):
            aims += self._delivered_to(act)  # "phishing emails were sent to aides of lawmakers"
        for child in act.children:
            if not verb and child.dep_ == "acl" and _in(child, self.v.delivery_verbs):
                aims += self._delivered_to(child)  # "phishing emails sent to members of the Bundestag"
            if verb and child.dep_ in ("dobj", "nsubjpass"):
                if not light or self._political(child) or _in(act, self.v.reaching_verbs):
                    aims.append(child)  # "used social media", "ran ads": the instrument, not the target
                aims += self._object_aims(child)
            elif light:
                continue
            elif (
                verb and child.dep_ == "prep" and child.lower_ == "from" and any(c.dep_ == "dobj" for c in act.children)
            ):
                aims += _objects_of(child)  # "stole documents from a campaign": where it was taken from
            elif not verb and child.dep_ == "prep" and child.lower_ == "to":
                aims += _objects_of(child)  # "bomb threats to polling places", "payments to politicians"
            elif (
                child.dep_ == "prep"
                and child.lower_ in ("in", "into", "against", "on", "at", "with", "of", "over")
                and not (verb and child.lower_ in ("of", "over"))
                # "swayed the vote with fake polls": beside an object, "with" says what was used
                and not (verb and child.lower_ == "with" and any(c.dep_ == "dobj" for c in act.children))
                # "spread it on social networks", "the leaks on WikiLeaks": where it was spread
                and not (child.lower_ in ("on", "in") and _in(act, self.v.spreading_verbs))
            ):
                if (
                    not verb
                    and child.lower_ == "of"
                    and act.lemma_.lower()
                    not in (
                        "hack",
                        "hacking",
                        "breach",
                        "attack",
                        "intrusion",
                        "infiltration",
                        "penetration",
                        "smear",
                        "manipulation",
                        "targeting",
                        "compromise",
                    )
                ):
                    continue
                aims += _objects_of(child)
            elif child.dep_ in ("acl", "xcomp", "advcl") and child.lemma_.lower() in ("target", "aim", "direct"):
                aims += self._aimed_at(child)
        if not verb:
            aims += self._target_of(act)
        # "sway the outcome of the election": what the outcome is of is the target
        aims = [o for aim in aims for o in (self._aspect_of(aim) or [aim])]
        return [a for aim in aims for a in _with_conjuncts(aim)]

    def _names_a_vote(self, token: Any) -> bool:
        """An election noun ("the vote", "the runoff"), or a noun an election word qualifies
        ("Moldova's electoral process", "the presidential race")."""
        return _in(token, self.v.election_events) or (
            token.pos_ == "NOUN"
            and any(
                c.dep_ in ("amod", "compound") and _in(c, self.v.election_events | {"electoral"})
                for c in token.children
            )
        )

    def _target_of(self, noun: Any) -> list[Any]:
        """ "The Bundestag was the target of a hacking campaign": the subject of "was the target (or
        victim) of" an act."""
        of = noun.head
        if not (noun.dep_ == "pobj" and of.lower_ == "of" and of.head.lemma_.lower() in ("target", "victim")):
            return []
        role = of.head
        if role.dep_ not in ("attr", "acomp"):
            return []
        return [c for c in role.head.children if c.dep_ in ("nsubj", "nsubjpass")]

    def _delivered_to(self, verb: Any) -> list[Any]:
        """Whom something was sent to: the "to" of a verb of sending."""
        return [o for c in verb.children if c.dep_ in ("prep", "dative") and c.lower_ == "to" for o in _objects_of(c)]

    def _aspect_of(self, noun: Any) -> list[Any]:
        if not _in(noun, self.v.aspect_nouns):
            return []
        return [o for c in noun.children if c.dep_ == "prep" and c.lower_ == "of" for o in _objects_of(c)]

    def _object_aims(self, noun: Any) -> list[Any]:
        """What an act's object is itself aimed at: "funded attacks on French lawmakers", "ran an
        operation aimed at the election", "ran accounts that targeted voters"."""
        aims: list[Any] = []
        for child in noun.children:
            if (
                child.dep_ == "prep"
                and child.lower_ in ("against", "on", "at", "about")
                and (self._act_noun(noun) or _in(noun, self.v.target_rejects | self.v.qualified_act_nouns))
            ):
                aims += _objects_of(child)
            elif child.dep_ in ("acl", "relcl") and child.lemma_.lower() in ("target", "aim", "direct"):
                aims += self._aimed_at(child)
        return aims

    def _aimed_at(self, verb: Any) -> list[Any]:
        aims = [c for c in verb.children if c.dep_ == "dobj"]
        return aims + [
            g for c in verb.children if c.dep_ == "prep" and c.lower_ in ("at", "against") for g in _objects_of(c)
        ]

    def _phrase(self, sentence: _Sentence, head: Any) -> list[Any] | None:
        """The clean noun phrase headed by HEAD: its modifiers and "of" complements, without
        clauses, appositions or trailing prepositions; None when it is no target."""
        # "the party's email accounts" tagged a verb ("accounts/VBZ") where it is an object
        plural_misread = head.pos_ == "VERB" and head.tag_ == "VBZ" and head.dep_ in ("pobj", "dobj", "nsubjpass")
        if (
            (head.pos_ not in ("NOUN", "PROPN") and not plural_misread)
            or _in(head, self.v.target_rejects)
            or head.lower_ in self.v.target_rejects
        ):
            return None
        if head.ent_type_ in ("DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "CARDINAL", "ORDINAL"):
            return None
        if head.i in sentence.countries and sentence.countries[head.i].kind in (
            "name",
            "capital",
            "metonym",
            "adjective",
        ):
            return None  # a country alone is where an operation lands, not what it targets
        if any(
            c.dep_ == "det" and c.lower_ in ("no", "how", "what", "which", "any") for c in head.children
        ) or self._act_noun(head):
            return None
        owner: list[Any] = []
        pronoun = next((c for c in head.children if c.dep_ == "poss" and c.pos_ == "PRON"), None)
        if (
            pronoun is not None
            and not any(t.pos_ == "PROPN" for t in head.subtree)
            and self.v.kind_of(head.lemma_.lower()) not in ("election", "parliament")
        ):
            # "his daughter", "its institutions": whose they are is another sentence's; "our
            # election" is the speaker's country's, which the article names. "Podesta blames Russia
            # for the hack of his email": the person the clause is about is whose it is.
            owner = self._named_owner(pronoun)
            if not owner:
                return None
        keep = [head, *owner]
        for child in head.children:
            if child.dep_ in ("det", "predet") and child.i == head.left_edge.i:
                continue
            if (
                child.dep_ in ("amod", "compound", "poss", "nummod", "nmod", "case", "quantmod", "npadvmod")
                and child.i < head.i
            ):
                keep += [t for t in child.subtree]
            elif child.dep_ == "prep" and child.lower_ in ("of", "for") and child.i > head.i:
                objects = _objects_of(child)
                if objects and objects[0].ent_type_ not in ("DATE", "TIME"):
                    keep += [child] + [t for o in objects for t in o.subtree if not _beyond_of(t, o)]
            elif child.dep_ in ("cc", "conj") and child.i > head.i and head.dep_ != "conj":
                continue
        tokens = sorted(
            {
                t.i: t
                for t in keep
                if (t.dep_ not in ("punct",) or t.text in ("-", "'")) and not (owner and t.i == pronoun.i)
            }.values(),
            key=lambda t: t.i,
        )
        while tokens and (
            tokens[0].dep_ in ("det", "cc", "prep", "punct")
            or tokens[0].lower_ in ("other", "such", "several", "many", "some", "all", "both")
        ):
            tokens = tokens[1:]
        if not tokens or len(tokens) > 12 or any(t.lower_ in ("how", "what", "which", "whom") for t in tokens):
            return None  # "how many people": a question, not someone
        if (
            len(tokens) == 1
            and tokens[0].pos_ == "NOUN"
            and tokens[0].tag_ not in ("NNS",)
            and self.v.kind_of(tokens[0].lemma_.lower()) not in ("election", "parliament", "systems")
        ):
            return None  # one common noun in the singular ("campaign") says too little
        return tokens

    def _named_owner(self, pronoun: Any) -> list[Any]:
        """The named person "his" or "her" stands for: the subject, a person's name, of the nearest
        clause above it that has one; [] when there is none."""
        if pronoun.lower_ not in ("his", "her"):
            return []
        node = pronoun
        for _ in range(12):
            if node.head.i == node.i:
                return []
            node = node.head
            subjects = [c for c in node.children if c.dep_ == "nsubj"] if node.pos_ in ("VERB", "AUX") else []
            if subjects:
                subject = subjects[0]
                # a surname the tagger misses in a headline is a person's when the article named them
                if subject.pos_ == "PROPN" and (subject.ent_type_ == "PERSON" or subject.text in self.full_names):
                    return [t for t in subject.subtree if t.pos_ == "PROPN" and t.dep_ in ("compound", "nsubj")]
                if subject.pos_ != "PRON":
                    return []
        return []

    def _identity(self, sentence: _Sentence, head: Any, phrase: list[Any], accused: set[str]) -> TargetIdentity:
        # A country in the phrase itself says whose it is ("US election infrastructure"), even one
        # accused elsewhere in the article; only the sentence around it may name the actor instead.
        # "Chinese-Canadian voters", "the Russian-speaking Estonian minority": the country nearest
        # the head is whose they are.
        before = [t for t in phrase if t.i < head.i]
        whose = self._country_in(sentence, before)[-1:] or self._country_in(sentence, phrase)
        if not whose:
            # "in Canada", "Canadian ridings" say whose; "a Russian woman" or "US adversaries" do not
            places = [
                t
                for t in _locatives(head)
                if t.dep_ in ("pobj", "poss") or self.v.kind_of(t.head.lemma_.lower()) is not None
            ]
            whose = [c for c in self._country_in(sentence, places) if c not in accused]
        owner = whose[0] if whose else ""
        kind = self.v.kind_of(head.lemma_.lower()) or next(
            (k for t in reversed(phrase) if (k := self.v.kind_of(t.lemma_.lower()))), "other"
        )
        election_body = any(self.v.kind_of(t.lemma_.lower()) == "election" for t in phrase)
        if (kind == "systems" and not election_body) or _in(head, self.v.entourage_nouns):
            # "Biden's campaign staff", "the party's aides", "members of the Bundestag": the people
            # around a campaign, a party or a parliament are that campaign's, party's or parliament's;
            # so are its systems ("the parties' networks", "the parliamentary computer network"), not
            # an election body's ("the elections committee's website" is election systems).
            kind = next(
                (
                    k
                    for t in phrase
                    if t.i != head.i and (k := self.v.kind_of(t.lemma_.lower())) in ("campaign", "party", "parliament")
                ),
                kind,
            )
        person_names = [
            t
            for t in phrase
            if t.pos_ == "PROPN"
            and t.ent_type_ in ("PERSON", "ORG", "NORP", "")
            and t.i != head.i
            and t.i not in sentence.countries
        ]
        if _in(head, self.v.entourage_nouns) and kind not in ("campaign", "party", "parliament") and person_names:
            kind = "campaign"  # "the Biden-Harris team", "Macron's staff": a candidate's people are the campaign
        names = [
            t.lower_.removesuffix("'s")
            for t in phrase
            if t.pos_ == "PROPN"
            and t.i not in sentence.countries
            and t.lower_.rstrip(".") not in self.v.person_titles
            and t.ent_type_ not in ("DATE", "TIME")  # "the October election": a month is no name
            and self.v.kind_of(t.lemma_.lower()) is None
        ]
        return TargetIdentity(owner, kind, " ".join(dict.fromkeys(names)))
