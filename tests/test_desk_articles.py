"""The desk's articles, over HTTP on SQLite and PostgreSQL: every verdict with its reason, the word
search, dates and the cursor, one article's page, the errors, and titles that try to be markup."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from markupsafe import escape
from support.desk_rows import HOSTILE_TITLES, Desk, Found, logged_in, walk

from monitor.store.db import SessionFactory


def day(n: int) -> datetime:
    return datetime(2024, 11, n, 9, tzinfo=UTC)


@dataclass
class Archive:
    alerted: int  # 1 Nov, Wire (and Daily): relevant, a new country, alerted
    turnips: int  # 2 Nov: off-topic, "turnip" only in its text
    broken: int  # 3 Nov: analysis failed three times
    fresh: int  # 4 Nov: not analysed yet
    hostile: int  # 5 Nov: off-topic, a title of markup
    echo: int  # 6 Nov: relevant, nothing new (no alert)


@pytest.fixture
def archive(sessions: SessionFactory) -> Archive:
    desk = Desk(sessions)
    desk.feed("Wire")
    desk.feed("Daily")
    moldova = "https://news.example.org/moldova"
    alerted = desk.article("Wire", "Moldova named", text="Officials named Moldova.", fetched=day(1), url=moldova)
    desk.judge(
        alerted,
        relevant=True,
        reason="close to the seeds",
        findings=[Found("country", "Moldova", "Officials named Moldova.")],
    )
    desk.link("Daily", moldova, day(1))
    turnips = desk.article("Daily", "Market day", text="Turnip harvest beats records in the valley.", fetched=day(2))
    desk.judge(turnips, relevant=False, reason="far from every seed (0.12)", relevance=0.12)
    broken = desk.article("Wire", "Broken markup", fetched=day(3))
    desk.fail(broken, "analyze: ValueError: no text")
    fresh = desk.article("Wire", "Just arrived turnip story", fetched=day(4))
    hostile = desk.article("Daily", HOSTILE_TITLES[0] + HOSTILE_TITLES[1], fetched=day(5), url="javascript:alert(1)")
    desk.judge(hostile, relevant=False, reason=HOSTILE_TITLES[1], relevance=0.2)
    echo = desk.article("Wire", "Moldova again", text="Officials named Moldova again.", fetched=day(6))
    desk.judge(echo, relevant=True, reason="all of it known")
    return Archive(alerted, turnips, broken, fresh, hostile, echo)


async def ids(client: object, **params: str) -> list[int]:
    answer = await client.get("/api/articles", params=params)  # type: ignore[attr-defined]
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


async def test_every_article_with_its_verdict_and_reason(sessions: SessionFactory, archive: Archive) -> None:
    async with logged_in(sessions) as client:
        body = (await client.get("/api/articles")).json()
    rows = {item["id"]: item for item in body["items"]}
    assert list(rows) == [
        archive.echo,
        archive.hostile,
        archive.fresh,
        archive.broken,
        archive.turnips,
        archive.alerted,
    ]
    assert body["next"] is None
    assert (rows[archive.turnips]["verdict"], rows[archive.turnips]["reason"]) == (
        "off_topic",
        "far from every seed (0.12)",
    )
    assert rows[archive.turnips]["relevance"] == pytest.approx(0.12)
    assert (rows[archive.broken]["verdict"], rows[archive.broken]["reason"]) == (
        "failed",
        "analyze: ValueError: no text",
    )
    assert (rows[archive.fresh]["verdict"], rows[archive.fresh]["reason"]) == ("new", "")
    assert (rows[archive.alerted]["verdict"], rows[archive.echo]["verdict"]) == ("relevant", "relevant")


# Each filter, and the articles it lets through (the archive's names), newest first.
FILTERS = [
    ({"verdict": "off_topic"}, ["hostile", "turnips"]),
    ({"verdict": "relevant"}, ["echo", "alerted"]),
    ({"verdict": "failed"}, ["broken"]),
    ({"verdict": "new"}, ["fresh"]),
    ({"since": "2024-11-02", "until": "2024-11-03"}, ["broken", "turnips"]),
    ({"until": "2024-11-01"}, ["alerted"]),
    # Words in the text as well as the title, any case; every word must be there.
    ({"q": "turnip"}, ["fresh", "turnips"]),
    ({"q": "TURNIP harvest"}, ["turnips"]),
    ({"q": "turnip", "verdict": "off_topic"}, ["turnips"]),
    ({"q": "turnip", "since": "2024-11-03"}, ["fresh"]),
    ({"q": "moldova"}, ["echo", "alerted"]),
    ({"q": "zeppelin"}, []),
    (
        {"q": "", "verdict": "", "since": "", "until": ""},
        ["echo", "hostile", "fresh", "broken", "turnips", "alerted"],
    ),
]


async def test_filters(sessions: SessionFactory, archive: Archive, subtests: pytest.Subtests) -> None:
    # Each filter a subtest: only reading, they share one archive (built once, not once per filter).
    async with logged_in(sessions) as client:
        for params, expected in FILTERS:
            with subtests.test(params=params):
                assert await ids(client, **params) == [getattr(archive, name) for name in expected]


async def test_the_cursor_walks_every_article_exactly_once(sessions: SessionFactory, archive: Archive) -> None:
    desk = Desk(sessions)
    desk.known_feed("Wire")
    extra = []
    for n in range(9):
        article = desk.article("Wire", f"Harvest report {n}", text="turnip" if n % 2 else "barley", fetched=day(10 + n))
        desk.judge(article, relevant=False, reason="off the topic")
        extra.append(article)
    everything = sorted([*extra, *vars(archive).values()], reverse=True)
    async with logged_in(sessions, page_size=4) as client:
        pages = await walk(client, "/api/articles", {})
        assert [len(page) for page in pages] == [4, 4, 4, 3]
        assert [i for page in pages for i in page] == everything
        # With words and another filter the search's hits are read on until the page is full.
        pages = await walk(client, "/api/articles", {"q": "turnip", "verdict": "off_topic", "limit": "2"})
        turnips = sorted([*extra[1::2], archive.turnips], reverse=True)
        assert [i for page in pages for i in page] == turnips
        assert all(len(page) <= 2 for page in pages)
        page = await client.get("/articles", params={"verdict": "off_topic", "limit": "3"})
        cursor = sorted([*extra, archive.hostile, archive.turnips], reverse=True)[2]
        assert f'href="/articles?limit=3&amp;verdict=off_topic&amp;before={cursor}"' in page.text


async def test_an_article_shows_verdict_findings_feeds_and_allegation(
    sessions: SessionFactory, archive: Archive
) -> None:
    async with logged_in(sessions) as client:
        body = (await client.get(f"/api/articles/{archive.alerted}")).json()
        page = await client.get(f"/articles/{archive.alerted}")
        turnips = (await client.get(f"/api/articles/{archive.turnips}")).json()
        broken = await client.get(f"/articles/{archive.broken}")
    assert body["feeds"] == ["Wire", "Daily"] and body["feed"] == "Wire"
    assert (body["verdict"], body["reason"], body["alerted"]) == ("relevant", "close to the seeds", True)
    assert body["closest_allegation"] == {
        "source": "seeds/000.txt",
        "sentence": "Russia hacked the vote.",
        "score": 0.81,
    }
    assert [(f["kind"], f["value"]) for f in body["findings"]] == [("country", "Moldova")]
    assert (turnips["verdict"], turnips["alerted"], turnips["findings"]) == ("off_topic", False, [])
    assert page.status_code == 200
    assert "Officials named <mark>Moldova</mark>." in page.text
    assert f'<a href="/alerts/{archive.alerted}">its alert</a>' in page.text
    assert "Feeds: Wire, Daily" in page.text and "Russia hacked the vote." in page.text
    assert broken.status_code == 200 and "analyze: ValueError: no text" in broken.text


async def test_unknown_ids_are_404_and_bad_filters_422(sessions: SessionFactory, archive: Archive) -> None:
    async with logged_in(sessions) as client:
        assert (await client.get("/api/articles/999999")).status_code == 404
        assert (await client.get("/articles/999999")).status_code == 404
        for bad in ("verdict=maybe", "q=" + "w" * 201, "q=a%00b", "before=x1", "limit=9999", "since=2024-11-31"):
            for path in ("/api/articles", "/articles"):
                answer = await client.get(f"{path}?{bad}")
                assert answer.status_code == 422, (path, bad, answer.text)
        assert (await client.get("/api/articles/-1")).status_code == 422


async def test_markup_in_titles_and_reasons_is_text_on_pages_and_data_in_json(
    sessions: SessionFactory, archive: Archive
) -> None:
    title = HOSTILE_TITLES[0] + HOSTILE_TITLES[1]
    async with logged_in(sessions) as client:
        listed = await client.get("/articles")
        fragment = await client.get("/articles", params={"verdict": "off_topic"}, headers={"HX-Request": "true"})
        detail = await client.get(f"/articles/{archive.hostile}")
        data = (await client.get("/api/articles", params={"verdict": "off_topic"})).json()
        one = (await client.get(f"/api/articles/{archive.hostile}")).json()
    for page in (listed, fragment, detail):
        assert page.status_code == 200
        assert str(escape(title)) in page.text
        for raw in ("<script>alert(1)", "<img src=x", "onerror=alert(1)>"):
            assert raw not in page.text
        assert "javascript:" not in page.text
    assert "<html" not in fragment.text
    assert data["items"][0]["title"] == title and data["items"][0]["reason"] == HOSTILE_TITLES[1]
    assert one["title"] == title and one["url"] == "javascript:alert(1)"
