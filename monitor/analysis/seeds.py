"""The seed corpus: the analyst's reports on known allegations, read from seeds/ and embedded once."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from monitor.analysis.embedder import Embedder
from monitor.analysis.text import clean, split_sentences
from monitor.config import ConfigError

SEED_SUFFIXES = (".txt", ".md", ".html", ".htm")
# Bump when chunking changes so that cached vectors of the old chunks are not reused.
_CHUNKER_VERSION = "1"


class SeedError(ConfigError):
    """The seed corpus cannot be read; the message names the setting, the folder or file, and why.
    A settings problem, so the command line ends it like one."""


@dataclass(frozen=True)
class SeedDocument:
    name: str
    text: str
    published: date | None = None


# Scraper residue seen at the top of saved articles: " date 2020-08-03 ", "image Photo: Reuters".
_DATE_PREFIX = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\s+")
_PHOTO_CREDIT = re.compile(r"^\s*(image\s+)?photo:\s*[^\n]*$", re.IGNORECASE | re.MULTILINE)
_MARKDOWN_META = re.compile(r"^\s*(published at|author|original)\s*:.*$", re.IGNORECASE | re.MULTILINE)
_ISO_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")


def _parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _html_to_text(html: str) -> str:
    import lxml.html

    root = lxml.html.fromstring(html or "<html/>")
    for bad in root.xpath("//script|//style|//noscript|//nav|//footer|//header"):
        bad.drop_tree()
    for block in root.xpath("//p|//div|//br|//li|//h1|//h2|//h3|//h4|//tr|//article|//section"):
        block.tail = "\n\n" + (block.tail or "")
    return str(root.text_content())


def clean_seed_text(raw: str) -> tuple[str, date | None]:
    """The article body without scraper headers, and the publication date those headers gave."""
    published: date | None = None
    match = _DATE_PREFIX.match(raw)
    if match:
        published = _parse_date(match.group(1))
        raw = raw[match.end() :]
    meta = re.search(r"^\s*published at\s*:.*$", raw, re.IGNORECASE | re.MULTILINE)
    if meta and published is None:
        found = _ISO_DATE.search(meta.group(0))
        published = _parse_date(found.group(1)) if found else None
    raw = _MARKDOWN_META.sub("", raw)
    raw = _PHOTO_CREDIT.sub("", raw)
    raw = re.sub(r"^\s*#+\s*", "", raw, flags=re.MULTILINE)  # a Markdown title stays as a line
    raw = re.sub(r"[ \t]+", " ", clean(raw))
    raw = re.sub(r"\n\s*\n\s*(\n\s*)+", "\n\n", raw)
    return raw.strip(), published


def load_seed_documents(seeds_dir: Path) -> list[SeedDocument]:
    """Every .txt, .md and .html file in seeds_dir, cleaned, in file-name order."""
    seeds_dir = Path(seeds_dir)
    if not seeds_dir.is_dir():
        raise SeedError(f"seeds_dir: folder {seeds_dir} does not exist")
    paths = sorted(p for p in seeds_dir.iterdir() if p.suffix.lower() in SEED_SUFFIXES and p.is_file())
    documents: list[SeedDocument] = []
    for path in paths:
        try:
            raw = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise SeedError(f"seeds_dir: cannot read {path}: {exc.strerror or exc}") from None
        if path.suffix.lower() in {".html", ".htm"}:
            raw = _html_to_text(raw)
        text, published = clean_seed_text(raw)
        if text:
            documents.append(SeedDocument(name=path.name, text=text, published=published))
    if not documents:
        raise SeedError(f"seeds_dir: no .txt, .md or .html documents with text in {seeds_dir}")
    return documents


@dataclass(frozen=True)
class SeedChunk:
    source: str
    sentence: str


def _chunks(documents: list[SeedDocument]) -> list[SeedChunk]:
    chunks: list[SeedChunk] = []
    for document in documents:
        for sentence in split_sentences(document.text):
            # Headings and ad lines ("Download ... Antivirus") are too short to stand for a topic.
            if len(sentence.split()) >= 5:
                chunks.append(SeedChunk(document.name, sentence))
    return chunks


def _cache_key(documents: list[SeedDocument], model_name: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"{_CHUNKER_VERSION}\0{model_name}\0".encode())
    for document in documents:
        digest.update(f"{document.name}\0{document.text}\0".encode())
    return digest.hexdigest()[:24]


class SeedCorpus:
    """Sentences of the seed documents with their vectors; the yardstick for relevance."""

    def __init__(self, documents: list[SeedDocument], chunks: list[SeedChunk], vectors: np.ndarray) -> None:
        self.documents = documents
        self.chunks = chunks
        self.vectors = vectors

    @classmethod
    def build(cls, documents: list[SeedDocument], embedder: Embedder, cache_dir: Path | None) -> SeedCorpus:
        chunks = _chunks(documents)
        if not chunks:
            raise SeedError("seeds_dir: the documents hold no sentences to compare articles with")
        cache_path = None
        if cache_dir is not None:
            cache_path = Path(cache_dir) / f"seeds-{_cache_key(documents, embedder.model_name)}.npz"
            cached = cls._read_cache(cache_path, chunks)
            if cached is not None:
                return cls(documents, chunks, cached)
        vectors = embedder.embed([c.sentence for c in chunks])
        if cache_path is not None:
            cls._write_cache(cache_path, chunks, vectors)
        return cls(documents, chunks, vectors)

    @staticmethod
    def _read_cache(path: Path, chunks: list[SeedChunk]) -> np.ndarray | None:
        try:
            with np.load(path, allow_pickle=False) as data:
                sentences = json.loads(str(data["sentences"]))
                vectors = data["vectors"]
        except (OSError, KeyError, ValueError):
            return None
        # A stale or foreign file is ignored rather than trusted.
        if sentences != [c.sentence for c in chunks] or len(vectors) != len(chunks):
            return None
        return vectors.astype(np.float32)

    @staticmethod
    def _write_cache(path: Path, chunks: list[SeedChunk], vectors: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp.npz")
        np.savez(temporary, vectors=vectors, sentences=np.array(json.dumps([c.sentence for c in chunks])))
        temporary.replace(path)
