"""What an article says, as mentions: how an election's year is read (no model, no parser)."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.analysis.facts import Extraction, TargetIdentity, TargetMention
from monitor.analysis.mentions import mentions

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
