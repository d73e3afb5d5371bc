"""The functional core: an article and what is known in, findings out. No database, no network.

The detector runs one article through the stages in order: the cheap pre-screen (word cues, title
and lead), the parse (reading/), relevance (relevance.py), same story and novelty (novelty.py).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np

from monitor.analysis.embedder import Embedder
from monitor.analysis.extract import Extractor, default_extractor
from monitor.analysis.facts import Extraction, Fact, Story
from monitor.analysis.knowledge import KnowledgeBase
from monitor.analysis.novelty import Finding, Mention, Novelty, mentions
from monitor.analysis.reading import Reader, load_reader
from monitor.analysis.relevance import SCREEN_SENTENCES, Relevance, Screen, SeedMatch, lead_sentences
from monitor.analysis.seeds import SeedCorpus, SeedDocument
from monitor.config import AnalysisSettings

__all__ = [
    "SCREEN_SENTENCES",
    "Analysis",
    "ArticleInput",
    "Detector",
    "Finding",
    "Mention",
    "Screen",
    "SeedMatch",
    "seed_knowledge",
]


@dataclass(frozen=True)
class ArticleInput:
    title: str
    text: str
    url: str | None = None
    published: datetime | None = None


# Articles read by the extractor, kept for the analysis that follows their screening.
_EXTRACTIONS_KEPT = 512


@dataclass
class Analysis:
    relevance: float
    relevant: bool
    reason: str
    vector: np.ndarray
    closest_seed: SeedMatch | None
    mentions: list[Mention]
    findings: list[Finding]
    same_story_as: str | None
    new_facts: list[Fact]
    title: str = ""
    # Mentions judged known, with what they matched: the other half of "explain yourself".
    known: list[Finding] = field(default_factory=list)

    @property
    def alert(self) -> bool:
        return self.relevant and bool(self.findings)

    def teach(
        self, kb: KnowledgeBase, *, source_ref: str, published: datetime | None, story_ref: str | None = None
    ) -> list[Fact]:
        """What a relevant article brought, learned by KB with their source, and the article
        remembered as a story (STORY_REF, default SOURCE_REF) to recognise other outlets' versions."""
        if not self.relevant:
            return []
        facts = [replace(f, source_ref=source_ref, first_seen=f.first_seen or published) for f in self.new_facts]
        story = Story(ref=story_ref or source_ref, title=self.title, vector=self.vector, published=published)
        return kb.learn(facts, story)


class Detector:
    def __init__(
        self,
        embedder: Embedder,
        corpus: SeedCorpus,
        settings: AnalysisSettings,
        extractor: Extractor | None = None,
        reader: Reader | None = None,
    ) -> None:
        self.embedder = embedder
        self.corpus = corpus
        self.settings = settings
        # The extractor's word cues screen every article cheaply; the reader parses those that pass.
        self.extractor = extractor or default_extractor()
        self.reader = reader or load_reader(
            settings.language_model, str(settings.vocabulary_dir) if settings.vocabulary_dir else None
        )
        self.relevance = Relevance(
            embedder, corpus, settings, self.reader.v.topic_target_kinds, topic_words=self._seeds_name_the_topic
        )
        self.novelty = Novelty(embedder, settings, self.extractor.c, self.reader.v.topic_target_kinds)
        self._extractions: OrderedDict[tuple[str, str], Extraction] = OrderedDict()
        self._readings: OrderedDict[tuple[str, str], Extraction] = OrderedDict()

    # ----- public ---------------------------------------------------------------------------
    def analyze(self, article: ArticleInput, kb: KnowledgeBase) -> Analysis:
        screen = self.relevance.screen(article.title, article.text, self._extract(article))
        if not screen.passed:
            return self._screened_out(article, screen)
        extraction = self._read(article)
        sentences = _sentences(article, extraction)
        vectors = self.embedder.embed(sentences)
        relevance, closest_seed, reason = self.relevance.score(extraction, vectors, self._extract(article))
        relevant = relevance >= self.settings.relevance_threshold
        # The lead's vector finds other outlets' versions of a relevant story; an article that is
        # not relevant keeps its sentence closest to the seeds instead, and the lead is never embedded.
        vector = self._story_vector(article, extraction) if relevant else _closest_to_seeds(vectors, self.corpus)
        said = mentions(extraction, article.published) if relevant else []
        same_story = self.novelty.same_story(vector, article.published, kb) if relevant else None
        findings, known, new_facts = self.novelty.judge(said, kb, same_story, article, vector)
        if relevant and not findings:
            reason += "; nothing new: " + (
                f"same story as {same_story.ref}" if same_story else "every item is already known"
            )
        return Analysis(
            relevance=relevance,
            relevant=relevant,
            reason=reason,
            vector=vector,
            closest_seed=closest_seed,
            mentions=said,
            findings=findings if relevant else [],
            same_story_as=same_story.ref if same_story else None,
            new_facts=new_facts if relevant else [],
            title=article.title,
            known=known,
        )

    def prescreen(self, articles: Sequence[ArticleInput]) -> list[Screen]:
        """The pre-screen's verdict on each article; the title and lead sentences of all the articles
        that need them are embedded in one model call."""
        extractions = [self._extract(article) for article in articles]
        texts = [
            text
            for article, extraction in zip(articles, extractions, strict=True)
            if self.relevance.needs_screen(extraction)
            for text in _sentences(article, extraction)[:SCREEN_SENTENCES]
        ]
        self.embedder.embed(texts)
        return [
            self.relevance.screen(article.title, article.text, extraction)
            for article, extraction in zip(articles, extractions, strict=True)
        ]

    def embed_ahead(self, articles: Sequence[ArticleInput]) -> None:
        """Embed the sentences of ARTICLES in one model call: analyze() then finds them in the
        embedder's memo. For articles that passed the pre-screen; the others never need them. The
        lead is embedded by analyze() only for an article found relevant."""
        texts: list[str] = []
        for article in articles:
            texts += _sentences(article, self._read(article))
        self.embedder.embed(texts)

    def _seeds_name_the_topic(self) -> bool:
        """Whether every seed document uses the topic's own words (an election, a vote, a campaign):
        only then do they decide relevance; another corpus goes without. The seeds' readings are the
        ones seed_knowledge() reads, kept once."""
        documents = self.corpus.documents
        return bool(documents) and all(self._read(ArticleInput(title="", text=d.text)).topic_words for d in documents)

    # ----- pre-screen -----------------------------------------------------------------------
    def _extract(self, article: ArticleInput) -> Extraction:
        """The extractor's reading of ARTICLE, kept for a while: screening and analysis share it."""
        return _kept(self._extractions, article, self.extractor.extract)

    def _read(self, article: ArticleInput) -> Extraction:
        """The parser's reading of an article that passed the pre-screen, kept for a while: the
        embedding ahead and the analysis share it."""
        return _kept(self._readings, article, self.reader.read)

    def _screened_out(self, article: ArticleInput, screen: Screen) -> Analysis:
        """What an article rejected by the pre-screen gets: the relevance formula (no allegation) on
        its title and lead alone, below the threshold, and the pre-screen's reason."""
        assert screen.vectors is not None and screen.score is not None
        best = (screen.vectors @ self.corpus.vectors.T).max(axis=1)
        top = float(np.sort(best)[-3:].mean())
        relevance = (0.5 * screen.score + 0.5 * top) * self.settings.no_allegation_factor
        relevance = min(relevance, self.settings.relevance_threshold - 0.01)
        return Analysis(
            relevance=relevance,
            relevant=False,
            reason=f"relevance {relevance:.2f} (pre-screen): {screen.reason}",
            vector=screen.vectors[int(best.argmax())],
            closest_seed=screen.seed,
            mentions=[],
            findings=[],
            same_story_as=None,
            new_facts=[],
            title=article.title,
        )

    def _story_vector(self, article: ArticleInput, extraction: Extraction) -> np.ndarray:
        return self.embedder.embed([_lead(extraction)])[0]

    def facts_of(self, article: ArticleInput, kb: KnowledgeBase) -> list[Fact]:
        """The facts an article brings to KB, read whole (no pre-screen, no relevance test): how
        the seed documents become the knowledge base."""
        said = mentions(self._read(article), article.published)
        _, _, facts = self.novelty.judge(said, kb, None, article)
        return facts


def _kept(
    cache: OrderedDict[tuple[str, str], Extraction], article: ArticleInput, read: Callable[[str, str], Extraction]
) -> Extraction:
    """READ's result for ARTICLE from CACHE, computed once and kept among the last few hundred."""
    key = (article.title, article.text)
    found = cache.get(key)
    if found is None:
        found = cache[key] = read(article.title, article.text)
        while len(cache) > _EXTRACTIONS_KEPT:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return found


def _sentences(article: ArticleInput, extraction: Extraction) -> list[str]:
    return lead_sentences(extraction, article.title, article.text)


def _closest_to_seeds(vectors: np.ndarray, corpus: SeedCorpus) -> np.ndarray:
    return vectors[int((vectors @ corpus.vectors.T).max(axis=1).argmax())]


def _lead(extraction: Extraction) -> str:
    """The story's lead, whose embedding recognises another outlet's version of it."""
    return " ".join(extraction.sentences[:4])


def seed_knowledge(detector: Detector, documents: list[SeedDocument]) -> list[Fact]:
    """The knowledge base the seeds imply, read with the same extractor that reads the news."""
    kb = KnowledgeBase()
    for document in documents:
        published = datetime.combine(document.published, datetime.min.time(), UTC) if document.published else None
        article = ArticleInput(title="", text=document.text, url=document.name, published=published)
        for fact in detector.facts_of(article, kb):
            kb.add(replace(fact, source_kind="seed", source_ref=document.name, first_seen=None))
    return list(kb.facts)
