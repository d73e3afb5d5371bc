"""What an act of interference is, who does it, and for which state: act words, their doers and
the states those doers belong to, negation."""

from __future__ import annotations

import re
from typing import Any

from monitor.analysis.reading.parse import _in, _listed_beside, _negated_here, _objects_of, _Sentence, _with_conjuncts

# Prepositions that say where a doer works from.
_BASE_PREPS = frozenset({"in", "inside", "from", "out", "within"})
# Prepositions that say when something happened, never what it was aimed at.
_TIME_PREPS = frozenset({"before", "after", "during", "ahead", "since", "until", "amid", "throughout"})


class _Acts:
    """Part of one article's reading (_ArticleReading): acts, their doers and their states."""

    def _act_noun(self, noun: Any) -> bool:
        """An act named by a noun: "interference", or "an influence operation" (a qualified one)."""
        if _in(noun, self.v.act_nouns):
            return True
        if not _in(noun, self.v.qualified_act_nouns):
            return False
        qualifiers = [t for c in noun.children if c.dep_ in ("amod", "compound", "nmod", "npadvmod") for t in c.subtree]
        return any(_in(t, self.v.act_qualifiers) or _in(t, self.v.act_nouns) for t in qualifiers)

    def _foreign_act(self, sentence: _Sentence, noun: Any) -> bool:
        """A state's campaign, operation or effort in another country's politics is an act however
        unqualified: "Moscow's campaign in Madagascar's presidential election" (where "the Colombian
        campaign" alone is Colombia's own)."""
        if not _in(noun, self.v.qualified_act_nouns) or not (owners := self._owners(sentence, noun)):
            return False
        for child in noun.children:
            if child.dep_ != "prep" or child.lower_ not in ("in", "against", "into", "on", "targeting"):
                continue
            for aim in _objects_of(child):
                kind = self.v.kind_of(aim.lemma_.lower())
                if kind in self.v.topic_target_kinds and not set(self._country_in(sentence, aim.subtree)) & set(owners):
                    return True
        return False

    def _act_verb(self, verb: Any) -> bool:
        """An act verb, or a phrasal one whose particle makes it an act ("broke into", "took down")."""
        return verb.lemma_.lower() in self.v.act_verbs or self._phrasal_in(verb, self.v.phrasal_act_verbs)

    @staticmethod
    def _phrasal_in(verb: Any, phrasal: frozenset[str]) -> bool:
        """Whether VERB with one of its particles ("ruled out", "broke into") is one of PHRASAL."""
        if verb.pos_ not in ("VERB", "AUX"):
            return False
        particles = (
            c.lower_ for c in verb.children if c.dep_ in ("prt", "prep", "advmod", "acomp", "oprd") and c.i > verb.i
        )
        return any(f"{verb.lemma_.lower()} {p}" in phrasal for p in particles)

    def _is_act(self, verb: Any) -> bool:
        """A light verb ("used", "ran", "sent") is an act only with an act ("ran fake accounts") or
        a political target ("paid local politicians", "recruited owners to promote a candidate")
        in its object, complement or purpose clause."""
        if verb.lemma_.lower() not in self.v.light_verbs:
            return True
        if _in(verb, self.v.reaching_verbs) and any(
            self.v.kind_of(w.lemma_.lower())
            for c in verb.children
            if c.dep_ in ("dobj", "nsubjpass")
            for w in c.subtree
        ):
            return True  # "accessed copies of the electoral register": reaching any kind of target is the act
        for child in verb.children:
            if child.dep_ in (
                "dobj",
                "nsubjpass",
                "xcomp",
                "attr",
                "pobj",
                "prep",
                "ccomp",
                "acomp",
                "advcl",
                "dative",
            ):
                if child.dep_ == "prep" and child.lower_ in _TIME_PREPS:
                    continue  # "sent troops before the vote": when, not what
                if child.dep_ in ("xcomp", "ccomp", "attr", "acomp"):
                    # "tried to find out where to vote": an aim of one's own, an act only if it is one
                    if any(
                        self._act_noun(w)
                        or w.pos_ == "VERB"
                        and w.i != verb.i
                        and self._act_verb(w)
                        and self._is_act(w)
                        for w in child.subtree
                    ):
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
        return (self.v.kind_of(noun.lemma_.lower()) or "") in self.v.topic_target_kinds and not _in(
            noun, self.v.qualified_act_nouns
        )

    def _agents(self, verb: Any) -> list[Any]:
        """The doers of VERB: its subject, the "by" of a passive, the subject of the verb it
        completes ("tried to sway"), or the noun a relative or participle clause hangs from."""
        if (
            verb.dep_ in ("xcomp", "ccomp")
            and _in(verb.head, self.v.request_verbs)
            and (verb.tag_ == "VB" or any(c.dep_ == "aux" and c.tag_ == "TO" for c in verb.children))
        ):
            # "pressured Ukrainian officials to investigate": asked for, not done by them; but "tells
            # partners networks inflamed the vote" reports what the networks did
            return []
        agents = [c for c in verb.children if c.dep_ == "nsubj"]
        # the parser sometimes hangs the subject on the auxiliary ("Cuba is almost certainly trying")
        agents = agents or [
            g for a in verb.children if a.dep_ in ("aux", "auxpass") for g in a.children if g.dep_ == "nsubj"
        ]
        if not agents and _in(verb, self.v.stative_passives):
            agents = [c for c in verb.children if c.dep_ == "nsubjpass"]  # "Iran was engaged in", "was involved in"
        if verb.dep_ == "relcl" and any(a.lower_ in ("that", "which", "who") for a in agents):
            agents = [verb.head]  # "accounts that attacked candidates": the accounts did
        agents += [g for c in verb.children if c.dep_ == "agent" for g in _objects_of(c)]
        if not agents and verb.dep_ in ("xcomp", "advcl", "conj") and verb.head.i != verb.i:
            if verb.dep_ == "conj" or _in(verb.head, self.v.act_verbs) or verb.dep_ == "xcomp":
                agents = self._agents(verb.head) if verb.head.pos_ in ("VERB", "AUX") else []
            if not agents and verb.dep_ == "xcomp" and _in(verb.head, self.v.speech_verbs | self.v.accuse_verbs):
                # "Belarus is said to have paid ...", "Iran is suspected of having hacked ...": raised subject
                agents = [c for c in verb.head.children if c.dep_ == "nsubjpass"]
        if not agents and verb.dep_ == "pcomp" and _in(verb.head.head, self.v.culpability_words):
            # "Belarus is responsible for hacking": the one the adjective describes
            agents = [c for c in verb.head.head.head.children if c.dep_ == "nsubj"]
        if not agents and verb.dep_ == "pcomp" and _in(verb.head.head, self.v.accuse_verbs):
            # "operatives charged with hacking the campaign", "Iran was accused of hacking": the one
            # charged did it
            charging = verb.head.head
            agents = [c for c in charging.children if c.dep_ in ("dobj", "nsubjpass")]
            if not agents and charging.dep_ == "acl" and charging.head.pos_ in ("NOUN", "PROPN"):
                agents = [charging.head]
        if not agents and verb.dep_ in ("relcl", "acl") and verb.head.pos_ in ("NOUN", "PROPN"):
            if not any(c.dep_ == "nsubjpass" for c in verb.children):
                agents = [verb.head]
        # "Russia, along with China, tried to sway the vote": both did (the parser hangs "along" on
        # the subject or on the verb)
        beside = [*_listed_beside(verb), *(b for agent in agents for b in _listed_beside(agent))] if agents else []
        return [a for agent in agents for a in _with_conjuncts(agent)] + beside

    def _act_word(self, token: Any) -> bool:
        lemma = token.lemma_.lower()
        return (
            lemma in self.v.act_nouns
            or (lemma in self.v.act_verbs and lemma not in self.v.light_verbs)
            or lemma.startswith(("interfer", "meddl", "hack", "cyber"))
        )

    def _act_in_clause(self, verb: Any) -> bool:
        return any(self._act_word(t) for t in verb.subtree if t.i != verb.i)

    def _owners(self, sentence: _Sentence, noun: Any) -> list[str]:
        """The states an act or actor noun belongs to: "Russia's interference", "Iranian hackers",
        "a Kremlin-linked group", "interference by China", "hackers working for the GRU"."""
        if _in(noun, self.v.opposite_nouns):
            return []  # "US adversaries", "Russia's rivals": the country is whom they oppose
        owners: list[str] = []
        # "fake American personas", "bogus Ukrainian news sites": the country is the disguise
        disguised = any(_in(c, self.v.disguise_words) for c in noun.children if c.dep_ == "amod" and c.i < noun.i)
        for child in noun.children:
            if child.dep_ in ("poss", "amod", "compound", "nmod", "npadvmod") and child.i < noun.i:
                owners += [] if disguised and child.dep_ != "poss" else self._modifier_countries(sentence, child)
            elif child.dep_ in ("prep", "agent") and child.lower_ in ("by", "from"):
                for obj in _objects_of(child):
                    owners += self._actor_countries(sentence, obj)
            elif (
                child.dep_ == "prep"
                and child.lower_ == "of"
                and _in(noun, self.v.actor_nouns)
                and not self._act_noun(noun)
            ):
                # "officers of the GRU", "an agent of Qatar's intelligence service"
                for obj in _objects_of(child):
                    owners += self._actor_countries(sentence, obj)
            elif child.dep_ in ("acl",) and _in(child, self.v.actor_suffixes | {"work", "operate", "act"}):
                for prep in child.children:
                    if prep.dep_ in ("prep", "agent") and prep.lower_ in self.v.actor_preps:
                        for obj in _objects_of(prep):
                            owners += self._actor_countries(sentence, obj)
        if noun.i in sentence.countries and sentence.countries[noun.i].kind in (
            "state_media",
            "state_organ",
            "threat_group",
        ):
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
            if (
                after is not None
                and after.text == "-"
                and t.i + 2 < len(sentence.doc)
                and sentence.doc[t.i + 2].i in sentence.countries
            ):
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
            if node.i != modifier.i and not (
                node.i in sentence.countries or _in(node, passing) or node.text in ("-", "pro")
            ):
                return False
        return False

    def _actor_countries(self, sentence: _Sentence, agent: Any, *, direct: bool = False) -> list[str]:
        """The states a doer stands for: itself when it names one ("Russia", "the Kremlin", "APT28"),
        or through what qualifies it ("Russian hackers", "a group operating out of Iran")."""
        if self._disguise(agent):
            return []
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

    def _disguise(self, token: Any) -> bool:
        """Whether TOKEN is what someone posed as ("posing as Americans"): read from the words, as
        the parser often makes the disguise the subject of the verb that follows."""
        doc = token.doc
        start = token.left_edge.i
        return (
            start >= 2
            and doc[start - 1].lower_ == "as"
            and any(_in(t, self.v.disguise_verbs) for t in doc[max(0, start - 4) : start - 1])
        )

    def _based_in(self, sentence: _Sentence, agent: Any) -> list[str]:
        """Where a doer works from, when nothing else names its state: "a troll farm in Russia",
        "attackers inside Russia", "operatives stationed in Baku", "pages managed from Kigali"."""
        if not (_in(agent, self.v.actor_nouns) or any(_in(t, self.v.act_nouns) for t in [agent, *agent.lefts])):
            return []  # "protesters in Tbilisi disrupted the rally" names where, not for whom
        preps = [c for c in agent.children if c.dep_ == "prep"]
        preps += [
            p for c in agent.children if c.dep_ == "acl" and c.tag_ == "VBN" for p in c.children if p.dep_ == "prep"
        ]
        places = [o for p in preps if p.lower_ in _BASE_PREPS for o in _objects_of(p)]
        return self._country_in(sentence, places)

    def _negated(self, token: Any) -> bool:
        """Whether the act is said not to have happened: "did not interfere", "no evidence that
        Russia hacked", "we have no knowledge of any interference"."""
        if any(
            c.dep_ in ("nsubj", "nsubjpass") and any(g.lower_ == "neither" for g in c.children) for c in token.children
        ):
            return True  # "Neither Russia nor China interfered"
        node = token
        for _ in range(12):
            if any(
                c.dep_ in ("neg", "preconj")
                and c.lower_ != "either"
                or (c.dep_ == "det" and c.lower_ in ("no", "neither"))
                for c in node.children
            ):
                return True
            if any(
                c.dep_ == "advmod" and c.lower_.removesuffix("ly") in self.v.dismissive_words for c in node.children
            ):
                return True  # "a video falsely accusing a Democrat of taking a bribe from Americans"
            if node.lower_ in ("never", "nothing", "no") or self._phrasal_in(node, self.v.ruling_out_verbs):
                return True  # "ruled out Chinese involvement"
            if node.head.i == node.i:
                return False
            if node.dep_ in ("ccomp",) and _in(node.head, self.v.speech_verbs) and not _negated_here(node.head):
                return False  # "X said Russia hacked": what X said, not negated by the sentence around it
            if node.dep_ == "acl" and _in(node.head, self.v.allegation_nouns | self.v.accusation_nouns):
                # "did not respond to allegations that China harassed lawmakers": the allegation's
                # content, negated only by its own noun ("no evidence that Iran hacked")
                return any(
                    (c.dep_ == "det" and c.lower_ in ("no", "neither")) or c.dep_ == "neg" for c in node.head.children
                )
            node = node.head
        return False

    def _dismissive(self, token: Any) -> bool:
        if token.pos_ == "VERB" and not token.tag_ == "VBN":
            return False  # "videos smearing the president" is an act, not a word about a claim
        return _in(token, self.v.dismissive_words) or token.lower_ in self.v.dismissive_words
