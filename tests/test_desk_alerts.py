"""The desk's alerts, over HTTP on SQLite and PostgreSQL: the list and its filters, the cursor, one
alert's page, the errors, and article text that tries to be markup."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from markupsafe import escape
from sqlalchemy import update
from support.desk_rows import HOSTILE_TITLES, Desk, Found, desk_app, logged_in, walk

from monitor.desk.listing import highlight
from monitor.store.db import SessionFactory
from monitor.store.models import Finding


def day(n: int, hour: int = 12) -> datetime:
    return datetime(2024, 10, n, hour, tzinfo=UTC)


@dataclass
class Newsroom:
    korea: int  # Wire, 1 Oct: a new country; delivered on slack, pending on email
    offtopic: int  # Daily, 2 Oct: judged off-topic, no alert
    ohio: int  # Daily, 3 Oct: a new target and a denial by Iran
    repeat: int  # Wire, 4 Oct: the Ohio story again, an "also reported" line only
    hostile: int  # Quiet, 5 Oct: a new country, Iran; its title is markup; slack dead
    quiet: int  # Wire, 6 Oct: relevant, nothing new, no alert


@pytest.fixture
def newsroom(sessions: SessionFactory) -> Newsroom:
    desk = Desk(sessions)
    desk.feed("Wire", tags=["us", "Elections"])
    desk.feed("Daily", tags=["eu"])
    desk.feed("Quiet")
    korea = desk.article("Wire", "North Korea joins the effort", fetched=day(1))
    desk.judge(korea, relevant=True, reason="close to the seeds", findings=[
        Found("country", "North Korea", "Officials said North Korea ran it.", closest="China", similarity=0.6),
    ])  # fmt: skip
    desk.deliver(korea, "slack")
    offtopic = desk.article("Daily", "Turnip prices soar", fetched=day(2))
    desk.judge(offtopic, relevant=False, reason="far from every seed")
    ohio = desk.article("Daily", "Ohio voters targeted", fetched=day(3), url="https://news.example.org/ohio")
    desk.judge(ohio, relevant=True, reason="close to the seeds", findings=[
        Found("target", "Ohio voters", "Accounts targeted Ohio voters."),
        Found("denial", "Iran", "<b>Iran</b> denied any part in it; iran's envoy agreed.", about="hacking"),
    ])  # fmt: skip
    with sessions.begin() as session:  # what processing records as the state a denial is about
        session.execute(update(Finding).where(Finding.kind == "denial").values(country="Iran"))
    repeat = desk.article("Wire", "Ohio voters targeted, again", fetched=day(4))
    desk.judge(repeat, relevant=True, reason="the same story", same_story_as=ohio, channels=("slack",))
    hostile = desk.article("Quiet", HOSTILE_TITLES[0] + HOSTILE_TITLES[1], fetched=day(5), url="javascript:alert(1)")
    desk.judge(hostile, relevant=True, reason="close", findings=[Found("country", "Iran", "Iran did it.")])
    desk.deliver(hostile, "slack", ok=False)
    quiet = desk.article("Wire", "Nothing new", fetched=day(6))
    desk.judge(quiet, relevant=True, reason="all known")
    return Newsroom(korea, offtopic, ohio, repeat, hostile, quiet)


async def ids(client: object, **params: str) -> list[int]:
    answer = await client.get("/api/alerts", params=params)  # type: ignore[attr-defined]
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


async def test_the_list_holds_the_articles_that_alerted_newest_first(
    sessions: SessionFactory, newsroom: Newsroom
) -> None:
    async with logged_in(sessions) as client:
        body = (await client.get("/api/alerts")).json()
    assert [item["id"] for item in body["items"]] == [newsroom.hostile, newsroom.ohio, newsroom.korea]
    assert body["next"] is None
    ohio = body["items"][1]
    assert ohio["what_is_new"] == "New target: Ohio voters (+1 more)"
    assert ohio["findings"] == 2 and ohio["feed"] == "Daily" and ohio["relevance"] == pytest.approx(0.7)
    korea = body["items"][2]
    assert korea["delivery"] == {"email": "pending", "slack": "delivered"}
    assert korea["what_is_new"] == "New country: North Korea"
    assert body["items"][0]["delivery"] == {"email": "pending", "slack": "dead"}


# Each filter, and the articles it lets through (the newsroom's names), newest first.
FILTERS = [
    ({"kind": "denial"}, ["ohio"]),
    ({"kind": "country"}, ["hostile", "korea"]),
    # The country a "country" finding names, or the state a finding is about; any case.
    ({"country": "iran"}, ["hostile", "ohio"]),
    ({"country": "North Korea"}, ["korea"]),
    ({"country": "Chad"}, []),
    ({"feed": "Daily"}, ["ohio"]),
    ({"feed": "Nobody"}, []),
    ({"tag": "elections"}, ["korea"]),
    ({"tag": "eu"}, ["ohio"]),
    ({"tag": "nope"}, []),
    ({"status": "dead"}, ["hostile"]),
    ({"status": "delivered"}, ["korea"]),
    ({"status": "pending"}, ["hostile", "ohio", "korea"]),
    ({"status": "filtered"}, []),
    ({"since": "2024-10-02", "until": "2024-10-03"}, ["ohio"]),
    ({"until": "2024-10-01"}, ["korea"]),
    ({"since": "2024-10-05"}, ["hostile"]),
    ({"kind": "country", "tag": "us"}, ["korea"]),
    # A GET form sends its empty fields: they mean "any".
    ({"kind": "", "country": " ", "since": "", "status": "", "feed": "", "tag": ""}, ["hostile", "ohio", "korea"]),
]


async def test_filters(sessions: SessionFactory, newsroom: Newsroom, subtests: pytest.Subtests) -> None:
    # Each filter a subtest: only reading, they share one newsroom (built once, not once per filter).
    async with logged_in(sessions) as client:
        for params, expected in FILTERS:
            with subtests.test(params=params):
                assert await ids(client, **params) == [getattr(newsroom, name) for name in expected]


async def test_the_cursor_walks_every_alert_exactly_once(sessions: SessionFactory, newsroom: Newsroom) -> None:
    desk = Desk(sessions)
    desk.known_feed("Wire")
    extra = []
    for n in range(7):
        article = desk.article("Wire", f"Story {n}", fetched=day(10 + n))
        desk.judge(article, relevant=True, reason="new", findings=[Found("target", f"Target {n}", f"Target {n} hit.")])
        extra.append(article)
    everything = sorted([*extra, newsroom.hostile, newsroom.ohio, newsroom.korea], reverse=True)
    async with logged_in(sessions, page_size=3) as client:
        pages = await walk(client, "/api/alerts", {})
        assert [len(page) for page in pages] == [3, 3, 3, 1]
        assert [i for page in pages for i in page] == everything
        pages = await walk(client, "/api/alerts", {"limit": "2", "kind": "target"})
        assert [len(page) for page in pages] == [2, 2, 2, 2]
        assert [i for page in pages for i in page] == sorted([*extra, newsroom.ohio], reverse=True)
        # Each article once however many channels carry it, with a filter on their rows too.
        pages = await walk(client, "/api/alerts", {"limit": "2", "status": "pending"})
        assert [i for page in pages for i in page] == everything
        pages = await walk(client, "/api/alerts", {"limit": "1", "status": "delivered", "until": "2024-10-12"})
        assert [i for page in pages for i in page] == [newsroom.korea]
        # A page exactly full at the end says so: no empty page after it.
        pages = await walk(client, "/api/alerts", {"limit": "5", "since": "2024-10-10"})
        assert [len(page) for page in pages] == [5, 2]
        # The page links to the next one with its filters kept.
        page = await client.get("/alerts", params={"kind": "target", "limit": "2"})
        assert f'href="/alerts?limit=2&amp;kind=target&amp;before={extra[-2]}"' in page.text


async def test_an_alert_shows_its_findings_story_and_delivery(sessions: SessionFactory, newsroom: Newsroom) -> None:
    async with logged_in(sessions) as client:
        body = (await client.get(f"/api/alerts/{newsroom.ohio}")).json()
        page = await client.get(f"/alerts/{newsroom.ohio}")
        korea = (await client.get(f"/api/alerts/{newsroom.korea}")).json()
    assert body["id"] == newsroom.ohio and body["feed"] == "Daily" and body["reason"] == "close to the seeds"
    assert body["url"] == "https://news.example.org/ohio"
    target, denial = body["findings"]
    assert (target["kind"], target["value"], target["evidence"]) == (
        "target",
        "Ohio voters",
        "Accounts targeted Ohio voters.",
    )
    assert (denial["kind"], denial["value"], denial["about"], denial["country"]) == (
        "denial",
        "Iran",
        "hacking",
        "Iran",
    )
    assert set(denial) >= {"id", "closest_value", "closest_fact_id", "similarity", "reason", "review"}
    assert [(s["id"], s["relation"], s["feed"]) for s in body["same_story"]] == [(newsroom.repeat, "repeat", "Wire")]
    # Its own rows, and the "also reported" line of its repeat (threaded under it on Slack).
    assert [(d["article_id"], d["channel"], d["kind"], d["status"]) for d in body["delivery"]] == [
        (newsroom.ohio, "email", "alert", "pending"),
        (newsroom.ohio, "slack", "alert", "pending"),
        (newsroom.repeat, "slack", "also_reported", "pending"),
    ]
    assert body["closest_allegation"]["sentence"] == "Russia hacked the vote."
    assert [(d["channel"], d["status"], d["attempts"]) for d in korea["delivery"]] == [
        ("email", "pending", 0), ("slack", "delivered", 1),
    ]  # fmt: skip
    assert korea["findings"][0]["closest_value"] == "China" and korea["findings"][0]["similarity"] == 0.6
    assert page.status_code == 200
    text = page.text
    # The value is marked in the evidence, every occurrence, and the sentence's own markup escaped.
    assert "“&lt;b&gt;<mark>Iran</mark>&lt;/b&gt; denied any part in it; <mark>iran</mark>&#39;s envoy agreed.”" in text
    assert "<mark>Ohio voters</mark>" in text
    assert "New denial: hacking by Iran" in text
    assert f'<a href="/articles/{newsroom.repeat}">' in text
    assert f'also reported: <a href="/articles/{newsroom.repeat}">article {newsroom.repeat}</a>' in text
    assert 'href="https://news.example.org/ohio" rel="noopener noreferrer nofollow"' in text


async def test_unknown_or_unalerted_ids_are_404(sessions: SessionFactory, newsroom: Newsroom) -> None:
    async with logged_in(sessions) as client:
        for article_id in (newsroom.offtopic, newsroom.repeat, newsroom.quiet, 999_999):
            assert (await client.get(f"/api/alerts/{article_id}")).status_code == 404
            assert (await client.get(f"/alerts/{article_id}")).status_code == 404


BAD_FILTERS = [
    "kind=rumour",
    "status=lost",
    "since=yesterday",
    "until=2024-02-30",
    "since=2024-10-05&until=2024-10-01",
    "since=0001-01-01",
    "before=abc",
    "before=0",
    "before=-5",
    "before=99999999999",
    "limit=0",
    "limit=501",
    "country=" + "x" * 201,
    "feed=a%00b",
    "tag=%1b%5b31m",
]


async def test_bad_filters_are_422_not_500(
    sessions: SessionFactory, newsroom: Newsroom, subtests: pytest.Subtests
) -> None:
    async with logged_in(sessions) as client:
        for query in BAD_FILTERS:
            with subtests.test(query=query):
                for path in ("/api/alerts", "/alerts"):
                    answer = await client.get(f"{path}?{query}")
                    assert answer.status_code == 422, (path, query, answer.text)
        assert (await client.get("/api/alerts/0")).status_code == 422
        assert (await client.get("/api/alerts/2147483648")).status_code == 422
        assert (await client.get("/api/alerts/x")).status_code == 422


async def test_markup_in_titles_is_text_on_pages_and_data_in_json(sessions: SessionFactory, newsroom: Newsroom) -> None:
    title = HOSTILE_TITLES[0] + HOSTILE_TITLES[1]
    async with logged_in(sessions) as client:
        listed = await client.get("/alerts")
        fragment = await client.get("/alerts", headers={"HX-Request": "true"})
        detail = await client.get(f"/alerts/{newsroom.hostile}")
        data = (await client.get("/api/alerts")).json()
        one = (await client.get(f"/api/alerts/{newsroom.hostile}")).json()
    for page in (listed, fragment, detail):
        assert page.status_code == 200
        assert str(escape(title)) in page.text  # as Jinja escapes it: &#34; for a quote
        for raw in ("<script>alert(1)", "<img src=x", "onerror=alert(1)>"):
            assert raw not in page.text
        # Its address is javascript: it is shown as no link at all.
        assert "javascript:" not in page.text
    assert data["items"][0]["title"] == title
    assert one["title"] == title and one["url"] == "javascript:alert(1)"


async def test_the_list_page_filters_without_javascript_and_htmx_swaps_the_rows(
    sessions: SessionFactory, newsroom: Newsroom
) -> None:
    async with logged_in(sessions) as client:
        page = await client.get("/alerts", params={"country": "Iran", "kind": "", "status": "dead"})
        fragment = await client.get("/alerts", params={"country": "Iran"}, headers={"HX-Request": "true"})
    assert page.status_code == 200
    assert '<form class="filters" method="get" action="/alerts"' in page.text
    assert 'name="country" value="Iran"' in page.text
    assert '<option value="dead" selected>' in page.text
    assert f'href="/alerts/{newsroom.hostile}"' in page.text
    assert f'href="/alerts/{newsroom.ohio}"' not in page.text
    assert "<html" not in fragment.text and "<table" in fragment.text
    assert f'href="/alerts/{newsroom.ohio}"' in fragment.text


async def test_without_credentials_the_list_is_closed(sessions: SessionFactory, newsroom: Newsroom) -> None:
    transport = httpx.ASGITransport(app=desk_app(sessions))
    async with httpx.AsyncClient(transport=transport, base_url="http://desk.test") as client:
        assert (await client.get("/api/alerts")).status_code == 401
        assert (await client.get(f"/api/alerts/{newsroom.korea}")).status_code == 401
        page = await client.get("/alerts?kind=country")
        assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")


def test_a_target_is_marked_in_its_sentence_without_the_owner_said_after_it() -> None:
    # The reader adds whose a target is after its words ("the vote (Mozambique)"); the sentence
    # has only the words, and a value whose brackets are in the sentence is marked whole.
    assert highlight("Russia swayed the vote.", "the vote (Mozambique)") == [
        ("Russia swayed ", False), ("the vote", True), (".", False),
    ]  # fmt: skip
    assert highlight("They hit En Marche (EM) twice.", "En Marche (EM)") == [
        ("They hit ", False), ("En Marche (EM)", True), (" twice.", False),
    ]  # fmt: skip
    assert highlight("Nothing here.", "the vote (Mozambique)") == [("Nothing here.", False)]
