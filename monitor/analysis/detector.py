"""The functional core: an article and what is known in, findings out. No database, no network."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from monitor.analysis.embedder import Embedder
from monitor.analysis.extract import Extraction, Extractor, default_extractor
from monitor.analysis.knowledge import Fact, FactKind, KnowledgeBase, Story
from monitor.analysis.seeds import SeedCorpus, SeedDocument
from monitor.analysis.text import fold
from monitor.config import AnalysisSettings


@dataclass(frozen=True)
class ArticleInput:
    title: str
    text: str
    url: str | None = None
    published: datetime | None = None


@dataclass(frozen=True)
class Mention:
    kind: FactKind
    value: str
    about: str
    evidence: str
    specific: bool = False  # a denial that names what it denies in its own words


@dataclass(frozen=True)
class Finding:
    kind: FactKind
    value: str
    about: str
    evidence: str
    closest: Fact | None
    similarity: float | None
    reason: str


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


# The pre-screen reads the title and the lead: the first sentences of the article, title included.
SCREEN_SENTENCES = 2
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


@dataclass(frozen=True)
class _Match:
    fact: Fact | None
    similarity: float | None


class Detector:
    def __init__(self, embedder: Embedder, corpus: SeedCorpus, settings: AnalysisSettings, extractor: Extractor | None = None) -> None:
        self.embedder = embedder
        self.corpus = corpus
        self.settings = settings
        self.extractor = extractor or default_extractor()
        self._link: tuple[np.ndarray, np.ndarray] | None | bool = False  # False: not yet worked out
        self._extractions: OrderedDict[tuple[str, str], Extraction] = OrderedDict()

    # ----- public ---------------------------------------------------------------------------
    def analyze(self, article: ArticleInput, kb: KnowledgeBase) -> Analysis:
        extraction = self._extract(article)
        screen = self._screen(article, extraction)
        if not screen.passed:
            return self._screened_out(article, screen)
        sentences = _sentences(article, extraction)
        vectors = self.embedder.embed(sentences)
        relevance, closest_seed, reason = self._relevance(extraction, vectors)
        relevant = relevance >= self.settings.relevance_threshold
        # The lead's vector finds other outlets' versions of a relevant story; an article that is
        # not relevant keeps its sentence closest to the seeds instead, and the lead is never embedded.
        vector = self._story_vector(article, extraction) if relevant else _closest_to_seeds(vectors, self.corpus)
        mentions = self._mentions(extraction, article) if relevant else []
        same_story = self._same_story(vector, article.published, kb) if relevant else None
        findings, known, new_facts = self._judge(mentions, kb, same_story, article, vector)
        if relevant and not findings:
            reason += "; nothing new: " + (f"same story as {same_story.ref}" if same_story else "every item is already known")
        return Analysis(
            relevance=relevance,
            relevant=relevant,
            reason=reason,
            vector=vector,
            closest_seed=closest_seed,
            mentions=mentions,
            findings=findings if relevant else [],
            same_story_as=same_story.ref if same_story else None,
            new_facts=new_facts if relevant else [],
            title=article.title,
            known=known,
        )

    def analyze_batch(self, articles: Sequence[ArticleInput], kb: KnowledgeBase) -> list[Analysis]:
        """Each article judged against kb as given; texts are embedded together first."""
        screens = self.prescreen(articles)
        self.embed_ahead([a for a, screen in zip(articles, screens, strict=True) if screen.passed])
        return [self.analyze(article, kb) for article in articles]

    def prescreen(self, articles: Sequence[ArticleInput]) -> list[Screen]:
        """The pre-screen's verdict on each article; the title and lead sentences of all the articles
        that need them are embedded in one model call."""
        extractions = [self._extract(article) for article in articles]
        texts = [
            text
            for article, extraction in zip(articles, extractions, strict=True)
            if self._needs_screen(extraction)
            for text in _sentences(article, extraction)[:SCREEN_SENTENCES]
        ]
        self.embedder.embed(texts)
        return [self._screen(article, extraction) for article, extraction in zip(articles, extractions, strict=True)]

    def embed_ahead(self, articles: Sequence[ArticleInput]) -> None:
        """Embed the sentences of ARTICLES in one model call: analyze() then finds them in the
        embedder's memo. For articles that passed the pre-screen; the others never need them. The
        lead is embedded by analyze() only for an article found relevant."""
        texts: list[str] = []
        for article in articles:
            texts += _sentences(article, self._extract(article))
        self.embedder.embed(texts)

    # ----- pre-screen -----------------------------------------------------------------------
    def _extract(self, article: ArticleInput) -> Extraction:
        """The extractor's reading of ARTICLE, kept for a while: screening and analysis share it."""
        key = (article.title, article.text)
        extraction = self._extractions.get(key)
        if extraction is None:
            extraction = self.extractor.extract(article.title, article.text)
            self._extractions[key] = extraction
            while len(self._extractions) > _EXTRACTIONS_KEPT:
                self._extractions.popitem(last=False)
        else:
            self._extractions.move_to_end(key)
        return extraction

    def _needs_screen(self, extraction: Extraction) -> bool:
        return self.settings.prescreen_threshold > -1 and not extraction.allegation_sentences()

    def _screen(self, article: ArticleInput, extraction: Extraction) -> Screen:
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
        head = _sentences(article, extraction)[:SCREEN_SENTENCES]
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
            f"title and lead far from the topic (closest {score:.2f} < prescreen {self.settings.prescreen_threshold:.2f}) "
            "and no one is accused and nothing is denied: the rest of the article was not read by the model"
        )
        return Screen(False, score, reason, seed, vectors)

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

    # ----- relevance ------------------------------------------------------------------------
    def _relevance(self, extraction: Extraction, vectors: np.ndarray) -> tuple[float, SeedMatch | None, str]:
        sims = vectors @ self.corpus.vectors.T
        best_chunk = sims.argmax(axis=1)
        best = sims.max(axis=1)
        claims = extraction.allegation_sentences()
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
            reason = f"relevance {score:.2f}: allegation \"{_short(extraction.sentences[index])}\" is closest to seed {chunk.source}"
        else:
            reason = f"relevance {score:.2f}: no one is accused and nothing is denied"
        link = self._topic_link(vectors[claims]) if claims else None
        if link is not None and link < self.settings.topic_link_margin:
            # Same actors, same vocabulary, but what they did has nothing the seeds are about (a
            # company's mail, a water plant): capped below the threshold, with the reason.
            score = min(score, self.settings.relevance_threshold - 0.01)
            reason += f"; no topic link: every allegation is closer to off-topic news than to the topic ({link:+.2f})"
        return score, seed, reason

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
        from monitor.analysis.gazetteer import load_data

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

    def _story_vector(self, article: ArticleInput, extraction: Extraction) -> np.ndarray:
        return self.embedder.embed([_lead(extraction)])[0]

    # ----- what the article says --------------------------------------------------------------
    def _mentions(self, extraction: Extraction, article: ArticleInput) -> list[Mention]:
        mentions: list[Mention] = []
        seen: set[tuple[str, str, str]] = set()

        def add(mention: Mention) -> None:
            key = (mention.kind, mention.value, mention.about)
            if key not in seen:
                seen.add(key)
                mentions.append(mention)

        for accusation in extraction.accusations:
            add(Mention("country", accusation.country, "", accusation.evidence))
        for target in extraction.targets:
            add(Mention("target", target.phrase, "", target.evidence))
        for denial in extraction.denials:
            electorate = extraction.electorate(exclude={d.denier for d in extraction.denials})
            # What is denied: the denier's own words when they name it ("that it was behind the hoax
            # bomb threats"), else the allegation the denial answers, else the article's lead.
            stated = [d.denied for d in extraction.denials if d.denier == denial.denier and d.denied]
            specific = max(stated, key=lambda t: len(t.split()), default="")
            answered = specific or (denial.allegation if denial.allegation != denial.evidence else extraction.lead())
            about = _allegation_key(denial.accused, electorate, answered)
            if ("denial", denial.denier) in {(m.kind, m.value) for m in mentions}:
                continue  # one denial per denier per article: the first states it best
            add(Mention("denial", denial.denier, about, denial.evidence, bool(specific)))
        return mentions

    # ----- novelty ----------------------------------------------------------------------------
    def _judge(
        self,
        mentions: list[Mention],
        kb: KnowledgeBase,
        same_story: Story | None,
        article: ArticleInput,
        vector: np.ndarray | None = None,
    ) -> tuple[list[Finding], list[Finding], list[Fact]]:
        findings: list[Finding] = []
        known: list[Finding] = []
        new_facts: list[Fact] = []
        accepted_targets: list[str] = []
        for mention in mentions:
            if mention.kind == "country":
                finding, is_new = self._judge_country(mention, kb)
            elif mention.kind == "target":
                finding, is_new = self._judge_target(mention, kb, accepted_targets, same_story, known)
            else:
                finding, is_new = self._judge_denial(mention, kb, accepted_targets, vector)
            if is_new:
                if finding.reason.startswith("same story"):
                    known.append(finding)
                else:
                    findings.append(finding)
                if mention.kind == "target" and not finding.reason.startswith("same story"):
                    accepted_targets.append(mention.value)
                new_facts.append(
                    Fact(mention.kind, mention.value, mention.about, mention.evidence, "article", article.url or article.title, article.published)
                )
            else:
                known.append(finding)
                if mention.kind == "denial" and same_story is None:
                    # Another wording of a denial already made is kept too (no alert), so that the
                    # next denial is compared with the story it was made in as well.
                    new_facts.append(
                        Fact(mention.kind, mention.value, mention.about, mention.evidence, "article", article.url or article.title, article.published)
                    )
        return findings, known, new_facts

    def _judge_country(self, mention: Mention, kb: KnowledgeBase) -> tuple[Finding, bool]:
        countries = kb.of_kind("country")
        same = [f for f in countries if f.value == mention.value]
        if same:
            return Finding("country", mention.value, "", mention.evidence, same[0], 1.0, f"{mention.value} is already alleged ({same[0].source_ref})"), False
        match = self._closest(mention.evidence, countries, lambda f: f.evidence)
        closest = f"closest known: {match.fact.value}" if match.fact else "nothing similar is known"
        reason = f"no earlier source alleges {mention.value}; {closest}"
        return Finding("country", mention.value, "", mention.evidence, match.fact, match.similarity, reason), True

    def _judge_target(
        self, mention: Mention, kb: KnowledgeBase, accepted: list[str], same_story: Story | None, known_here: list[Finding] = ()  # type: ignore[assignment]
    ) -> tuple[Finding, bool]:
        targets = kb.of_kind("target")
        match = self._closest(mention.value, targets, lambda f: f.value)
        if self._same_target(mention.value, match, targets):
            assert match.fact is not None
            reason = f"known target: matches \"{match.fact.value}\" ({match.similarity:.2f})"
            return Finding("target", mention.value, "", mention.evidence, match.fact, match.similarity, reason), False
        # A wording without a name of its own ("presidential campaigns of both parties") after a
        # known target in the same article ("Donald Trump's presidential campaign") is that target.
        earlier = [f for f in known_here if f.kind == "target" and f.closest is not None]
        if earlier:
            here = [Fact("target", f.value, "", f.evidence, "article", "") for f in earlier]
            sibling = self._closest(mention.value, here, lambda f: f.value)
            if self._same_target(mention.value, sibling, here):
                assert sibling.fact is not None
                origin = next(f.closest for f in earlier if f.value == sibling.fact.value)
                reason = f"known target: another wording of \"{sibling.fact.value}\" in this article, which matches \"{origin.value}\"" if origin else "known target"
                return Finding("target", mention.value, "", mention.evidence, origin, sibling.similarity, reason), False
        if accepted:
            siblings = [Fact("target", a, "", "", "article", "") for a in accepted]
            sibling = self._closest(mention.value, siblings, lambda f: f.value)
            if self._same_target(mention.value, sibling, siblings):
                return Finding("target", mention.value, "", mention.evidence, None, sibling.similarity, "another wording of a target already reported in this article"), False
        if same_story is not None:
            # Another outlet's version words the same victims differently; only a name the earlier
            # story never brought (a new person, body or place) is news.
            story_targets = [f for f in same_story.facts if f.kind == "target"]
            story_match = self._closest(mention.value, story_targets, lambda f: f.value)
            story_names = set().union(*(_names(f.value) | _names(f.evidence) for f in same_story.facts)) if same_story.facts else set()
            fresh = _names(mention.value) - story_names - _country_words(mention.value)
            if not fresh or (story_match.similarity or 0) >= self.settings.same_story_target_threshold:
                reason = f"same story as {same_story.ref}" + (f": \"{story_match.fact.value}\" ({story_match.similarity:.2f})" if story_match.fact else "")
                return Finding("target", mention.value, "", mention.evidence, story_match.fact, story_match.similarity, reason), True
        closest = f"closest known: \"{match.fact.value}\" ({match.similarity:.2f})" if match.fact else "nothing similar is known"
        return Finding("target", mention.value, "", mention.evidence, match.fact, match.similarity, f"no earlier source names this target; {closest}"), True

    def _same_target(self, value: str, match: _Match, known: list[Fact] | None = None) -> bool:
        """Whether VALUE names a known target. Names carry identity: a name no known wording has
        ("Harris" against "Biden campaign") makes it another target unless the wordings are all but
        identical. Without a fresh name, the same head noun ("candidates of either party" and
        "candidates further down the ballot"), or a named person's entourage ("Biden-Harris team",
        "Joe Biden"), or a close enough wording makes it the same target."""
        if match.fact is None or match.similarity is None:
            return False
        if fold(value) == fold(match.fact.value):
            return True
        candidates = [(match.fact, match.similarity)]
        if known:
            vectors = self.embedder.embed([value, *[f.value for f in known]])
            sims = vectors[1:] @ vectors[0]
            candidates = [(f, float(sim)) for f, sim in zip(known, sims, strict=True)]
        return any(self._same_as(value, fact.value, similarity) for fact, similarity in candidates)

    def _same_as(self, value: str, other: str, similarity: float) -> bool:
        words = self._cue_words()
        names = _target_names(value, words)
        known_words = set(fold(other).split()) | {w.removesuffix("s") for w in fold(other).split()}
        fresh = {n for n in names if n not in known_words}
        # "Biden-Harris": a joint name with a known member is that member's ticket.
        fresh -= {n for n in fresh if any(n in part and (set(part) - {n}) & known_words for part in _compounds(value))}
        if fresh:
            return similarity >= self.settings.target_name_threshold
        head, other_head = _head(value, words), _head(other, words)
        if names:
            entourage = head in words["entourage"] or bool(set(_core(value, words, whole=True)) & words["entourage"])
            if entourage and names & known_words and (_target_names(other, words) or other_head in words["entourage"]):
                return True  # a named person's or body's campaign, team, staff, or people around them
            return similarity >= self.settings.target_shared_name_threshold
        if head and head in _core(other, words):
            return True  # "candidates of either party" and "candidates further down the ballot"
        return similarity >= self.settings.target_match_threshold

    def _cue_words(self) -> dict[str, set[str]]:
        c = self.extractor.c
        return {
            "generic": {w.lower() for w in [*c.get("body_nouns", []), *c.get("entourage_nouns", [])]},
            "entourage": {w.lower() for w in c.get("entourage_nouns", [])},
            "joiners": {j.lower() for j in c.get("target_joiners", [])} | {w.lower() for w in c.get("target_stops", [])},
        }

    def _judge_denial(
        self, mention: Mention, kb: KnowledgeBase, new_targets: list[str], vector: np.ndarray | None
    ) -> tuple[Finding, bool]:
        """A denial is known when the same denier already denied the same allegation: the same
        accused, about the same country's politics, and the same target or operation. The last is
        read two ways, the denial with the sentence it answers and the article's lead, and either
        one close enough to an earlier denial's makes it the same; a target no one named before
        makes the allegation, and so its denial, new."""
        same_denier = [f for f in kb.of_kind("denial") if f.value == mention.value]
        accused, electorate, _ = _split_key(mention.about)
        comparable = [
            f
            for f in same_denier
            if _split_key(f.about)[0] in (accused, "?") or accused == "?"
            if _split_key(f.about)[1] in (electorate, "?") or electorate == "?"
        ]
        if comparable and new_targets:
            reason = f"{mention.value} has not denied this allegation before: it now covers \"{new_targets[0]}\", a target no earlier source named"
            return Finding("denial", mention.value, mention.about, mention.evidence, None, None, reason), True
        match = self._closest_denial(mention, comparable, kb, vector)
        if match.fact is not None and match.similarity is not None and match.similarity >= self.settings.denial_match_threshold:
            reason = f"{mention.value} already denied this ({match.fact.source_ref}; {match.similarity:.2f})"
            return Finding("denial", mention.value, mention.about, mention.evidence, match.fact, match.similarity, reason), False
        if comparable and match.fact is not None:
            reason = f"{mention.value} has not denied this allegation before; closest earlier denial ({match.similarity:.2f}): \"{_short(match.fact.evidence)}\""
        elif same_denier:
            reason = f"{mention.value} denied before, but not about {electorate}"
        else:
            reason = f"no earlier denial by {mention.value}"
        return Finding("denial", mention.value, mention.about, mention.evidence, match.fact, match.similarity, reason), True

    def _closest_denial(self, mention: Mention, facts: list[Fact], kb: KnowledgeBase, vector: np.ndarray | None) -> _Match:
        if not facts:
            return _Match(None, None)

        def claim(about: str, evidence: str) -> str:
            return f"{evidence} {_split_key(about)[2]}"

        vectors = self.embedder.embed([claim(mention.about, mention.evidence), *[claim(f.about, f.evidence) for f in facts]])
        sims = vectors[1:] @ vectors[0]
        # What this denial rejects, in the denier's words when it names it, else the article's story,
        # against the story in which each earlier denial was made.
        denied = self.embedder.embed([_split_key(mention.about)[2]])[0] if mention.specific or vector is None else vector
        leads = {fact.key: story.vector for story in kb.stories for fact in story.facts if fact.kind == "denial"}
        for i, fact in enumerate(facts):
            if fact.key in leads:
                sims[i] = max(sims[i], float(leads[fact.key] @ denied))
        best = int(sims.argmax())
        return _Match(facts[best], round(float(sims[best]), 4))

    def _closest(self, text: str, facts: list[Fact], field_of) -> _Match:  # type: ignore[no-untyped-def]
        if not facts:
            return _Match(None, None)
        vectors = self.embedder.embed([text, *[field_of(f) for f in facts]])
        sims = vectors[1:] @ vectors[0]
        best = int(sims.argmax())
        return _Match(facts[best], round(float(sims[best]), 4))

    # ----- same story -------------------------------------------------------------------------
    def _same_story(self, vector: np.ndarray, published: datetime | None, kb: KnowledgeBase) -> Story | None:
        best: Story | None = None
        best_sim = self.settings.same_story_threshold
        window = timedelta(days=self.settings.same_story_days)
        for story in kb.stories:
            if published and story.published and abs(published - story.published) > window:
                continue
            similarity = float(story.vector @ vector)
            if similarity >= best_sim:
                best, best_sim = story, similarity
        return best


def _sentences(article: ArticleInput, extraction: Extraction) -> list[str]:
    return extraction.sentences or [article.title or article.text[:200] or " "]


def _closest_to_seeds(vectors: np.ndarray, corpus: SeedCorpus) -> np.ndarray:
    return vectors[int((vectors @ corpus.vectors.T).max(axis=1).argmax())]


def _lead(extraction: Extraction) -> str:
    """The story's lead, whose embedding recognises another outlet's version of it."""
    return " ".join(extraction.sentences[:4])


def _country_words(phrase: str) -> set[str]:
    from monitor.analysis.gazetteer import default_gazetteer

    return {w.lower() for m in default_gazetteer().find(phrase) for w in m.alias.split()}


def _target_names(phrase: str, words: dict[str, set[str]]) -> set[str]:
    """The names in a target phrase, compound names split, generic capitalised nouns ("Party",
    "President") left out."""
    found = set()
    for name in _names(phrase):
        found.update(p for p in name.split("-") if p and p not in words["generic"])
    return found


def _compounds(phrase: str) -> list[set[str]]:
    return [set(w.lower().split("-")) for w in re.findall(r"\b[A-Z][\w']*(?:-[A-Z][\w']*)+", phrase)]


def _core(phrase: str, words: dict[str, set[str]], *, whole: bool = False) -> list[str]:
    """The words of a target phrase before its complement ("of ...", "associated with ..."), singular."""
    tokens = fold(phrase).split()
    for i, token in enumerate(tokens if not whole else []):
        if i and (token in words["joiners"] or " ".join(tokens[i : i + 2]) in words["joiners"]) and token != "and":
            tokens = tokens[:i]
            break
    return [t[:-1] if t.endswith("s") and not t.endswith("ss") else t for t in tokens]


def _head(phrase: str, words: dict[str, set[str]]) -> str:
    """The head noun of a target phrase: the last word of its core."""
    core = _core(phrase, words)
    return core[-1] if core else ""


def _names(phrase: str) -> set[str]:
    """Proper-name words of a phrase ("Harris", "Taiwanese"), lower-cased."""
    return {w.lower().removesuffix("'s") for w in re.findall(r"\b[A-Z][\w'-]*", phrase) if len(w) > 1} - {"the", "a", "an"}


def _allegation_key(accused: str, electorate: str, lead: str) -> str:
    """The allegation a denial answers, short enough for a database key: who is accused, whose
    politics it concerns, and the story's lead in its own words."""
    text = re.sub(r"\s+", " ", lead).strip()
    return f"{accused or '?'} | {electorate or '?'} | {text}"[:300]


def _split_key(about: str) -> tuple[str, str, str]:
    parts = about.split(" | ", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else ("?", "?", about)


def _short(text: str, limit: int = 120) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def seed_knowledge(detector: Detector, documents: list[SeedDocument]) -> list[Fact]:
    """The knowledge base the seeds imply, read with the same extractor that reads the news."""
    kb = KnowledgeBase()
    for document in documents:
        article = ArticleInput(title="", text=document.text, url=document.name)
        extraction = detector.extractor.extract("", document.text)
        mentions = detector._mentions(extraction, article)
        _, _, facts = detector._judge(mentions, kb, None, article)
        for fact in facts:
            kb._add(Fact(fact.kind, fact.value, fact.about, fact.evidence, "seed", document.name, None))
    return list(kb.facts)
