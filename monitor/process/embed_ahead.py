"""Cheap first, then in bulk: the model's work for a claimed batch, done ahead of the loop."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from monitor.analysis.detector import ArticleInput, Detector

log = logging.getLogger(__name__)

# Embedding ahead covers this many articles that passed the pre-screen at a time: enough sentences
# for full model batches, little enough that a stop request waits for one short model call.
AHEAD_ARTICLES = 8


class EmbedAhead:
    """The claimed batch is pre-screened at once (the title and lead of every article without an
    allegation in one model call), and the sentences of the articles that pass are embedded
    AHEAD_ARTICLES at a time before the loop reaches them. Analysing an article then finds its
    vectors in the embedder's memo; an article the pre-screen rejects is never embedded beyond its
    title and lead. Any failure here only loses the head start: each article's own analysis redoes
    the work and reports its error."""

    def __init__(self, detector: Detector, articles: Sequence[ArticleInput | None]) -> None:
        self.detector = detector
        self.articles: list[ArticleInput | None] = [None] * len(articles)
        self.done = 0
        try:
            present = [a for a in articles if a is not None]
            screens = iter(detector.prescreen(present))
            self.articles = [a if a is not None and next(screens).passed else None for a in articles]
        except Exception:  # only the head start is lost
            log.warning("pre-screen ahead failed", exc_info=True)

    def before(self, position: int) -> None:
        """Embed ahead from POSITION unless that article's vectors are already there."""
        if position < self.done:
            return
        chosen: list[ArticleInput] = []
        end = position
        while end < len(self.articles) and len(chosen) < AHEAD_ARTICLES:
            if (article := self.articles[end]) is not None:
                chosen.append(article)
            end += 1
        self.done = end
        if not chosen:
            return
        try:
            self.detector.embed_ahead(chosen)
        except Exception:  # only the head start is lost
            log.warning("embed ahead failed", exc_info=True)
