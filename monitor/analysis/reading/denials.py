"""Denials: the cue that something is untrue, and who denies it (a state, a person or a body)."""

from __future__ import annotations

from typing import Any

from monitor.analysis.facts import DenialMention
from monitor.analysis.reading.parse import _in, _inside, _negated_here, _objects_of, _Sentence

# Words by which a denial's content speaks of the one denying.
_SELF = frozenset(
    {"he", "she", "it", "they", "we", "i", "his", "her", "its", "their", "our", "my", "him", "them", "us"}
)


class _Denials:
    """Part of one article's reading (_ArticleReading): the denials and who makes them."""

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
                words += [
                    o for c in token.children if c.dep_ == "prep" and c.lower_ in ("for", "of") for o in _objects_of(c)
                ]
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
        if denier is None or (not is_state and not self._own_denial(sentence, cue)):
            return None
        if is_state and not _in(cue, self.v.deny_verbs | self.v.weak_deny_verbs | self.v.calling_verbs | {"be"}):
            self.self_deniers.add(denier)  # the act itself, negated: "did not interfere", "made no effort to"
        return DenialMention(
            denier,
            is_state,
            denier if is_state else "",
            sentence.text,
            sentence.index,
            sentence.text,
            self._denied_words(cue),
            speaker,
        )

    def _own_denial(self, sentence: _Sentence, cue: Any) -> bool:
        """Whether a person or a body denies something said of them: not a state's act they see no
        proof of ("had no proof of Russian intervention": a third party's doubt), nor a story with no
        interference in it ("dismissed rumours that he was having an affair")."""
        said = [
            t
            for c in cue.children
            if c.dep_ in ("dobj", "ccomp", "xcomp", "prep", "attr", "oprd", "pcomp", "acomp")
            for t in c.subtree
        ]
        about_them = any(t.lower_ in _SELF for t in said) or any(
            c.tag_ in ("VBG", "VBN") and not any(g.dep_ in ("nsubj", "nsubjpass") for g in c.children)
            for c in cue.children
            if c.dep_ in ("xcomp", "dobj", "pcomp", "ccomp")
        )  # "denied that its systems were breached", "denied receiving money from Moscow"
        if not about_them and any(next(self._actors_of(sentence, t), None) for t in said):
            return False
        return not self._denied_words(cue) or any(self._act_word(t) or t.i in sentence.countries for t in said)

    def _denial_cue(self, sentence: _Sentence) -> Any | None:
        for token in sentence.doc:
            lemma = token.lemma_.lower()
            if lemma in self.v.weak_deny_verbs and token.pos_ == "VERB":
                # "denounced the accusations": a denial only when what is denounced is a charge;
                # "denounced Russian interference" is an accusation.
                if any(
                    _in(c, self.v.allegation_nouns) and not self._act_word(c)
                    for c in token.children
                    if c.dep_ == "dobj"
                ):
                    return token
            if lemma in self.v.deny_verbs and token.pos_ in ("VERB", "NOUN"):
                objects = [
                    t for c in token.children if c.dep_ in ("dobj", "ccomp", "prep", "xcomp", "attr") for t in c.subtree
                ]
                heads = [c for c in token.children if c.dep_ in ("dobj",)]
                if any(_in(h, self.v.not_denied) for h in heads):
                    continue
                if lemma == "deny" or any(
                    _in(t, self.v.allegation_nouns) or self._act_word(t) or self._dismissive(t) for t in objects
                ):
                    if not any(c.dep_ == "neg" for c in token.children) and not _neither_nor(token):
                        return token
            if lemma in self.v.calling_verbs and token.pos_ == "VERB":
                inner = [
                    t
                    for c in token.children
                    if c.dep_ in ("dobj", "oprd", "ccomp", "xcomp", "acomp", "attr")
                    for t in c.subtree
                ]
                if any(_in(c, self.v.allegation_nouns) for c in token.children if c.dep_ == "dobj"):
                    # "described the allegations as absurd" (but "described the videos as fake" accuses)
                    inner += [t for c in token.children if c.dep_ == "prep" and c.lower_ == "as" for t in c.subtree]
                said_of = [
                    t
                    for t in inner
                    if _in(t, self.v.allegation_nouns)
                    or self._act_word(t)
                    or t.lower_ in ("them", "it", "this", "that")
                ]
                if any(self._dismissive(t) for t in inner) and said_of:
                    return token
            if self._knows_of_none(token):
                return token  # "said it knew of no stolen material reaching the campaign"
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
                self._dismissive(token)
                and token.pos_ in ("ADJ", "NOUN")
                and token.dep_ != "advcl"  # "its emails, some of them fake, were posted": an aside
                and token.head.lemma_.lower() in {"be"} | self.v.calling_verbs
                and not _negated_here(token.head)  # "this is not a fantasy": the charge upheld
                and not any(c.dep_ == "det" and c.lower_ == "no" for c in token.children)
            ):
                subject = [c for c in token.head.children if c.dep_ == "nsubj"]
                if subject and (
                    _in(subject[0], self.v.allegation_nouns) or subject[0].lower_ in ("this", "that", "it")
                ):
                    return token.head
        return None

    def _knows_of_none(self, token: Any) -> bool:
        """TOKEN says its subject knows of no such act: "knew of no stolen material reaching the
        campaign", "we are not aware of any materials being sent"."""
        if not _in(token, self.v.knowing_words) or token.pos_ not in ("VERB", "ADJ"):
            return False
        known = [o for c in token.children if c.dep_ == "prep" and c.lower_ == "of" for o in _objects_of(c)]
        if not known or not any(self._act_word(t) for o in known for t in o.subtree):
            return False
        none = any(c.dep_ == "det" and c.lower_ == "no" for o in known for c in o.children)
        return none or _negated_here(token) or (token.dep_ == "acomp" and _negated_here(token.head))

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
                if (
                    subjects[0].lower_ in ("we", "i", "our")
                    or subjects[0].pos_ == "PRON"
                    and node.head.i != node.i
                    and node.dep_ == "ccomp"
                ):
                    speaker = self._speaker_token(node)
                    if speaker is not None:
                        return speaker
                return subjects[0]
            if node.head.i == node.i:
                break
            node = node.head
        return self._speaker_token(cue)

    def _denier(
        self, sentence: _Sentence, subject: Any | None, previous: tuple[str, bool] | None
    ) -> tuple[str | None, bool, str]:
        """Who denies: the state a speaker speaks for, else the person or body as named, else the
        one who denied just before (a pronoun, "the ministry", "the spokesman")."""
        if subject is None:
            return (previous[0], previous[1], "") if previous else (None, False, "")
        state, words = self._resolve_speaker(sentence, subject)
        if state:
            return state, True, words
        phrase = [t for t in subject.subtree if not _inside(t, subject, ("relcl", "acl", "appos"))]
        if body := self._voiced_body(sentence, phrase):
            return body, False, words
        if _in(subject, self.v.body_nouns) and (body := self._body(phrase)):
            return body, False, body  # "the Harris campaign": the body, not the person it is named for
        voices = [t for t in phrase if _in(t, self.v.state_voice_nouns)]
        # A surname alone is often untagged; a name the article gave a person before is theirs.
        person = next(
            (t for t in phrase if t.ent_type_ == "PERSON" or (t.pos_ == "PROPN" and t.text in self.full_names)), None
        )
        if person is not None:
            name = self._person_name(person)
            if name in self.person_state:
                return self.person_state[name], True, name
            if (
                previous
                and previous[1]
                and (voices or not any(part in self.described for part in [name, *name.split()]))
            ):
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
        words = [
            t.text
            for t in (ent or [token])
            if t.lower_.rstrip(".") not in self.v.person_titles and t.text[:1].isupper()
        ]
        name = " ".join(words).removesuffix("'s").strip()
        if " " not in name and name in self.full_names:
            return self.full_names[name]
        return name

    def _body(self, phrase: list[Any]) -> str | None:
        """ "the Harris campaign", "Frelimo", "the Liberal Party": a body that speaks for itself."""
        head = phrase[-1] if phrase else None
        named = [
            t
            for t in phrase
            if t.pos_ == "PROPN" and t.lower_.rstrip(".") not in self.v.person_titles and t.i != head.i
        ]
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
        content = [
            t
            for t in words
            if t.pos_ in ("NOUN", "PROPN", "VERB")
            and t.lemma_.lower() not in self.v.allegation_nouns
            and not self._dismissive(t)
        ]
        if len(content) < 3:
            return ""
        return " ".join(t.text for t in words).replace(" 's", "'s")


def _neither_nor(verb: Any) -> bool:
    """ "neither admitted nor denied", "neither denied nor confirmed": nothing is denied."""
    pair = verb.head if verb.dep_ == "conj" else verb
    return any(c.lower_ in ("neither", "nor") for c in pair.children if c.dep_ in ("preconj", "cc"))
