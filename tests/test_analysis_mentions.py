"""What an article says, as mentions: how an election's year is read (no model, no parser)."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.analysis.facts import DenialMention, Extraction, TargetIdentity, TargetMention
from monitor.analysis.mentions import Allegation, mentions

PUBLISHED = datetime(2021, 3, 17, tzinfo=UTC)


def _election(phrase: str, whose: str = "United States") -> TargetMention:
    return TargetMention(phrase, f"Russia meddled in the {phrase}.", 0, TargetIdentity(whose, "election"))


def _abouts(*targets: TargetMention) -> list[str]:
    extraction = Extraction(sentences=["."], targets=list(targets))
    return [m.about for m in mentions(extraction, PUBLISHED) if m.kind == "target"]


def test_an_undated_election_takes_the_year_the_article_gives_that_country() -> None:
    assert _abouts(_election("US elections"), _election("2020 US presidential elections")) == [
        "United States/election/2020",
        "United States/election/2020",
    ]


def test_without_one_stated_year_an_election_is_the_articles_year() -> None:
    assert _abouts(_election("vote"), _election("Canadian vote", "Canada")) == [
        "United States/election/2021",
        "Canada/election/2021",
    ]
    two_years = _abouts(_election("elections"), _election("2016 election"), _election("2020 election"))
    assert two_years[0] == "United States/election/2021", "two years stated: neither is the undated one's"


def test_another_countrys_year_does_not_date_an_election() -> None:
    assert _abouts(_election("vote"), _election("2019 Canadian election", "Canada"))[0] == "United States/election/2021"


def test_a_denial_without_a_dated_operation_takes_the_year_its_allegation_states() -> None:
    allegation = "Moscow's campaign in Madagascar's 2018 presidential election was anything but subtle."
    denial = DenialMention("Russia", True, "Russia", "The Kremlin rejected the report.", 1, allegation)
    extraction = Extraction(sentences=[allegation, denial.evidence], denials=[denial])
    (said,) = [m for m in mentions(extraction, PUBLISHED) if m.kind == "denial"]
    assert Allegation.parse(said.about).year == "2018"
    undated = DenialMention("Russia", True, "Russia", "The Kremlin rejected the report.", 1, "Moscow meddled.")
    (plain,) = mentions(Extraction(sentences=["Moscow meddled.", "x"], denials=[undated]), PUBLISHED)
    assert Allegation.parse(plain.about).year == "2021"


def test_a_denial_naming_its_own_target_answers_that_not_the_lead() -> None:
    lead = "Taiwan says Beijing smeared President Lin with fake videos."
    said = "Beijing has repeatedly denied interfering in the vote."
    denial = DenialMention("China", True, "China", said, 1, said)
    vote = TargetMention("vote (Taiwan)", said, 1, TargetIdentity("Taiwan", "election"))
    extraction = Extraction(sentences=[lead, said], targets=[vote], denials=[denial])
    (own,) = [m for m in mentions(extraction, PUBLISHED) if m.kind == "denial"]
    assert Allegation.parse(own.about).words == said
    bare = Extraction(sentences=[lead, said], denials=[denial])
    (general,) = [m for m in mentions(bare, PUBLISHED) if m.kind == "denial"]
    assert lead in Allegation.parse(general.about).words, "a denial naming nothing answers the lead"


def test_an_undated_election_takes_the_one_year_the_article_gives_elections_anywhere() -> None:
    def about(years: dict[str, set[str]]) -> str:
        extraction = Extraction(sentences=["."], targets=[_election("U.S. elections")], election_years=years)
        return next(m.about for m in mentions(extraction, PUBLISHED) if m.kind == "target")

    # "...changed the outcome of the 2016 election": an article written in 2021 about 2016.
    assert about({"": {"2016"}}) == "United States/election/2016"
    assert about({"United States": {"2016"}}) == "United States/election/2016"
    assert about({"": {"2016", "2020"}}) == "United States/election/2021", "two years: neither"
    assert about({"Canada": {"2019"}}) == "United States/election/2021", "another country's year"
