"""Plain-text helpers: sentences, words and light normalisation shared by the extractors."""

from __future__ import annotations

import re
import unicodedata

# Abbreviations that end in a full stop without ending the sentence ("U.S. officials", "Sen. Smith").
_ABBREVIATIONS = {
    "u.s",
    "u.k",
    "u.n",
    "e.u",
    "d.c",
    "mr",
    "mrs",
    "ms",
    "dr",
    "sen",
    "rep",
    "gov",
    "gen",
    "col",
    "lt",
    "st",
    "jr",
    "sr",
    "no",
    "vs",
    "inc",
    "corp",
    "co",
    "ltd",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "prof",
    "rev",
    "hon",
    "mt",
    "ft",
}
_SENTENCE_END = re.compile(r"([.!?][\"'”’)\]]*)(\s+)(?=[\"'“‘(\[]?[A-Z0-9])")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\-.&]*[A-Za-z0-9]|[A-Za-z0-9]")


def clean(text: str) -> str:
    """Unicode-normalised text with typographic quotes and dashes made plain."""
    text = unicodedata.normalize("NFKC", text)
    table = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": " - ", "\u00a0": " "})
    return text.translate(table)


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n|\n(?=\s*[-*•] )", text) if p.strip()]


def split_sentences(text: str) -> list[str]:
    """Sentences of a text; paragraph and line breaks always end a sentence."""
    sentences: list[str] = []
    for block in re.split(r"\n+", clean(text)):
        block = re.sub(r"\s+", " ", block).strip().lstrip("-*• ").strip()
        if not block:
            continue
        start = 0
        for match in _SENTENCE_END.finditer(block):
            before = block[start : match.start() + 1]
            last_word = re.findall(r"([A-Za-z.]+)\.$", before.rstrip("\"')]"))
            if last_word and last_word[0].lower().rstrip(".") in _ABBREVIATIONS:
                continue
            if re.search(r"\b[A-Z]\.$", before):  # an initial: "John F. Kennedy"
                continue
            sentences.append(block[start : match.end(1)].strip())
            start = match.end()
        tail = block[start:].strip()
        if tail:
            sentences.append(tail)
    return sentences


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def fold(text: str) -> str:
    """Lower-case, accent-free, punctuation-light form used to compare short phrases."""
    text = unicodedata.normalize("NFKD", clean(text))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"'s\b", "", text)
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return text.strip()


def shorten(text: str, limit: int = 120) -> str:
    """TEXT on one line, cut to LIMIT characters with an ellipsis: for reasons quoting a sentence."""
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def with_owner(phrase: str, whose: str) -> str:
    """A target's words followed by whose it is, when they do not say: "the vote (Mozambique)"."""
    return f"{phrase} ({whose})"


def without_owner(value: str, whose: str) -> str:
    """A target's own words, without the owner `with_owner` added: what wordings are compared on."""
    return value.removesuffix(f" ({whose})") if whose else value
