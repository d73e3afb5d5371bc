"""Word search over articles (monitor/store/search.py) on SQLite (FTS5) and PostgreSQL (GIN):
every word required, newest first, keyset pages, hostile words harmless, the index kept current."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from alembic import command
from monitor.store.db import SessionFactory, alembic_config, make_engine, make_session_factory, upgrade
from monitor.store.models import Article, Feed
from monitor.store.search import search_article_ids


def _add(sessions: SessionFactory, *articles: tuple[str, str]) -> list[int]:
    """Store (title, text) articles in order; their ids."""
    with sessions.begin() as session:
        feed = session.query(Feed).first()
        if feed is None:
            feed = Feed(name="Wire", url="http://wire.example/rss")
            session.add(feed)
            session.flush()
        rows = [
            Article(feed_id=feed.id, entry_key=f"k{index}-{title}", title=title, text=body)
            for index, (title, body) in enumerate(articles)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def _search(sessions: SessionFactory, words: str, limit: int = 50, before_id: int | None = None) -> list[int]:
    with sessions() as session:
        return search_article_ids(session, words, limit=limit, before_id=before_id)


def test_words_are_found_in_the_title_and_in_the_text(sessions: SessionFactory) -> None:
    in_title, in_text, neither = _add(
        sessions,
        ("Hackers target ministry", "The report names nobody."),
        ("Weather", "A campaign of phishing against the ministry was reported."),
        ("Markets", "Shares rose."),
    )
    assert _search(sessions, "ministry") == [in_text, in_title]
    assert _search(sessions, "HACKERS") == [in_title]
    assert _search(sessions, "phishing") == [in_text]
    assert neither not in _search(sessions, "ministry")


def test_every_word_is_required(sessions: SessionFactory) -> None:
    both, only_one, _other = _add(
        sessions,
        ("Election interference", "Officials blamed Russia for the interference."),
        ("Election day", "Voters queued in the rain."),
        ("Russia", "Grain exports grew."),
    )
    assert _search(sessions, "election russia") == [both]
    assert _search(sessions, "election") == [only_one, both]
    assert _search(sessions, "election nowhere") == []


def test_accents_and_case_are_treated_alike_on_both_databases(sessions: SessionFactory) -> None:
    zurich, plain, tokyo = _add(
        sessions,
        ("Zürich talks", "Straße closed; e-mail leak."),
        ("Zurich talks", "Nothing else."),
        ("東京 report", "Ελλάδα denies it."),
    )
    assert _search(sessions, "ZÜRICH") == [zurich]
    assert _search(sessions, "zurich") == [plain]
    assert _search(sessions, "e-mail") == [zurich]
    assert _search(sessions, "東京") == [tokyo]
    assert _search(sessions, "ελλάδα DENIES") == [tokyo]


def test_pages_follow_each_other_newest_first(sessions: SessionFactory) -> None:
    ids = _add(sessions, *[(f"Report {n}", "ransomware struck again") for n in range(7)])
    _add(sessions, ("Unrelated", "nothing here"))
    first = _search(sessions, "ransomware", limit=3)
    second = _search(sessions, "ransomware", limit=3, before_id=first[-1])
    third = _search(sessions, "ransomware", limit=3, before_id=second[-1])
    assert first + second + third == sorted(ids, reverse=True)
    assert len(third) == 1
    assert _search(sessions, "ransomware", limit=3, before_id=min(ids)) == []
    assert _search(sessions, "ransomware", limit=0) == []


def test_other_conditions_narrow_the_hits_and_their_pages(sessions: SessionFactory) -> None:
    ids = _add(sessions, *[(f"Report {n}", "ransomware struck again") for n in range(9)])
    with sessions.begin() as session:
        session.execute(update(Article).where(Article.id.in_(ids[::3])).values(status="failed"))
    failed = Article.status == "failed"
    wanted = sorted(ids[::3], reverse=True)
    with sessions() as session:
        assert search_article_ids(session, "ransomware", limit=50, where=[failed]) == wanted
        first = search_article_ids(session, "ransomware", limit=2, where=[failed])
        rest = search_article_ids(session, "ransomware", limit=2, before_id=first[-1], where=[failed])
        assert first + rest == wanted
        assert search_article_ids(session, "ransomware", limit=50, where=[failed, Article.id < min(ids)]) == []
        assert search_article_ids(session, "nowhere", limit=50, where=[failed]) == []


HOSTILE = [
    "",
    "   ",
    '"',
    '""',
    "*",
    "* *",
    "NEAR(",
    "NEAR(a b)",
    "a OR b",
    "OR",
    "AND",
    "NOT",
    "title:",
    "title:ransomware",
    "text:*",
    "{title text}:a",
    "^a",
    "a*",
    "'; DROP TABLE articles; --",
    "\x00",
    "ransomware\x00",
    "-",
    "!!! ??? ...",
    "a" * 5000,
    "(",
    ")",
    "&|!:",
    "<->",
    "\\",
    "🙂",
    "\u200b",
]


def test_hostile_words_never_error_and_never_match_everything(
    sessions: SessionFactory, subtests: pytest.Subtests
) -> None:
    ids = _add(
        sessions,
        ("Ransomware title", "a b text"),
        ("Other", "c d"),
        ("Third", "e f"),
    )
    # Each search a subtest: only reading, they share the three articles.
    for words in HOSTILE:
        with subtests.test(words=words):
            found = _search(sessions, words)
            assert set(found) <= set(ids)
            assert len(found) < len(ids), f"{words!r} matched every article"


def test_operators_are_words_not_syntax(sessions: SessionFactory) -> None:
    """OR does not widen, a column filter is no filter, a star is no prefix: each is a word."""
    ransom, near, both = _add(
        sessions,
        ("Ransomware", "payment demanded"),
        ("Near miss", "title of the story"),
        ("Phishing or ransomware", "near the title"),
    )
    assert _search(sessions, "ransomware OR phishing") == [both]
    assert _search(sessions, "title:ransomware") == []  # two adjacent words, not a column filter
    assert _search(sessions, "NEAR( title") == [both, near]
    assert _search(sessions, "ransom*") == []
    assert _search(sessions, '"ransomware"') == [both, ransom]


def test_the_index_follows_inserts_updates_and_deletes(sessions: SessionFactory) -> None:
    (first,) = _add(sessions, ("Quiet day", "nothing happened"))
    assert _search(sessions, "sabotage") == []
    (second,) = _add(sessions, ("Sabotage", "pipeline sabotage suspected"))
    assert _search(sessions, "sabotage") == [second]
    with sessions.begin() as session:
        session.execute(update(Article).where(Article.id == first).values(text="sabotage after all"))
        session.execute(update(Article).where(Article.id == second).values(title="Leak", text="a leak"))
    assert _search(sessions, "sabotage") == [first]
    assert _search(sessions, "leak") == [second]
    assert _search(sessions, "pipeline") == []
    with sessions.begin() as session:  # a verdict's write leaves the words as they were
        session.execute(update(Article).where(Article.id == first).values(status="processed", relevant=False))
    assert _search(sessions, "sabotage") == [first]
    with sessions.begin() as session:
        session.execute(delete(Article).where(Article.id == first))
    assert _search(sessions, "sabotage") == []
    assert _search(sessions, "leak") == [second]


def test_the_migration_indexes_articles_stored_before_it(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        upgrade(engine, "0004")
        sessions = make_session_factory(engine)
        (older,) = _add(sessions, ("Espionage charges", "filed before the search existed"))
        upgrade(engine)
        (newer,) = _add(sessions, ("More espionage", "filed after"))
        assert _search(sessions, "espionage") == [newer, older]
        assert _search(sessions, "existed") == [older]
    finally:
        engine.dispose()


def test_the_migration_indexes_earlier_rows_on_postgresql(empty_postgres: str) -> None:
    """PostgreSQL's index covers what is already in the table: down to 0004, a row, up again."""
    engine = make_engine(empty_postgres)
    try:
        command.downgrade(alembic_config(engine), "0004")
        sessions = make_session_factory(engine)
        (older,) = _add(sessions, ("Espionage charges", "filed before the search existed"))
        upgrade(engine)
        assert _search(sessions, "espionage existed") == [older]
    finally:
        upgrade(engine)  # the next test finds the schema at head, whatever happened here
        engine.dispose()


def _all_pages(sessions: SessionFactory, words: str, limit: int) -> list[int]:
    found: list[int] = []
    while True:
        page = _search(sessions, words, limit=limit, before_id=found[-1] if found else None)
        found += page
        if len(page) < limit:
            return found


def test_search_agrees_with_the_text_itself_over_a_filled_database(sessions: SessionFactory) -> None:
    """bench/desk.py's filler at a small volume: every page of a search, put together, is exactly
    the articles whose words include the query's, newest first."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from desk_fill import Volume, fill

    filled = fill(sessions, Volume(articles=400, alerts=20, facts=100, matches=100, feedback=5), keep_texts=True)
    tokens = {article_id: set(re.findall(r"[^\W_]+", text.lower())) for article_id, text in filled.texts.items()}

    def truth(*words: str) -> list[int]:
        return sorted((i for i, have in tokens.items() if all(w in have for w in words)), reverse=True)

    for words in [(filled.common_word,), (filled.rare_word,), (filled.common_word, filled.rare_word), ("russia",)]:
        expected = truth(*words)
        assert 0 < len(expected) < len(tokens) or words == (filled.common_word,), words
        assert _all_pages(sessions, " ".join(words), limit=7) == expected, words
