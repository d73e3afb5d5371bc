"""Denials by word cues: the cue that something is untrue, who says it, and what is denied."""

from __future__ import annotations

import re

from monitor.analysis.facts import DenialMention, Extraction
from monitor.analysis.gazetteer import CountryMention

_DATE_WORD = re.compile(
    r"(?i)(?:mon|tues|wednes|thurs|fri|satur|sun)day|january|february|march|april|may|june|july|august|september"
    r"|october|november|december|today|yesterday|week|month|year|late|early|earlier|later|statement|briefing|news|conference"
)


class _Denials:
    """Part of the Extractor: the denials in an article's sentences."""

    # ----- denials ------------------------------------------------------------------------
    def _denial(
        self,
        sentence: str,
        mentions: list[CountryMention],
        previous: tuple[str, bool] | None,
        result: Extraction,
        index: int,
    ) -> DenialMention | None:
        cue = self._denial_cue(sentence)
        if cue is None:
            return None
        denier, is_state = self._denier(sentence, cue, mentions, previous, result)
        if denier is None:
            return None
        accused = denier if is_state else (result.accused[0] if result.accused else "")
        allegation = self._allegation_for(accused, result, sentence)
        return DenialMention(
            denier, is_state, accused, sentence, index, allegation, self._denied(sentence[cue.end() :])
        )

    def _denier(
        self,
        sentence: str,
        cue: re.Match[str],
        mentions: list[CountryMention],
        previous: tuple[str, bool] | None,
        result: Extraction,
    ) -> tuple[str | None, bool]:
        """Who speaks: a state (named, or through its embassy, ministry or spokesperson) or a person."""
        subject = sentence[: cue.start()]
        state = self._state_denier(subject, mentions, cue.start())
        if state:
            return state, True
        attribution = self._quote_attribution(sentence)
        if attribution:
            state = self._state_denier_text(attribution)
            if state:
                return state, True
        speaker = f"{subject} {attribution or ''}"
        if self._voices.search(speaker):
            # "the Ministry of External Affairs said": the state whose conduct is denied.
            charged = [
                m.country
                for m in mentions
                if self._actor_cue(sentence, m)
                or re.search(r"\b(?:on|of|against|about)\s+(?:so-called\s+)?$", sentence[: m.start].lower())
            ]
            if charged:
                return charged[0], True
            if previous is not None and previous[1]:
                return previous
            if result.accused:
                return result.accused[0], True
        body = self._body(subject) or self._body(attribution or "")
        if body:
            return body, False
        person = self._person(subject, result.sentences) or self._person(attribution or "", result.sentences)
        if person:
            return self._expand_name(person, result.sentences), False
        if previous is not None:
            return previous
        return None, False

    def _body(self, text: str) -> str | None:
        """ "The Harris campaign said": a named body speaking, as "Harris campaign"."""
        match = re.search(rf"\b((?:[A-Z][\w'-]+\s+){{1,3}})({'|'.join(map(re.escape, self._body_nouns))})\b", text)
        if not match:
            return None
        name = [
            w
            for w in match.group(1).split()
            if w.lower() not in ("the", "a", "an") and w.lower().rstrip(".") not in self._titles
        ]
        if not name or self.gazetteer.find(" ".join(name)):
            return None
        return " ".join([*name, match.group(2)])

    def _denial_cue(self, sentence: str) -> re.Match[str] | None:
        if (
            self._not_denials.search(sentence)
            and not self._deny.search(sentence)
            and not self._dismissive.search(sentence)
        ):
            return None
        deny = self._deny.search(sentence)
        if deny:
            return deny
        for reject in self._reject.finditer(sentence):
            window = sentence[reject.end() : reject.end() + 80]
            if self._allegation_nouns.search(window) or re.match(r"\s+(?:suggestions?|that|it|the)\b", window):
                if not re.match(r"\s+to\b", window):
                    return reject
        dismissive = self._dismissive.search(sentence)
        if dismissive and (self._allegation_nouns.search(sentence) or '"' in sentence):
            said = re.search(
                r"\b(?:called|calling|calls|described|describing|termed|labelled|branded|said|says|told|cries|cried)\b",
                sentence,
            )
            return said or dismissive
        statement = self._statements.search(sentence)
        if statement:
            said = re.search(r"\b(?:said|says|told|stated|insisting|insisted|repeating|adding)\b", sentence)
            return said if said and said.start() < statement.start() else statement
        return None

    def _denied(self, rest: str) -> str:
        """The words after a denial cue that say what is denied, when they say more than "the
        accusations" or "baseless": "suggestions that it was behind the hoax bomb threats"."""
        # Up to the end of the clause: a semicolon, or a closing quote before its attribution.
        rest = re.split(r';|,"', rest.strip(" ,:"), maxsplit=1)[0].strip(" \"'")
        text = self._dismissive.sub(" ", self._allegation_nouns.sub(" ", rest))
        content = [
            w
            for w in re.findall(r"[A-Za-z][\w'-]+", text)
            if w.lower() not in self._target_stops
            and w.lower() not in self._drop_leading
            and w.lower() not in self._negators
            and w.lower()
            not in (
                "said",
                "says",
                "called",
                "calls",
                "calling",
                "described",
                "as",
                "all",
                "completely",
                "malicious",
                "any",
            )
            and not self.gazetteer.find(w)
        ]
        content = [w for w in content if not _DATE_WORD.fullmatch(w)]
        if len([p for w in content for p in w.split("-") if p]) < 3:
            return ""
        return rest

    def _state_denier(self, subject: str, mentions: list[CountryMention], limit: int) -> str | None:
        candidates = [m for m in mentions if m.end <= limit and m.kind != "threat_group"]
        for m in reversed(candidates):
            before = subject[: m.start].lower()
            after = subject[m.end : m.end + 40].lower()
            # "Beijing, which dismissed", "China's embassy": the speaker even after a preposition.
            if re.match(r"\s*,\s*which\b", after):
                return m.country
            if re.search(
                r"\b(?:in|to|at|from|against|of|on|with|by|over|about|for|urged|asked|told|that)\s+(?:the\s+|its\s+)?$",
                before,
            ):
                continue
            if re.match(
                r"(?:'s)?\s*(?:\w+\s+)?(?:embassy|mission|ministry|foreign|spokes|government|state media)", after
            ):
                return m.country
            # The subject comes early: a country deep in a long clause is more likely an object.
            if len(before.split()) > 12 and not re.search(r"(?:;|, (?:and|but)|\band\b)\s*$", before):
                continue
            return m.country
        return None

    def _state_denier_text(self, text: str) -> str | None:
        mentions = self._mentions(text)
        return self._state_denier(text, mentions, len(text))

    def _quote_attribution(self, sentence: str) -> str | None:
        match = re.search(r'[,.!?]"\s*(.{3,120}?)\b(?:said|says|told|added|wrote|stated)\b', sentence)
        if match:
            return match.group(1)
        match = re.search(r'"\s*,?\s*(?:said|says|told|added)\s+(.{3,120})$', sentence)
        return match.group(1) if match else None

    def _person(self, text: str, article: list[str]) -> str | None:
        names = re.findall(r"\b([A-Z][a-z]+(?:[- ][A-Z][a-z]+)*)\b", text)
        body = " ".join(article)
        for name in names:
            # A capitalised word counts as a name only if the article also writes it capitalised
            # mid-sentence ("Dong" in "won by Han Dong"), which rules out "Such" or "Baseless".
            if not re.search(rf"[a-z,]\s+(?:[A-Z][a-z]+\s+)?{re.escape(name.split()[-1])}\b", body):
                continue
            if re.search(
                r"\b(?:Twitter|Facebook|Post|Times|News|Reuters|Ministry|Office|Department|Commission|Affairs)\b", name
            ):
                continue
            parts = [p for p in name.split() if p.lower().rstrip(".") not in self._titles]
            if not parts:
                continue
            candidate = " ".join(parts)
            if self.gazetteer.find(candidate) or candidate.lower() in (
                "the",
                "on",
                "in",
                "a",
                "however",
                "but",
                "and",
                "both",
                "it",
                "he",
                "she",
                "they",
                "we",
            ):
                continue
            if re.fullmatch(
                r"(?:January|February|March|April|May|June|July|August|September|October|November|December|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|The|On|In|However|Last|Reportedly|Despite|Earlier|Later|Meanwhile)",
                candidate,
            ):
                continue
            return candidate
        return None

    def _expand_name(self, name: str, sentences: list[str]) -> str:
        """A surname alone ("Dong") becomes the full name used earlier ("Han Dong")."""
        if " " in name:
            return name
        pattern = re.compile(rf"\b((?:[A-Z][a-z]+\s+){{1,2}}){re.escape(name)}\b")
        for sentence in sentences:
            for match in pattern.finditer(sentence):
                parts = [p for p in match.group(1).split() if p.lower().rstrip(".") not in self._titles]
                if parts:
                    return " ".join([*parts, name])
        return name

    def _allegation_for(self, accused: str, result: Extraction, denial_sentence: str) -> str:
        for accusation in result.accusations:
            if accusation.country == accused and accusation.evidence != denial_sentence:
                return accusation.evidence
        return denial_sentence
