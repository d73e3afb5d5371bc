"""The analysts' feedback: each action changes what the monitor knows, in one transaction with its
audit row, and can be undone; on the desk's forms (with CSRF) and on the JSON API."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from monitor.store import feedback
from monitor.store.db import SessionFactory
from monitor.store.feedback import Conflict, Invalid, NotFound
from monitor.store.knowledge import knowledge_version, load_knowledge
from monitor.store.models import Article, Feedback, Finding, KnownFact
from tests.feedback_fixtures import NOW, Rows, add_rows, api_token, desk_client, log_in


@pytest.fixture
def rows(sessions: SessionFactory) -> Rows:
    return add_rows(sessions)


def act(sessions: SessionFactory, action: feedback.Action, actor: str = "ana") -> int:
    with sessions.begin() as session:
        return action(session, actor, NOW)


def fact(sessions: SessionFactory, fact_id: int) -> KnownFact:
    with sessions() as session:
        row = session.get(KnownFact, fact_id)
        assert row is not None
        return row


def finding(sessions: SessionFactory, finding_id: int) -> Finding:
    with sessions() as session:
        row = session.get(Finding, finding_id)
        assert row is not None
        return row


def audit(sessions: SessionFactory, feedback_id: int) -> Feedback:
    with sessions() as session:
        row = session.get(Feedback, feedback_id)
        assert row is not None
        return row


def known_values(sessions: SessionFactory) -> set[str]:
    with sessions() as session:
        return {f.value for f in load_knowledge(session, story_days=7, now=NOW).facts}


# ----- the repository ---------------------------------------------------------------------------


def test_wrong_retires_the_fact_the_finding_taught_and_undo_brings_it_back(
    sessions: SessionFactory, rows: Rows
) -> None:
    with sessions() as session:
        version = knowledge_version(session)
    done = act(sessions, lambda s, who, now: feedback.wrong(s, rows.finding, who, now, "not a target"))

    assert "campaigns" not in known_values(sessions)
    assert fact(sessions, rows.wrong_fact).retired_by == "ana"
    assert finding(sessions, rows.finding).review == "wrong"
    row = audit(sessions, done)
    assert (row.actor, row.action, row.finding_id, row.article_id, row.fact_id, row.note) == (
        "ana",
        "wrong",
        rows.finding,
        rows.article,
        rows.wrong_fact,
        "not a target",
    )
    with sessions() as session:
        assert knowledge_version(session) != version  # a processor reloads what it knows

    undone = act(sessions, lambda s, who, now: feedback.undo(s, done, who, now), actor="bo")
    assert "campaigns" in known_values(sessions)
    assert fact(sessions, rows.wrong_fact).retired_at is None
    assert finding(sessions, rows.finding).review is None
    assert (audit(sessions, done).undone_by, audit(sessions, undone).undoes_id) == ("bo", done)
    with pytest.raises(Conflict, match="already undone"):
        act(sessions, lambda s, who, now: feedback.undo(s, done, who, now))
    with pytest.raises(Conflict, match="cannot be undone"):
        act(sessions, lambda s, who, now: feedback.undo(s, undone, who, now))


def test_not_new_links_the_finding_to_the_fact_it_repeats_and_merges_its_own(
    sessions: SessionFactory, rows: Rows
) -> None:
    done = act(sessions, lambda s, who, now: feedback.not_new(s, rows.finding, who, now))
    merged = fact(sessions, rows.wrong_fact)
    assert (merged.merged_into_id, merged.retired_at is not None) == (rows.seed_target, True)
    assert (finding(sessions, rows.finding).review, finding(sessions, rows.finding).review_fact_id) == (
        "not_new",
        rows.seed_target,
    )
    act(sessions, lambda s, who, now: feedback.undo(s, done, who, now))
    assert fact(sessions, rows.wrong_fact).merged_into_id is None
    assert finding(sessions, rows.finding).review_fact_id is None
    # Another kind of fact cannot be what a target repeats.
    with pytest.raises(Conflict, match="is a country"):
        act(sessions, lambda s, who, now: feedback.not_new(s, rows.finding, who, now, rows.seed_country))


def test_a_reviewed_finding_must_be_undone_before_another_review(sessions: SessionFactory, rows: Rows) -> None:
    act(sessions, lambda s, who, now: feedback.confirm(s, rows.finding, who, now))
    with pytest.raises(Conflict, match="already marked confirmed"):
        act(sessions, lambda s, who, now: feedback.wrong(s, rows.finding, who, now))
    assert fact(sessions, rows.wrong_fact).retired_at is None  # the refused action changed nothing
    with pytest.raises(NotFound):
        act(sessions, lambda s, who, now: feedback.confirm(s, 999_999, who, now))
    with pytest.raises(NotFound):
        act(sessions, lambda s, who, now: feedback.undo(s, 999_999, who, now))


def test_missed_adds_an_analysts_fact_or_brings_a_retired_one_back(sessions: SessionFactory, rows: Rows) -> None:
    added = act(sessions, lambda s, who, now: feedback.missed(s, rows.later, who, now, kind="country", value="Cuba"))
    with sessions() as session:
        cuba = session.scalars(select(KnownFact).where(KnownFact.value == "Cuba")).one()
        assert (cuba.source_kind, cuba.source_ref, cuba.article_id) == ("analyst", "analyst:ana", rows.later)
        assert session.get(Article, rows.later).review == "missed"
    assert "Cuba" in known_values(sessions)
    with pytest.raises(Conflict, match="already known"):
        act(sessions, lambda s, who, now: feedback.missed(s, rows.later, who, now, kind="country", value="Cuba"))
    with pytest.raises(Invalid):
        act(sessions, lambda s, who, now: feedback.missed(s, rows.later, who, now, kind="denial", value="Cuba"))
    # A retired key comes back, never twice in the table.
    retired = act(sessions, lambda s, who, now: feedback.retire(s, rows.country_fact, who, now))
    back = act(
        sessions, lambda s, who, now: feedback.missed(s, rows.later, who, now, kind="country", value="Venezuela")
    )
    assert fact(sessions, rows.country_fact).retired_at is None
    # The retire cannot be undone from under the later "missed" that changed the same fact.
    with pytest.raises(Conflict, match=f"feedback {back}"):
        act(sessions, lambda s, who, now: feedback.undo(s, retired, who, now))
    act(sessions, lambda s, who, now: feedback.undo(s, back, who, now))
    assert fact(sessions, rows.country_fact).retired_at is not None
    act(sessions, lambda s, who, now: feedback.undo(s, added, who, now))
    assert "Cuba" not in known_values(sessions)
    with sessions() as session:
        assert session.get(Article, rows.later).review is None


def test_not_relevant_retires_what_the_article_taught(sessions: SessionFactory, rows: Rows) -> None:
    done = act(sessions, lambda s, who, now: feedback.not_relevant(s, rows.article, who, now))
    assert not {"campaigns", "Venezuela"} & known_values(sessions)
    act(sessions, lambda s, who, now: feedback.undo(s, done, who, now))
    assert {"campaigns", "Venezuela"} <= known_values(sessions)


def test_merge_refuses_what_names_no_same_thing(sessions: SessionFactory, rows: Rows) -> None:
    for into, message in ((rows.wrong_fact, "into itself"), (rows.seed_country, "only facts of one kind")):
        with pytest.raises(Conflict, match=message):
            act(sessions, lambda s, who, now, into=into: feedback.merge(s, rows.wrong_fact, into, who, now))
    done = act(sessions, lambda s, who, now: feedback.merge(s, rows.wrong_fact, rows.seed_target, who, now))
    assert fact(sessions, rows.wrong_fact).merged_into_id == rows.seed_target
    with pytest.raises(Conflict, match="retired"):
        act(sessions, lambda s, who, now: feedback.merge(s, rows.seed_target, rows.wrong_fact, who, now))
    act(sessions, lambda s, who, now: feedback.undo(s, done, who, now))
    assert fact(sessions, rows.wrong_fact).merged_into_id is None


# ----- the desk: forms and API ------------------------------------------------------------------


def test_form_posts_need_the_csrf_token_and_return_to_the_page(sessions: SessionFactory, rows: Rows) -> None:
    with desk_client(sessions) as client:
        token = log_in(client)
        back = f"/alerts/{rows.article}?x=1"
        forged = client.post(f"/findings/{rows.finding}/wrong", data={"csrf_token": "forged", "back": back})
        assert forged.status_code == 403
        assert fact(sessions, rows.wrong_fact).retired_at is None

        answer = client.post(f"/findings/{rows.finding}/wrong", data={"csrf_token": token, "back": back})
        assert (answer.status_code, answer.headers["location"]) == (303, back)
        assert fact(sessions, rows.wrong_fact).retired_by == "ana"

        again = client.post(f"/findings/{rows.finding}/confirm", data={"csrf_token": token, "back": back})
        assert again.status_code == 409 and "undo that first" in again.text

        # The Undo button undoes the finding's last review; a foreign "back" is not followed.
        undo = client.post(
            f"/findings/{rows.finding}/undo", data={"csrf_token": token, "back": "https://evil.example/"}
        )
        assert (undo.status_code, undo.headers["location"]) == (303, "/alerts")
        assert fact(sessions, rows.wrong_fact).retired_at is None

        missed = client.post(
            f"/articles/{rows.later}/missed",
            data={"csrf_token": token, "back": "/articles", "kind": "target", "value": "the county election office"},
        )
        assert missed.status_code == 303
        assert "the county election office" in known_values(sessions)
        assert client.post("/facts/999999/retire", data={"csrf_token": token}).status_code == 404
        merge = client.post(f"/facts/{rows.wrong_fact}/merge", data={"csrf_token": token, "into": rows.seed_target})
        assert (merge.status_code, merge.headers["location"]) == (303, "/knowledge")
        page = client.get("/feedback")
        assert page.status_code == 200 and "merge" in page.text and "undone by ana" in page.text


def test_the_api_reviews_undoes_and_lists(sessions: SessionFactory, rows: Rows) -> None:
    headers = api_token(sessions)
    with desk_client(sessions) as client:
        wrong = client.post(f"/api/findings/{rows.finding}/review", json={"action": "wrong"}, headers=headers)
        assert wrong.status_code == 200, wrong.text
        body = wrong.json()
        assert (body["actor"], body["action"], body["fact_id"]) == ("token:script", "wrong", rows.wrong_fact)
        assert (
            client.post(f"/api/findings/{rows.finding}/review", json={"action": "confirm"}, headers=headers).status_code
            == 409
        )
        assert (
            client.post("/api/findings/999999/review", json={"action": "confirm"}, headers=headers).status_code == 404
        )
        assert (
            client.post(f"/api/findings/{rows.finding}/review", json={"action": "bogus"}, headers=headers).status_code
            == 422
        )
        missed = client.post(
            f"/api/articles/{rows.later}/review",
            json={"action": "missed", "kind": "denial", "value": "Cuba"},
            headers=headers,
        )
        assert missed.status_code == 422  # a denial needs what it denies
        not_relevant = client.post(
            f"/api/articles/{rows.article}/review", json={"action": "not_relevant"}, headers=headers
        )
        assert not_relevant.status_code == 200
        assert fact(sessions, rows.country_fact).retired_at is not None
        merge = client.post(f"/api/facts/{rows.seed_target}/merge", json={"into": rows.seed_country}, headers=headers)
        assert merge.status_code == 409
        retire = client.post(f"/api/facts/{rows.seed_country}/retire", headers=headers)
        assert retire.status_code == 200

        undo = client.post(f"/api/feedback/{body['id']}/undo", json={"note": "my mistake"}, headers=headers)
        assert undo.status_code == 200 and undo.json()["undoes_id"] == body["id"]
        assert fact(sessions, rows.wrong_fact).retired_at is None
        assert client.post(f"/api/feedback/{body['id']}/undo", headers=headers).status_code == 409

        listed = client.get("/api/feedback", params={"limit": 2}, headers=headers).json()
        assert [item["action"] for item in listed["items"]] == ["undo", "retire"]
        older = client.get("/api/feedback", params={"before": listed["next"]}, headers=headers).json()
        assert [item["action"] for item in older["items"]] == ["not_relevant", "wrong"] and older["next"] is None
        on_finding = client.get("/api/feedback", params={"finding_id": rows.finding}, headers=headers).json()
        assert {item["action"] for item in on_finding["items"]} == {"wrong", "undo"}
        assert client.get("/api/feedback").status_code == 401


def test_the_action_partials_carry_the_csrf_token_and_the_finding() -> None:
    from types import SimpleNamespace

    from monitor.desk.context import make_templates

    env = make_templates().env
    open_finding = SimpleNamespace(id=7, review=None, closest_fact_id=3)
    html = env.get_template("_finding_actions.html").render(finding=open_finding, csrf_token="tok")
    assert html.count('name="csrf_token" value="tok"') == 3
    assert 'action="/findings/7/not-new"' in html and 'value="3"' in html
    reviewed = env.get_template("_finding_actions.html").render(
        finding=SimpleNamespace(id=7, review="wrong", closest_fact_id=None), csrf_token="tok"
    )
    assert 'action="/findings/7/undo"' in reviewed and "Confirm" not in reviewed
    article = env.get_template("_article_actions.html").render(
        article=SimpleNamespace(id=5, review=None), csrf_token="tok"
    )
    assert 'action="/articles/5/missed"' in article and 'action="/articles/5/not-relevant"' in article


def test_a_finding_names_the_state_it_concerns() -> None:
    from monitor.analysis.facts import TargetIdentity
    from monitor.analysis.mentions import Allegation
    from monitor.process.findings import finding_country

    allegation = Allegation("Russia", "Moldova", "2024", "?", "meddling in the vote").key()
    assert finding_country("country", "Iran", "") == "Iran"
    assert finding_country("denial", "China", allegation) == "China"  # a state denies: the state
    assert finding_country("denial", "a Kremlin spokesman", allegation) == "Russia"  # else the accused
    assert finding_country("denial", "the party", "") is None
    assert finding_country("target", "Moldova's election", TargetIdentity("Moldova", "election").key()) == "Moldova"
    assert finding_country("target", "campaigns", "") is None


def test_hostile_input_is_refused_or_kept_harmless(sessions: SessionFactory, rows: Rows) -> None:
    """What a client may send that the database cannot keep (a NUL, a lone surrogate, a number no
    integer column holds) never reaches it as such: no 500."""
    headers = api_token(sessions)
    with desk_client(sessions) as client:
        token = log_in(client)
        json_headers = {**headers, "Content-Type": "application/json"}
        url = f"/api/facts/{rows.seed_country}/retire"
        surrogate = client.post(url, content=b'{"note": "a \\ud800"}', headers=json_headers)
        assert surrogate.status_code == 422  # refused by the JSON reader, never stored
        note = client.post(url, content=b'{"note": "a\\u0000b"}', headers=json_headers)
        assert note.status_code == 200 and note.json()["note"] == "ab"
        form = client.post(f"/findings/{rows.finding}/not-new", data={"csrf_token": token, "fact_id": "²"})
        assert form.status_code == 303  # an unreadable fact id is no fact id: the closest one is used
        assert finding(sessions, rows.finding).review_fact_id == rows.seed_target
        assert (
            client.get("/api/facts", params={"q": "x\x00", "after": "9" * 20 + ".1"}, headers=headers).status_code
            == 200
        )
        assert client.get("/api/facts", params={"after": "1." + "9" * 12}, headers=headers).status_code == 200
        huge = client.post(f"/api/facts/{2**40}/retire", headers=headers)
        assert huge.status_code == 422


def test_a_story_remembers_only_the_facts_still_in_use(sessions: SessionFactory, rows: Rows) -> None:
    import numpy as np

    with sessions.begin() as session:
        article = session.get(Article, rows.article)
        assert article is not None
        article.embedding, article.fetched_at = np.ones(4, dtype=np.float32).tobytes(), NOW
    act(sessions, lambda s, who, now: feedback.wrong(s, rows.finding, who, now))
    with sessions() as session:
        stories = load_knowledge(session, story_days=1, now=NOW).stories
    assert [(story.ref, [f.value for f in story.facts]) for story in stories] == [(str(rows.article), ["Venezuela"])]


def test_an_analysts_fact_another_review_points_at_is_not_undone_from_under_it(
    sessions: SessionFactory, rows: Rows
) -> None:
    named = act(sessions, lambda s, who, now: feedback.missed(s, rows.later, who, now, kind="target", value="offices"))
    with sessions() as session:
        offices = session.scalars(select(KnownFact.id).where(KnownFact.value == "offices")).one()
    linked = act(sessions, lambda s, who, now: feedback.not_new(s, rows.finding, who, now, offices))
    with pytest.raises(Conflict, match=f"feedback {linked}"):
        act(sessions, lambda s, who, now: feedback.undo(s, named, who, now))
    act(sessions, lambda s, who, now: feedback.undo(s, linked, who, now))
    act(sessions, lambda s, who, now: feedback.undo(s, named, who, now))
    assert fact(sessions, offices).retired_at is not None
