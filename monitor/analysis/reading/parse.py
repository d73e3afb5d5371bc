"""A parsed sentence of the article and the small helpers that walk spaCy's parse."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from monitor.analysis.gazetteer import CountryMention


@dataclass
class _Sentence:
    index: int
    text: str
    doc: Any
    countries: dict[int, CountryMention]  # token index -> the country mention covering it


# ----- small parse helpers ------------------------------------------------------------------------


def _part_of_other_name(text: str, mention: CountryMention) -> bool:
    """ "The Washington Post", "Taiwan FactCheck Center": a country's name inside another name."""
    if mention.kind not in ("name", "capital"):
        return False
    after = text[mention.end : mention.end + 30]
    if re.match(
        r"\s+(?!(?:Foreign|Ministry|Embassy|Government|State|President|Prime|Supreme|Mission|Consulate|Army|Navy|Military|Intelligence)\b)[A-Z][a-z]",
        after,
    ):
        return not re.match(r"\s+[A-Z][a-z]+\s+(?:said|says|told|has|have|had|is|was)\b", after)
    return False


def _countering(noun: Any) -> bool:
    """ "a counter-charge against Washington": the accused answering its accuser."""
    return any(
        t.lower_ in ("counter", "counter-") for t in noun.doc[max(0, noun.i - 2) : noun.i]
    ) or noun.lower_.startswith("counter")


def _objects_of(prep: Any) -> list[Any]:
    """The objects of PREP with their conjuncts ("linked to Russia and China")."""
    objects = [o for c in prep.children if c.dep_ in ("pobj", "pcomp") for o in _with_conjuncts(c)]
    # "on behalf of Russia": the one behind the behalf
    objects = [
        b
        for o in objects
        for b in (
            [g for c in o.children if c.dep_ == "prep" and c.lower_ == "of" for g in _objects_of(c)]
            if o.lower_ == "behalf"
            else [o]
        )
    ]
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


def _listed_beside(token: Any) -> list[Any]:
    """What "along with", "together with" or "alongside" adds to TOKEN, conjuncts included:
    "China, along with Russia and Iran" adds Russia and Iran."""
    found = []
    for prep in (c for c in token.children if c.dep_ == "prep"):
        if prep.lower_ == "alongside":
            found += _objects_of(prep)
        elif prep.lower_ in ("along", "together"):
            found += [o for w in prep.children if w.dep_ == "prep" and w.lower_ == "with" for o in _objects_of(w)]
    return found


def _inside(token: Any, root: Any, deps: tuple[str, ...]) -> bool:
    node = token
    while node.i != root.i and node.head.i != node.i:
        if node.dep_ in deps:
            return True
        node = node.head
    return False


def _beyond_of(token: Any, root: Any) -> bool:
    """Whether TOKEN hangs from ROOT through a clause, an apposition or a preposition other than
    "of": "members of parliament" is one noun phrase, "an official on a campaign in June" is not."""
    node = token
    while node.i != root.i and node.head.i != node.i:
        if node.dep_ in ("relcl", "acl", "appos") or (node.dep_ == "prep" and node.lower_ != "of"):
            return True
        node = node.head
    return False


def _in(token: Any, words: frozenset[str]) -> bool:
    """Whether the token's lemma or its lower-case form is one of WORDS ("media" lemmatises to "medium")."""
    return token.lemma_.lower() in words or token.lower_ in words


def _negated_here(verb: Any) -> bool:
    """Whether VERB itself is negated, or is what "nothing" or "no evidence" is about ("found
    nothing to suggest that ...")."""
    if any(c.dep_ == "neg" or c.lower_ in ("never",) for c in verb.children):
        return True
    owner = verb.head if verb.dep_ in ("acl", "relcl", "xcomp") else None
    return owner is not None and (
        owner.lower_ in ("nothing", "none") or any(c.dep_ == "det" and c.lower_ == "no" for c in owner.children)
    )


def _described(ent: Any) -> bool:
    """Whether the parse gives a person's name a title or an apposition saying who they are."""
    root = ent.root
    words = [t for left in root.lefts for t in left.subtree]
    words += [
        t for c in root.children if c.dep_ in ("appos", "relcl") for t in c.subtree
    ]  # "Dong, who left the caucus"
    if root.dep_ in ("compound", "appos"):
        words.append(root.head)
    return any(
        t.pos_ == "NOUN" or (t.pos_ == "PROPN" and t.ent_type_ != "PERSON")
        for t in words
        if not ent.start <= t.i < ent.end
    )


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


_PLACE_PREPS = frozenset({"in", "across", "throughout", "within", "inside", "around", "of", "from", "at"})


def _locatives(head: Any) -> list[Any]:
    """The words of the clause HEAD is in, where a country names whose it is ("in Canada")."""
    clause = head
    while clause.head.i != clause.i and clause.dep_ not in ("ROOT", "ccomp", "advcl", "relcl"):
        clause = clause.head
    # "in Canada", "across Moldova", "voters from Taiwan"; not "support for Taiwan" nor "ties with Russia"
    return [
        t
        for t in clause.subtree
        if t.dep_ in ("poss", "amod", "compound") or (t.dep_ == "pobj" and t.head.lower_ in _PLACE_PREPS)
    ]


def _text(tokens: list[Any]) -> str:
    # Tokens left out between two kept ones ("official" "on a campaign") still leave a space.
    text = "".join(t.text_with_ws if n.i == t.i + 1 else t.text + " " for t, n in zip(tokens, tokens[1:]))
    text += tokens[-1].text
    return re.sub(r"\s+", " ", text.replace(" 's", "'s").replace(" - ", "-")).strip(" ,")
