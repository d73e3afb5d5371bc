"""Word search over articles' titles and texts, newest first, on SQLite and PostgreSQL.

SQLite: the FTS5 table `articles_fts`, external content over articles(title, text), kept current
by triggers (migration 0005). PostgreSQL: the stored generated column `articles.search_vector`
(the tsvector of title and text) with a GIN index. Not a GIN index over the to_tsvector expression
alone: for a word in 5 to 100% of the articles the planner walks the primary key newest first and
tests each row, and with the expression each test tokenizes 1,500 characters again; measured over
100,000 articles (bench/desk.py), 450 ms for a word in 6% of them and 11 s for one in 98%, against
12 ms and 1 ms with the stored vector.

Each backend tokenizes the analyst's words as it tokenized the text (FTS5's unicode61 without
diacritics removal, PostgreSQL's 'simple' configuration: both lowercase and keep accents), so
"e-mail" or "3.14" find what they say; a word that the text's tokenizer cuts in several ("title:x")
is a phrase of them. Every word is required. The words come from strangers' hands: on SQLite each
becomes an FTS5 string, never query syntax (no OR, NEAR, column filters or prefix stars); on
PostgreSQL phraseto_tsquery knows no operators at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import ColumnElement, column, exists, select, table, text
from sqlalchemy.orm import Session

from monitor.store.models import Article

FTS_TABLE = "articles_fts"
# PostgreSQL's generated column and its GIN index (migration 0005); the models leave them out, so
# that the ORM never reads nor writes the vector.
PG_VECTOR_COLUMN = "search_vector"
PG_VECTOR_INDEX = "ix_articles_search_vector"
# No word in a news text is this long; PostgreSQL ignores words over 2047 characters, so a longer
# one would silently drop out of the query and widen it. Such a query matches nothing instead.
MAX_WORD_CHARS = 200

# A chunk with no letter or digit yields no token on either backend (and FTS5 would reject some).
_HAS_TOKEN = re.compile(r"[^\W_]")
# NUL is refused by PostgreSQL's text type; other control characters are never part of a word.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def query_words(words: str) -> list[str]:
    """The whitespace-separated words of WORDS that can match something, in order, once each."""
    kept: dict[str, str] = {}
    for chunk in _CONTROL.sub(" ", words).split():
        if _HAS_TOKEN.search(chunk):
            kept.setdefault(chunk.lower(), chunk)
    return list(kept.values())


def fts5_query(words: list[str]) -> str:
    """An FTS5 MATCH expression requiring every word: each one an FTS5 string ("..." with quotes
    doubled), which FTS5 tokenizes like the text and never reads as an operator."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def search_article_ids(
    session: Session,
    words: str,
    *,
    limit: int,
    before_id: int | None = None,
    where: Sequence[ColumnElement[bool]] = (),
) -> list[int]:
    """Ids of the articles whose title or text contain every word of WORDS, highest id first,
    at most LIMIT, below BEFORE_ID when given (the last id of the previous page), and meeting every
    condition of WHERE (on articles' columns: a date range, a verdict) when given.

    A query without a single letter or digit matches nothing; so does one with an absurdly long word.
    """
    kept = query_words(words)
    if not kept or limit <= 0 or any(len(word) > MAX_WORD_CHARS for word in kept):
        return []
    if session.get_bind().dialect.name == "sqlite":
        # rowid ordering and the rowid bound are served by FTS5 itself: it walks its doclists
        # newest first and stops at LIMIT; each hit's other conditions are one primary-key look-up.
        fts = table(FTS_TABLE, column("rowid"))
        query = select(fts.c.rowid).where(text(f"{FTS_TABLE} MATCH :query").bindparams(query=fts5_query(kept)))
        if before_id is not None:
            query = query.where(fts.c.rowid < before_id)
        if where:
            query = query.where(exists().where(Article.id == fts.c.rowid, *where))
        query = query.order_by(fts.c.rowid.desc())
    else:
        # One phrase per word, as FTS5 reads a string: "title:ransomware" is two adjacent words.
        phrases = " && ".join(f"phraseto_tsquery('simple', :w{index})" for index in range(len(kept)))
        matches = text(f"articles.{PG_VECTOR_COLUMN} @@ ({phrases})").bindparams(
            **{f"w{index}": word for index, word in enumerate(kept)}
        )
        # The other conditions first: PostgreSQL tests a row's quals in the order given when their
        # costs tie, and a date or a status is cheaper to reject than a vector to read (a common word
        # with a narrow date range walks most of the table: 590 -> 95 ms over 100,000 articles).
        query = select(Article.id).where(*where, matches)
        if before_id is not None:
            query = query.where(Article.id < before_id)
        query = query.order_by(Article.id.desc())
    return [int(row_id) for row_id in session.scalars(query.limit(limit))]
