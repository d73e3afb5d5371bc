"""The knowledge page and /api/facts: every fact by kind, with its source and what it absorbed,
searchable and filterable, paged by key; untrusted evidence escaped."""

from __future__ import annotations

from markupsafe import escape
from sqlalchemy import event, inspect, select

from alembic import command
from monitor.store.db import (
    SessionFactory,
    alembic_config,
    current_revision,
    make_engine,
    make_session_factory,
    upgrade,
)
from monitor.store.facts_view import FactFilter, kind_counts, list_facts
from monitor.store.models import Finding, KnownFact
from tests.feedback_fixtures import add_rows, api_token, desk_client, log_in

SCRIPT = '<script>alert("x")</script> campaigns were hit'


def test_the_page_shows_each_fact_with_its_source_and_what_it_absorbed(sessions: SessionFactory) -> None:
    rows = add_rows(sessions, evidence=SCRIPT)
    with desk_client(sessions) as client:
        token = log_in(client)
        page = client.get("/knowledge")
        assert page.status_code == 200
        text = page.text
        # Countries first, then targets; the seed file and the article named as sources.
        assert text.index("<h2>Countries</h2>") < text.index("<h2>Targets</h2>")
        assert "seed-russia.txt" in text and f'href="/articles/{rows.article}"' in text
        row = text[text.index(f'id="fact-{rows.wrong_fact}"') :]
        assert '<td class="absorbed">2</td>' in row[: row.index("</tr>")]
        # The evidence came from a stranger's article: shown, never run.
        assert "<script>" not in text and str(escape(SCRIPT)) in text

        found = client.get("/knowledge", params={"q": "CAMPAIGN hit"}).text
        assert f'id="fact-{rows.wrong_fact}"' in found and f'id="fact-{rows.seed_target}"' not in found
        seeds = client.get("/knowledge", params={"source": "seed", "kind": "target"}).text
        assert f'id="fact-{rows.seed_target}"' in seeds and f'id="fact-{rows.seed_country}"' not in seeds
        assert client.get("/knowledge", params={"q": "50%_"}).text.count('id="fact-') == 0

        retired = client.post(f"/facts/{rows.wrong_fact}/retire", data={"csrf_token": token, "back": "/knowledge?q=x"})
        assert (retired.status_code, retired.headers["location"]) == (303, "/knowledge?q=x")
        assert f'id="fact-{rows.wrong_fact}"' not in client.get("/knowledge").text
        gone = client.get("/knowledge", params={"state": "retired"}).text
        assert f'id="fact-{rows.wrong_fact}"' in gone and "retired by ana" in gone


def test_the_api_pages_through_every_fact_by_key(sessions: SessionFactory) -> None:
    rows = add_rows(sessions)
    headers = api_token(sessions)
    with desk_client(sessions) as client:
        seen: list[dict[str, object]] = []
        cursor = None
        for _ in range(10):
            params: dict[str, str | int] = {"limit": 1}
            if cursor:
                params["after"] = cursor
            answer = client.get("/api/facts", params=params, headers=headers)
            assert answer.status_code == 200, answer.text
            seen += answer.json()["items"]
            cursor = answer.json()["next"]
            if cursor is None:
                break
        assert [(f["kind"], f["id"]) for f in seen] == [
            ("country", rows.seed_country),
            ("country", rows.country_fact),
            ("target", rows.seed_target),
            ("target", rows.wrong_fact),
        ]
        absorbed = {f["id"]: f["absorbed"] for f in seen}
        assert absorbed == {rows.seed_country: 0, rows.country_fact: 0, rows.seed_target: 0, rows.wrong_fact: 2}

        one = client.get(f"/api/facts/{rows.wrong_fact}", headers=headers).json()
        assert one["fact"]["article_id"] == rows.article and len(one["matches"]) == 2
        assert one["matches"][0]["article_id"] == rows.later
        assert client.get("/api/facts/999999", headers=headers).status_code == 404
        assert client.get("/api/facts", params={"kind": "planet"}, headers=headers).status_code == 422
        assert client.get("/api/facts", params={"after": "junk"}, headers=headers).status_code == 200
        analysts = client.get("/api/facts", params={"source": "analyst"}, headers=headers).json()
        assert analysts == {"items": [], "next": None}


def test_a_seed_rebuild_keeps_the_facts_analysts_spoke_of(sessions: SessionFactory) -> None:
    """Rebuilding the seed knowledge keeps a re-derived seed fact's row (its id, its matches, an
    analyst's retire) and deletes one no longer derived unless the audit trail names it."""
    from monitor.analysis.facts import Fact
    from monitor.store import feedback
    from monitor.store.knowledge import store_seed_knowledge
    from tests.feedback_fixtures import NOW

    rows = add_rows(sessions)
    with sessions.begin() as session:
        feedback.retire(session, rows.seed_country, "ana", NOW)
    russia = Fact("country", "Russia", "", "Russia did it.", "seed", "seed-russia.txt")
    with sessions.begin() as session:
        assert store_seed_knowledge(session, [russia]) == 1
    with sessions() as session:
        seeds = {f.value: f for f in session.scalars(select(KnownFact).where(KnownFact.source_kind == "seed"))}
        assert set(seeds) == {"Russia"}
        assert seeds["Russia"].id == rows.seed_country and seeds["Russia"].retired_by == "ana"
        assert seeds["Russia"].evidence == "Russia did it."
        assert session.get(Finding, rows.finding).closest_fact_id is None  # its seed target is gone


def test_words_are_found_in_any_case_and_any_of_the_three_texts(sessions: SessionFactory) -> None:
    """Each word in the value, the about or the evidence, whatever its case (both databases search
    differently: SQLite's LIKE per column, PostgreSQL one lowered text with a trigram index)."""
    facts = {
        "grid": KnownFact(
            kind="target", value="Power GRID", evidence="Zürich outage", source_kind="seed", source_ref="s"
        ),
        "lock": KnownFact(kind="target", value="grid", about="", evidence="Lock", source_kind="seed", source_ref="s"),
        "denial": KnownFact(
            kind="denial",
            value="Kremlin",
            about="GridWatch hack",
            evidence="denied it",
            source_kind="seed",
            source_ref="s",
        ),
    }
    with sessions.begin() as session:
        session.add_all(facts.values())
        session.flush()
        ids = {name: fact.id for name, fact in facts.items()}

    def found(words: str) -> set[str]:
        with sessions() as session:
            views, _ = list_facts(session, FactFilter(words=words), limit=50)
            counts = kind_counts(session, FactFilter(words=words))
        assert sum(counts.values()) == len(views)
        return {name for name, fact_id in ids.items() if fact_id in {view.id for view in views}}

    assert found("grid") == {"grid", "lock", "denial"}
    assert found("GrId power") == {"grid"}
    assert found("zürich OUTAGE") == {"grid"}
    assert found("gridwatch DENIED") == {"denial"}
    assert found("grid lock") == {"lock"}
    # A word never spans two of the texts.
    assert found("gridlock") == set() and found("kremlingrid") == set()
    assert found("50%") == set() and found("g_id") == set()


def test_the_fact_index_migration_goes_on_where_pg_trgm_cannot_be_created(empty_postgres: str) -> None:
    """Migration 0006 on a server that refuses the extension: no index, the search works the same."""
    engine = make_engine(empty_postgres)

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def refuse(_conn: object, _cursor: object, statement: str, params: object, _context: object, _many: bool) -> tuple:
        # What a server without pg_trgm (or without the right to create it) answers.
        return ("CREATE EXTENSION no_such_extension" if "pg_trgm" in statement else statement), params

    try:
        command.downgrade(alembic_config(engine), "0005")
        upgrade(engine)
        with engine.connect() as connection:
            assert current_revision(engine) == "0006"
            assert "ix_known_facts_words_trgm" not in {
                index["name"] for index in inspect(connection).get_indexes("known_facts")
            }
        event.remove(engine, "before_cursor_execute", refuse)
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            session.add(KnownFact(kind="target", value="Power GRID", evidence="x", source_kind="seed", source_ref="s"))
        with sessions() as session:
            assert [view.value for view in list_facts(session, FactFilter(words="grid"))[0]] == ["Power GRID"]
    finally:
        if event.contains(engine, "before_cursor_execute", refuse):
            event.remove(engine, "before_cursor_execute", refuse)
        command.downgrade(alembic_config(engine), "0005")
        upgrade(engine)  # the next test finds the schema at head, with its index
        engine.dispose()
