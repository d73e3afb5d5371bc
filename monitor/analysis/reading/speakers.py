"""Who speaks for which state: people the article introduces as a state's voice, and the
speaker of a clause."""

from __future__ import annotations

from typing import Any

from monitor.analysis.reading.parse import _described, _in, _inside, _noun_phrase_context, _Sentence

# Country words that are a state speaking: its seat of power, its organs, its media.
_STATE_VOICES = ("metonym", "state_organ", "state_media")


class _Speakers:
    """Part of one article's reading (_ArticleReading): who speaks, and for which state."""

    # ----- people who speak for states --------------------------------------------------------
    def _learn_people(self, sentence: _Sentence) -> None:
        """ "Kremlin spokesman Dmitry Peskov", "Wang Wenbin, a foreign ministry spokesman": the
        person speaks for that state wherever the article names them again."""
        for ent in sentence.doc.ents:
            if ent.label_ != "PERSON":
                continue
            name = " ".join(
                t.text for t in ent if t.lower_.rstrip(".") not in self.v.person_titles and t.text[:1].isupper()
            )
            if not name:
                continue
            for part in name.split():
                self.full_names.setdefault(part, name)
            around = _noun_phrase_context(ent)
            if _described(ent):
                self.described.update([name, *name.split()])  # "opposition leader X", "X, a businessman"
            # A state's organ ("Kremlin spokesman") or a voice noun ("Russia's ambassador") makes
            # the person that state's voice; a nationality ("a Russian citizen") does not.
            voices = [
                t
                for t in around
                if _in(t, self.v.state_voice_nouns)
                or (t.i in sentence.countries and sentence.countries[t.i].kind in _STATE_VOICES)
            ]
            states = self._country_in(sentence, around)
            if states and voices:
                for part in [name, *name.split()]:
                    self.person_state.setdefault(part, states[0])

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

    def _charger(self, token: Any) -> Any | None:
        """Who makes the charge: an accusing verb's subject, or whoever says the clause."""
        own = [c for c in token.children if c.dep_ == "nsubj"] if _in(token, self.v.accuse_verbs) else []
        return own[0] if own else self._speaker_token(token)

    def _accuser_state(self, sentence: _Sentence, token: Any) -> str | None:
        """The state that makes the charge."""
        speaker = self._charger(token)
        if speaker is None:
            return None
        state, _ = self._resolve_speaker(sentence, speaker)
        return state

    def _resolve_speaker(self, sentence: _Sentence, speaker: Any) -> tuple[str | None, str]:
        """(the state SPEAKER speaks for, or None; the words naming the speaker)."""
        phrase = [t for t in speaker.subtree if t.dep_ not in ("relcl",) and not _inside(t, speaker, ("relcl", "acl"))]
        words = " ".join(t.text for t in phrase)
        states = self._country_in(sentence, phrase)
        # a title before a name makes a person even where the tagger calls the name an organisation
        person = any(t.ent_type_ == "PERSON" for t in phrase) or any(
            t.lower_.rstrip(".") in self.v.person_titles and t.i < speaker.i and speaker.pos_ == "PROPN" for t in phrase
        )
        if self._voiced_body(sentence, phrase):
            return None, words  # "the president of AFRIC, the Mozambican X" speaks for AFRIC
        if states and (not person or any(_in(t, self.v.state_voice_nouns) for t in phrase)):
            return states[0], words  # "Romanian candidate Calin Dobre" speaks for himself, not Romania
        for t in phrase:
            if t.ent_type_ == "PERSON" and t.text in self.person_state:
                return self.person_state[t.text], words
        return None, words

    def _voiced_body(self, sentence: _Sentence, phrase: list[Any]) -> str | None:
        """The named body a voice in PHRASE speaks for, when it is no state: "the president of
        AFRIC", "a spokesman for the Dimera Group"."""
        # A common noun: "the Ministry of External Affairs" is the name of a state's organ.
        voices = self.v.state_voice_nouns | self.v.person_titles
        for voice in (t for t in phrase if _in(t, voices) and t.pos_ == "NOUN"):
            for prep in (c for c in voice.children if c.dep_ == "prep" and c.lower_ in ("of", "for")):
                for body in (o for o in prep.children if o.dep_ == "pobj"):
                    names = [
                        t
                        for t in body.subtree
                        if t.pos_ == "PROPN"
                        and t.i not in sentence.countries
                        and not _inside(t, body, ("appos", "relcl", "acl"))
                    ]
                    if (
                        body.pos_ == "PROPN"
                        and body.ent_type_ != "PERSON"
                        and names
                        and body.i not in sentence.countries
                    ):
                        return " ".join(t.text for t in names)
        return None
