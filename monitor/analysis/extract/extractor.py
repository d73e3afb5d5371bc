"""The word-cue extractor: countries, accusations and targets here, denials in its mixin."""

from __future__ import annotations

import re
from functools import lru_cache

from monitor.analysis.extract.denials import _Denials
from monitor.analysis.facts import Accusation, Extraction, TargetMention
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


_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.'&-]*[A-Za-z0-9]|[A-Za-z0-9]|'s|[^\sA-Za-z0-9]")


class Extractor(_Denials):
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
        self._passive = re.compile(
            rf"([\w' -]{{3,90}}?)\s+(?:has|have|had|was|were)\s+(?:been\s+)?(?:{verbs})\s+by\b", re.IGNORECASE
        )

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
            if m.kind in ("name", "capital") and re.match(
                r"\s+(?!(?:Foreign|Ministry|Embassy|Government|State|President|Prime|Supreme)\b)[A-Z][a-z]", after
            ):
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
        located = bool(
            re.search(
                r"\b(?:in|at|into|against|targeting|targeted|for|with|across|inside|toward|towards)\s+(?:the\s+)?$",
                before,
            )
        )
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
        if re.match(
            r"(?:\s+(?:was|were|is|are|been|being|has been|have been))?\s+(?:accused|blamed)\s+(?:of|over|for)\b",
            after_lower,
        ):
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
        return any(
            t in self._actor_verbs
            or t in self._actor_nouns
            or t.startswith(("interfer", "meddl", "hack", "cyber", "attack", "malicious", "breach"))
            for t in charge
        )

    def _verb_after(self, tokens: list[str], *, allow_adjective: bool) -> str:
        for token in tokens[:6]:
            if token in self._negators or token in ("appear", "appears", "said", "says", "told", "warned"):
                return ""
            if token in self._actor_verbs:
                at = tokens.index(token)
                following = tokens[at + 1 : at + 3]
                if following[:1] and following[0] in self._framing_nouns:
                    return ""  # "U.S. hacking allegations": the accuser's words
                if token in ("working", "works", "work") and not (
                    following[:1] == ["to"] and following[1:] and following[1] in self._actor_verbs
                ):
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
        counter = re.compile(
            r"\b(?:on the contrary|it is|itself|instead|accus\w+ \w+ (?:politicians )?of|accusing)\b", re.IGNORECASE
        )
        kept = []
        for a in result.accusations:
            sentence = a.evidence
            if counter.search(sentence) and re.search(
                r"\b(?:affairs|hyping|threat|blaming)\b", sentence, re.IGNORECASE
            ):
                continue
            kept.append(a)
        result.accusations = kept

    # ----- targets ------------------------------------------------------------------------
    def _mentions_attacker(self, sentence: str) -> bool:
        return bool(
            re.search(
                r"\b(?:hackers|attackers|intruders|the group|actors|operatives|agents|adversaries|foreign "
                r"(?:individuals|parties|entities|states|powers|governments))\b",
                sentence,
                re.IGNORECASE,
            )
        )

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
            if (
                not re.match(r"[A-Za-z0-9']", token)
                or token.lower() in self._target_stops
                or token.lower() in ("whether", "confirmed", "said", "we")
            ):
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
        while kept and (
            kept[-1].lower() in self._drop_leading
            or kept[-1].lower()
            in ("of", "and", "associated", "affiliated", "'s", "critical", "working", "close", "connected", "linked")
        ):
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
        if (
            len(words) == 1
            and words[0].islower()
            and not (words[0].endswith("s") and not words[0].endswith(("ss", "ous")))
        ):
            return False
        # A bare country is where an operation lands, not what it targets.
        found = self.gazetteer.find(phrase)
        if found and fold(" ".join(m.alias for m in found)) == lowered:
            return False
        return len(lowered) >= 4


@lru_cache(maxsize=1)
def default_extractor() -> Extractor:
    return Extractor()
