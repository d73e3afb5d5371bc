"""The cheap reading that screens every article: word cues for who is accused and who denied.

Pure text rules over sentences, driven by the cue vocabulary in data/cues.yaml and the country
gazetteer: no parser and no embeddings, so it runs on every article the feeds bring. An article in
which it finds an allegation always passes the pre-screen; the parse-based reader (reading/)
then reads the articles that pass. Judging what is *new* is the novelty step's job.
"""

from __future__ import annotations

import re
from functools import lru_cache

from monitor.analysis.facts import Accusation, DenialMention, Extraction, TargetMention
from monitor.analysis.gazetteer import (
    CountryMention,
    Gazetteer,
    default_gazetteer,
    load_data,
)
from monitor.analysis.text import fold, split_sentences


def _phrase_regex(phrases: list[str]) -> re.Pattern[str]:
    ordered = sorted({p.strip() for p in phrases if p.strip()}, key=len, reverse=True)
    return re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(p) for p in ordered) + r")(?![\w])", re.IGNORECASE)


_DATE_WORD = re.compile(
    r"(?i)(?:mon|tues|wednes|thurs|fri|satur|sun)day|january|february|march|april|may|june|july|august|september"
    r"|october|november|december|today|yesterday|week|month|year|late|early|earlier|later|statement|briefing|news|conference"
)
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.'&-]*[A-Za-z0-9]|[A-Za-z0-9]|'s|[^\sA-Za-z0-9]")


class Extractor:
    def __init__(self, gazetteer: Gazetteer | None = None, cues: dict | None = None) -> None:
        self.gazetteer = gazetteer or default_gazetteer()
        c = cues or load_data("cues.yaml")
        self.c = c
        self._weak = {w.lower() for w in c["weak_before"]}
        self._weak_needs = {k: {w.lower() for w in v} for k, v in c["weak_before_needs"].items()}
        self._accuse_before = [p.lower() for p in c["accuse_before"] if p.lower() not in self._weak]
        self._actor_suffix = [s.lower() for s in c["actor_suffix"]]
        self._actor_nouns = {w.lower() for w in c["actor_nouns"]}
        self._official_nouns = {w.lower() for w in c["official_nouns"]}
        self._framing_nouns = {w.lower() for w in c["framing_nouns"]}
        self._actor_verbs = {w.lower() for w in c["actor_verbs"]}
        self._gap = {w.lower() for w in c["actor_verb_gap"]}
        self._negators = {w.lower() for w in c["negators"]}
        self._deny = _phrase_regex(c["deny_verbs"])
        self._reject = _phrase_regex(c["reject_verbs"])
        self._allegation_nouns = _phrase_regex(c["allegation_nouns"])
        self._dismissive = _phrase_regex(c["dismissive_words"])
        self._statements = _phrase_regex(c["denial_statements"])
        self._not_denials = _phrase_regex(c["not_denials"])
        self._titles = {t.lower().rstrip(".") for t in c["person_titles"]}
        self._voices = _phrase_regex(c["state_voices"])
        self._body_nouns = [w.lower() for w in c.get("body_nouns") or []]
        self._target_cue = _phrase_regex(c["target_cues"])
        self._target_stops = {w.lower() for w in c["target_stops"]}
        self._joiners = sorted((j.lower().split() for j in c["target_joiners"]), key=len, reverse=True)
        self._drop_leading = {w.lower() for w in c["target_drop_leading"]}
        self._rejects = {w.lower() for w in c["target_rejects"]}
        verbs = "|".join(re.escape(v) for v in c["passive_target_verbs"])
        self._passive = re.compile(rf"([\w' -]{{3,90}}?)\s+(?:has|have|had|was|were)\s+(?:been\s+)?(?:{verbs})\s+by\b", re.IGNORECASE)

    # ----- the whole article -------------------------------------------------------------
    def extract(self, title: str, text: str) -> Extraction:
        body = split_sentences(text)
        head = split_sentences(title) if title.strip() else []
        sentences = head + body
        result = Extraction(sentences=sentences)
        mentions = [self._mentions(s) for s in sentences]
        for index, (sentence, found) in enumerate(zip(sentences, mentions, strict=True)):
            result.mentioned.update(m.country for m in found)
            for m in found:
                result.mention_counts[m.country] = result.mention_counts.get(m.country, 0) + 1
            for mention, how in self._actors(sentence, found):
                result.accusations.append(Accusation(mention.country, sentence, index, how))
        self._drop_counter_accusations(result, text, head)
        actor_sentences = {a.sentence_index for a in result.accusations}
        for index, sentence in enumerate(sentences):
            if index in actor_sentences or self._mentions_attacker(sentence):
                for phrase in self._targets(sentence, mentions[index]):
                    result.targets.append(TargetMention(phrase, sentence, index))
        previous_denier: tuple[str, bool] | None = None
        for index, sentence in enumerate(sentences):
            denial = self._denial(sentence, mentions[index], previous_denier, result, index)
            if denial is not None:
                result.denials.append(denial)
                previous_denier = (denial.denier, denial.denier_is_state)
            elif index < len(head):
                previous_denier = None
        return result

    # ----- countries ----------------------------------------------------------------------
    def _mentions(self, sentence: str) -> list[CountryMention]:
        found = []
        for m in self.gazetteer.find(sentence):
            after = sentence[m.end : m.end + 30]
            # "The Washington Post", "Taiwan FactCheck Center": part of another proper name.
            if m.kind in ("name", "capital") and re.match(r"\s+(?!(?:Foreign|Ministry|Embassy|Government|State|President|Prime|Supreme)\b)[A-Z][a-z]", after):
                if not re.match(r"\s+[A-Z][a-z]+\s+(?:said|says|told|has|have|had|is|was)\b", after):
                    continue
            found.append(m)
        return found

    def _actors(self, sentence: str, mentions: list[CountryMention]) -> list[tuple[CountryMention, str]]:
        actors: list[tuple[CountryMention, str]] = []
        for mention in mentions:
            how = self._actor_cue(sentence, mention)
            if how:
                actors.append((mention, how))
        return actors

    def _actor_cue(self, sentence: str, m: CountryMention) -> str:
        before = sentence[: m.start].lower()
        after = sentence[m.end :]
        after_lower = after.lower()
        tokens = _TOKEN.findall(after_lower[:160])
        # Diaspora and target wordings: "Chinese-Canadian voters", "of Pakistani descent".
        if re.match(r"-[A-Z]", after) or re.match(r"\s*(?:descent|origin|heritage)\b", after_lower):
            return ""
        if re.search(r"\bpro-$", before):
            return "pro-" if m.kind == "adjective" else ""
        located = bool(re.search(r"\b(?:in|at|into|against|targeting|targeted|for|with|across|inside|toward|towards)\s+(?:the\s+)?$", before))
        if m.kind in ("state_media", "state_organ", "threat_group"):
            return "" if located else f"{m.alias} is a state-linked name"
        suffix = re.match(r"-(\w+)", after_lower)
        if suffix and suffix.group(1) in self._actor_suffix:
            return f"{m.alias}-{suffix.group(1)}"
        tail = before[-60:]
        for cue in self._accuse_before:
            # "blamed Iran", "formally accused China", "linked to the Chinese state".
            if re.search(rf"\b{re.escape(cue)}\s+(?:\w+ly\s+)?(?:the\s+|a\s+|an\s+)?$", tail):
                if cue.startswith(("accus", "blam")) and not self._charge_follows(tokens):
                    return ""
                return f"{cue} {m.alias}"
        weak = re.search(r"\b(\w+)\s+(?:\w+\s+)?(by|on|of|to)\s+(?:the\s+)?$", tail)
        if weak and weak.group(1) in self._weak_needs.get(weak.group(2), set()):
            return f"{weak.group(1)} {weak.group(2)} {m.alias}"
        if re.search(r"\b(?:pins?|pinned|pinning)\b[^.]{0,60}\bon\s+$", tail):
            return f"pinned on {m.alias}"
        if re.match(r"(?:\s+(?:was|were|is|are|been|being|has been|have been))?\s+(?:accused|blamed)\s+(?:of|over|for)\b", after_lower):
            return f"{m.alias} accused"
        if tokens[:1] in (["'s"], ["'"]):
            tokens = tokens[1:]
        if located:
            return ""
        for position, token in enumerate(tokens[:3]):
            if token in self._actor_nouns or token.startswith("state-"):
                following = tokens[position + 1] if position + 1 < len(tokens) else ""
                if following in self._framing_nouns:
                    return ""  # "U.S. meddling charges": the accuser's words
                return f"{m.alias} {token}"
            if token in self._official_nouns:
                verb = self._verb_after(tokens[position + 1 :], allow_adjective=True)
                return f"{m.alias} {token} {verb}" if verb else ""
            if token not in self._gap:
                break
        verb = self._verb_after(tokens, allow_adjective=m.kind != "adjective")
        return f"{m.alias} {verb}" if verb else ""

    def _charge_follows(self, tokens: list[str]) -> bool:
        """After "accused X", an "of ..." that is not about interference is a counter-charge."""
        if "of" not in tokens[:10] and "for" not in tokens[:10]:
            return True
        at = next(i for i, t in enumerate(tokens) if t in ("of", "for"))
        charge = tokens[at + 1 : at + 3]
        return any(t in self._actor_verbs or t in self._actor_nouns or t.startswith(("interfer", "meddl", "hack", "cyber", "attack", "malicious", "breach")) for t in charge)

    def _verb_after(self, tokens: list[str], *, allow_adjective: bool) -> str:
        for token in tokens[:6]:
            if token in self._negators or token in ("appear", "appears", "said", "says", "told", "warned"):
                return ""
            if token in self._actor_verbs:
                at = tokens.index(token)
                following = tokens[at + 1 : at + 3]
                if following[:1] and following[0] in self._framing_nouns:
                    return ""  # "U.S. hacking allegations": the accuser's words
                if token in ("working", "works", "work") and not (following[:1] == ["to"] and following[1:] and following[1] in self._actor_verbs):
                    return ""
                return token if allow_adjective or token == "behind" else ""
            # Tokens are lower-cased here; a place name ("officials in Canada have tried") is looked up
            # as it would be written.
            if token not in self._gap and not re.fullmatch(r",|and|in|\w+ly", token) and not self._place(token):
                return ""
        return ""

    def _place(self, token: str) -> bool:
        return any(self.gazetteer.find(form) for form in {token, token.title(), token.upper()})

    def _drop_counter_accusations(self, result: Extraction, text: str, head: list[str]) -> None:
        """A denier turning the charge back ("it is Canada that interferes in our affairs") is part
        of the denial, not an allegation an analyst would record."""
        if not result.accusations:
            return
        counter = re.compile(r"\b(?:on the contrary|it is|itself|instead|accus\w+ \w+ (?:politicians )?of|accusing)\b", re.IGNORECASE)
        kept = []
        for a in result.accusations:
            sentence = a.evidence
            if counter.search(sentence) and re.search(r"\b(?:affairs|hyping|threat|blaming)\b", sentence, re.IGNORECASE):
                continue
            kept.append(a)
        result.accusations = kept

    # ----- targets ------------------------------------------------------------------------
    def _mentions_attacker(self, sentence: str) -> bool:
        return bool(re.search(r"\b(?:hackers|attackers|intruders|the group|actors|operatives|agents|adversaries|foreign (?:individuals|parties|entities|states|powers|governments))\b", sentence, re.IGNORECASE))

    def _targets(self, sentence: str, mentions: list[CountryMention]) -> list[str]:
        phrases: list[str] = []
        for cue in self._target_cue.finditer(sentence):
            phrase = self._phrase_after(sentence[cue.end() :])
            if phrase and self._is_target(phrase):
                phrases.append(phrase)
        for passive in self._passive.finditer(sentence):
            phrase = self._phrase_before(passive.group(1))
            if phrase and self._is_target(phrase):
                phrases.append(phrase)
        return list(dict.fromkeys(phrases))

    def _phrase_before(self, text: str) -> str:
        """The subject of a passive clause: the words after the last one that cannot be in it."""
        tokens = _TOKEN.findall(text)
        kept: list[str] = []
        for token in reversed(tokens):
            if not re.match(r"[A-Za-z0-9']", token) or token.lower() in self._target_stops or token.lower() in ("whether", "confirmed", "said", "we"):
                break
            kept.insert(0, token)
        while kept and kept[0].lower() in self._drop_leading:
            kept.pop(0)
        return " ".join(kept[-8:]).replace(" 's", "'s").strip()

    def _phrase_after(self, rest: str) -> str:
        """The noun phrase a target cue introduces, up to the first word that ends it."""
        tokens = _TOKEN.findall(rest[:240])
        while tokens and tokens[0].lower() in ("the", "a", "an"):
            tokens = tokens[1:]
        if not tokens or tokens[0].lower() in self._target_stops or not re.match(r"[A-Za-z0-9]", tokens[0]):
            return ""
        kept: list[str] = []
        i = 0
        while i < len(tokens) and len(kept) < 12:
            token, lower = tokens[i], tokens[i].lower()
            joiner = next((j for j in self._joiners if [t.lower() for t in tokens[i : i + len(j)]] == j), None)
            if joiner and kept:
                following = tokens[i + len(joiner)] if i + len(joiner) < len(tokens) else ""
                if self._continues(joiner, following):
                    kept.extend(tokens[i : i + len(joiner)])
                    i += len(joiner)
                    continue
                break
            if token == "'s" and kept:
                kept.append(token)
                i += 1
                continue
            if not re.match(r"[A-Za-z0-9]", token) or lower in self._target_stops:
                break
            kept.append(token)
            i += 1
        while kept and kept[0].lower() in self._drop_leading:
            kept.pop(0)
        while kept and (kept[-1].lower() in self._drop_leading or kept[-1].lower() in ("of", "and", "associated", "affiliated", "'s", "critical", "working", "close", "connected", "linked")):
            kept.pop()
        return " ".join(kept).replace(" 's", "'s").strip()

    def _continues(self, joiner: list[str], following: str) -> bool:
        """Whether "and"/"of"/"associated with" carries the phrase on or starts a new clause."""
        if not following or not re.match(r"[A-Za-z]", following) or following.lower() in self._target_stops:
            return False
        if joiner == ["and"]:
            # "MPs and peers", "Joe Biden and Donald Trump" go on; "and mislead the..." does not.
            if following.lower() in self._drop_leading:
                return following.lower() in ("both", "other", "former", "current")
            return following[0].isupper() or (following.endswith("s") and not following.endswith(("ss", "'s")))
        return True

    def _is_target(self, phrase: str) -> bool:
        lowered = fold(phrase)
        if not lowered or lowered in self._rejects:
            return False
        head = lowered.split()[-1]
        named = any(w[:1].isupper() for w in phrase.split())
        if head in self._rejects and len(lowered.split()) <= 2 and not named:
            return False
        if re.fullmatch(r"[\d\s]+", lowered):
            return False
        words = phrase.split()
        # One lower-case word is a target only as a plural noun ("voters", "journalists").
        if len(words) == 1 and words[0].islower() and not (words[0].endswith("s") and not words[0].endswith(("ss", "ous"))):
            return False
        # A bare country is where an operation lands, not what it targets.
        found = self.gazetteer.find(phrase)
        if found and fold(" ".join(m.alias for m in found)) == lowered:
            return False
        return len(lowered) >= 4

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
        return DenialMention(denier, is_state, accused, sentence, index, allegation, self._denied(sentence[cue.end() :]))

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
            charged = [m.country for m in mentions if self._actor_cue(sentence, m) or re.search(r"\b(?:on|of|against|about)\s+(?:so-called\s+)?$", sentence[: m.start].lower())]
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
        name = [w for w in match.group(1).split() if w.lower() not in ("the", "a", "an") and w.lower().rstrip(".") not in self._titles]
        if not name or self.gazetteer.find(" ".join(name)):
            return None
        return " ".join([*name, match.group(2)])

    def _denial_cue(self, sentence: str) -> re.Match[str] | None:
        if self._not_denials.search(sentence) and not self._deny.search(sentence) and not self._dismissive.search(sentence):
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
            said = re.search(r"\b(?:called|calling|calls|described|describing|termed|labelled|branded|said|says|told|cries|cried)\b", sentence)
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
            w for w in re.findall(r"[A-Za-z][\w'-]+", text)
            if w.lower() not in self._target_stops and w.lower() not in self._drop_leading and w.lower() not in self._negators
            and w.lower() not in ("said", "says", "called", "calls", "calling", "described", "as", "all", "completely", "malicious", "any")
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
            if re.search(r"\b(?:in|to|at|from|against|of|on|with|by|over|about|for|urged|asked|told|that)\s+(?:the\s+|its\s+)?$", before):
                continue
            if re.match(r"(?:'s)?\s*(?:\w+\s+)?(?:embassy|mission|ministry|foreign|spokes|government|state media)", after):
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
            if re.search(r"\b(?:Twitter|Facebook|Post|Times|News|Reuters|Ministry|Office|Department|Commission|Affairs)\b", name):
                continue
            parts = [p for p in name.split() if p.lower().rstrip(".") not in self._titles]
            if not parts:
                continue
            candidate = " ".join(parts)
            if self.gazetteer.find(candidate) or candidate.lower() in ("the", "on", "in", "a", "however", "but", "and", "both", "it", "he", "she", "they", "we"):
                continue
            if re.fullmatch(r"(?:January|February|March|April|May|June|July|August|September|October|November|December|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|The|On|In|However|Last|Reportedly|Despite|Earlier|Later|Meanwhile)", candidate):
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


@lru_cache(maxsize=1)
def default_extractor() -> Extractor:
    return Extractor()
