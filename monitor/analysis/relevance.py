"""Relevance: is an article about the seeds' topic? Cheap first (the pre-screen), then in full.

The pre-screen reads the word cues and the title and lead; the full score blends the article's best
allegation sentence with its sentences closest to the seed corpus, and a state the parser finds
accused of an act aimed at an election, a campaign or voters is the topic whatever the distance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from monitor.analysis.embedder import Embedder
from monitor.analysis.facts import Extraction
from monitor.analysis.gazetteer import load_data
from monitor.analysis.seeds import SeedCorpus
from monitor.analysis.text import shorten
from monitor.config import AnalysisSettings

# The pre-screen reads the title and the lead: the first sentences of the article, title included.
SCREEN_SENTENCES = 2


@dataclass(frozen=True)
class SeedMatch:
    source: str
    sentence: str
    score: float


@dataclass(frozen=True)
class Screen:
    """The pre-screen's verdict on an article, from its title and lead and the extractor's cues.

    ``score`` is the best seed similarity of the title and lead sentences (None when an allegation
    passed the article without it); ``vectors`` are those sentences' embeddings."""

    passed: bool
    score: float | None
    reason: str
    seed: SeedMatch | None = None
    vectors: np.ndarray | None = None


class Relevance:
    def __init__(
        self,
        embedder: Embedder,
        corpus: SeedCorpus,
        settings: AnalysisSettings,
        topic_kinds: frozenset[str],
        *,
        topic_words: Callable[[], bool] | None = None,
    ) -> None:
        self.embedder = embedder
        self.corpus = corpus
        self.settings = settings
        self.topic_kinds = topic_kinds
        # Whether an article must name the topic in its own words: asked once, when first needed.
        self._topic_words_rule = topic_words
        self._topic_words: bool | None = None if topic_words else False
        self._link: tuple[np.ndarray, np.ndarray] | None | bool = False  # False: not yet worked out

    def needs_screen(self, extraction: Extraction) -> bool:
        return self.settings.prescreen_threshold > -1 and not extraction.allegation_sentences()

    def screen(self, title: str, text: str, extraction: Extraction) -> Screen:
        """Cheap first: an article in which no one is accused and nothing is denied, whose title and
        lead are far from the seeds, is off the topic; its other sentences are never embedded.

        Such an article could only be relevant through a sentence at least
        relevance_threshold / no_allegation_factor close to the seeds (0.59 by default) further down,
        while its title and lead stay below prescreen_threshold (0.35): a gap kept wide on purpose.
        An allegation anywhere in the text (the extractor's cues and the gazetteer, no model) always
        passes the article on to the full analysis."""
        if self.settings.prescreen_threshold <= -1:
            return Screen(True, None, "pre-screen off")
        if extraction.allegation_sentences():
            return Screen(True, None, "an allegation or a denial in the text")
        head = lead_sentences(extraction, title, text)[:SCREEN_SENTENCES]
        vectors = self.embedder.embed(head)
        sims = vectors @ self.corpus.vectors.T
        best = sims.max(axis=1)
        index = int(best.argmax())
        score = float(best[index])
        chunk = self.corpus.chunks[int(sims[index].argmax())]
        seed = SeedMatch(chunk.source, chunk.sentence, round(score, 4))
        if score >= self.settings.prescreen_threshold:
            return Screen(True, score, f"title and lead {score:.2f} from the seeds", seed, vectors)
        reason = (
            f"title and lead far from the topic (closest {score:.2f} < prescreen "
            f"{self.settings.prescreen_threshold:.2f}) "
            "and no one is accused and nothing is denied: the rest of the article was not read by the model"
        )
        return Screen(False, score, reason, seed, vectors)

    def score(
        self, extraction: Extraction, vectors: np.ndarray, cues: Extraction | None = None
    ) -> tuple[float, SeedMatch | None, str]:
        sims = vectors @ self.corpus.vectors.T
        best_chunk = sims.argmax(axis=1)
        best = sims.max(axis=1)
        claims = extraction.allegation_sentences()
        if not (extraction.accusations or extraction.targets or extraction.denied_targets):
            # No act of interference anywhere in the parse, nobody did anything to anyone: a denial
            # of "the accusation" or an accusation of breaking a trade deal is no allegation here.
            claims = []
        elif cues is not None:
            # The word cues that passed the article on name allegations the parse may not resolve to
            # a state ("foreign actors", a headline's loose grammar): they count as allegations here.
            flagged = {cues.sentences[i] for i in cues.allegation_sentences()}
            claims = sorted(set(claims) | {i for i, text in enumerate(extraction.sentences) if text in flagged})
        # Topic closeness alone lets a hacking story with no election in it through; an allegation
        # (someone accused, or a denial) in a sentence close to the seeds is what makes it relevant.
        pool = claims if claims else list(range(len(best)))
        index = max(pool, key=lambda i: best[i])
        top = np.sort(best)[-3:].mean()
        score = 0.5 * float(best[index]) + 0.5 * float(top)
        if not claims:
            score *= self.settings.no_allegation_factor
        chunk = self.corpus.chunks[int(best_chunk[index])]
        seed = SeedMatch(chunk.source, chunk.sentence, round(float(best[index]), 4))
        if claims:
            allegation = shorten(extraction.sentences[index])
            reason = f'relevance {score:.2f}: allegation "{allegation}" is closest to seed {chunk.source}'
        else:
            reason = f"relevance {score:.2f}: no one is accused and nothing is denied"
        if extraction.topic_words == 0 and self._requires_topic_words():
            # Not one election, vote, campaign, party or parliament in the whole text: whatever the
            # state did, it was not done to the topic (the reader's `topic_words`).
            score = min(score, self.settings.relevance_threshold - 0.01)
            return (
                score,
                seed,
                reason + "; the article never names an election, a vote, a campaign, a party or a parliament",
            )
        link = self._topic_link(vectors[claims]) if claims else None
        aimed = self._topic_act(extraction)
        if aimed is not None and score < self.settings.relevance_threshold:
            # Who did what to whom, read by the parser: a state accused of an act on an election,
            # a campaign, a party, a parliament or voters is the topic whatever its words' distance.
            score = self.settings.relevance_threshold
            reason = f'relevance {score:.2f}: a state is accused of an act aimed at "{aimed}"'
            return score, seed, reason
        if link is not None and link < self.settings.topic_link_margin and not self._topic_targets(extraction):
            # Same actors, same vocabulary, but what they did has nothing the seeds are about (a
            # company's mail, a water plant): capped below the threshold, with the reason.
            score = min(score, self.settings.relevance_threshold - 0.01)
            reason += f"; no topic link: every allegation is closer to off-topic news than to the topic ({link:+.2f})"
        return score, seed, reason

    def _requires_topic_words(self) -> bool:
        if self._topic_words is None:
            assert self._topic_words_rule is not None
            self._topic_words = self._topic_words_rule()
        return self._topic_words

    def _topic_act(self, extraction: Extraction) -> str | None:
        """A target of a topic kind (an election, a campaign, voters) that the parse ties to a
        state: hit in a sentence that accuses one, or in an article in which a state denies."""
        accusing = {a.sentence_index for a in extraction.accusations}
        state_denies = any(d.denier_is_state for d in extraction.denials)
        for target in [*extraction.targets, *extraction.denied_targets]:
            if target.identity is None or target.identity.kind not in self.topic_kinds:
                continue
            if target.sentence_index in accusing or state_denies:
                return target.phrase
        return None

    def _topic_targets(self, extraction: Extraction) -> bool:
        """Whether the parse found an act aimed at an election, a campaign, a party, a parliament or
        voters, whoever did it ("a sophisticated state actor broke into the parties' networks"):
        the allegation is then on the topic whatever its words resemble. The vote an article merely
        names (`at_issue`) is no such act."""
        return any(
            t.identity is not None and t.identity.kind in self.topic_kinds and not t.at_issue
            for t in extraction.targets
        )

    def _topic_link(self, vectors: np.ndarray) -> float | None:
        """How much closer the best allegation sentence is to the topic prototypes than to off-topic
        ones (data/topic_link.yaml); None when the prototypes do not describe the seed corpus."""
        if self._link is False:
            self._link = self._link_prototypes()
        if self._link is None or not len(vectors):
            return None
        link, contrast = self._link  # type: ignore[misc]
        margins = (vectors @ link.T).max(axis=1) - (vectors @ contrast.T).max(axis=1)
        return float(margins.max())

    def _link_prototypes(self) -> tuple[np.ndarray, np.ndarray] | None:
        data = load_data("topic_link.yaml") or {}
        if not data.get("link") or not data.get("contrast"):
            return None
        link = self.embedder.embed(list(data["link"]))
        contrast = self.embedder.embed(list(data["contrast"]))
        # The prototypes apply only to a corpus they describe: among seed sentences close to either
        # set, most must be closer to the topic side.
        to_link = (self.corpus.vectors @ link.T).max(axis=1)
        to_contrast = (self.corpus.vectors @ contrast.T).max(axis=1)
        near = np.maximum(to_link, to_contrast) >= self.settings.topic_link_near
        if not near.any() or float((to_link[near] > to_contrast[near]).mean()) <= 0.5:
            return None
        return link, contrast


def lead_sentences(extraction: Extraction, title: str, text: str) -> list[str]:
    return extraction.sentences or [title or text[:200] or " "]
