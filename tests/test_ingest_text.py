"""html_to_text on feed snippets; extract_article_text on real saved article pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.ingest.text import extract_article_text, html_to_text, looks_like_html, read_page

ARTICLES = Path(__file__).parents[2] / "shared" / "feeds" / "articles-html"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("", ""),
        ("plain words", "plain words"),
        ("<p>One</p><p>Two</p>", "One\nTwo"),
        ("Line one<br>Line two<br/>Line three", "Line one\nLine two\nLine three"),
        ("<b>Bold</b> and <i>italic</i> <a href='x'>link</a>", "Bold and italic link"),
        ("Tom &amp; Jerry &lt;3 &eacute;t&eacute; &#8217;s &#x2014; &nbsp;end", "Tom & Jerry <3 été ’s — end"),
        ("<script>var x = '<p>no</p>';</script>Visible<style>p { color: red }</style>", "Visible"),
        ("<noscript>enable js</noscript><template><p>t</p></template>kept", "kept"),
        ("  lots   of \t\t spaces \n\n\n and lines  ", "lots of spaces\nand lines"),
        ("<ul><li>first</li><li>second</li></ul>", "first\nsecond"),
        ("<div><h2>Head</h2>para <span>inline</span> text</div>", "Head\npara inline text"),
        ("zero\u200bwidth soft\u00adhyphen", "zerowidth softhyphen"),
        ("a < b and c > d", "a < b and c > d"),
        ("<p>unclosed <b>bold", "unclosed bold"),
        ("<!-- a comment --><p>after</p>", "after"),
        ("<img src='x.png' alt='pixel'>", ""),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_html_to_text_on_a_feedburner_description() -> None:
    html = (
        'Officials said on Monday the vote would go ahead.<div class="feedflare">'
        '<a href="http://feeds.example.com/~ff/x?a=1">'
        '<img src="http://feeds.example.com/~ff/x?d=1" border="0"></img></a>'
        '</div><img src="http://feeds.example.com/~r/x/~4/abc" height="1" width="1" alt=""/>'
    )
    assert html_to_text(html) == "Officials said on Monday the vote would go ahead."


def test_extract_article_text_on_an_empty_page() -> None:
    assert extract_article_text("<html><body></body></html>", "https://example.com/") is None


@pytest.mark.slow  # reads a whole corpus: every saved page in ../shared/feeds/articles-html
def test_extract_article_text_finds_the_main_text_of_real_pages() -> None:
    if not ARTICLES.is_dir():
        pytest.skip(f"{ARTICLES} is absent (real article pages live beside the clone in ../shared)")
    gold = json.loads((ARTICLES / "trafilatura-evaldata-subset.json").read_text(encoding="utf-8"))
    expected = found = boilerplate = 0
    for url, page in gold.items():
        text = extract_article_text((ARTICLES / page["file"]).read_bytes(), url) or ""
        assert "</" not in text, f"markup left in {page['file']}"
        expected += len(page.get("with", []))
        found += sum(snippet in text for snippet in page.get("with", []))
        boilerplate += sum(snippet in text for snippet in page.get("without", []))
    # trafilatura (precision mode) finds 38 of 43 snippets with 1 boilerplate leak on these pages.
    assert found >= 0.8 * expected
    assert boilerplate <= 2


@pytest.mark.parametrize(
    ("document", "is_page"),
    [
        ("<!DOCTYPE html><html><body><p>x</p></body></html>", True),
        ("  <!-- saved from a browser -->\n<html lang='en'>", True),
        ("<p>A fragment of a page</p>", True),
        ("Kremlin rejects claims\n\nThe <b>tag</b> is in the text, not at its start.", False),
        ("<Reuters> said on Monday that officials had met.", False),
    ],
)
def test_a_saved_page_is_told_from_a_text_by_how_it_starts(document: str, is_page: bool) -> None:
    assert looks_like_html(document) is is_page


def test_a_page_gives_its_headline_text_and_date_without_menus() -> None:
    page = read_page(
        "<html><head><title>Site | Home</title>"
        '<meta property="article:published_time" content="2025-06-01T08:00:00Z"></head><body>'
        "<nav>Home World Sign in</nav><article><h1>Envoy summoned over leaked recordings</h1>"
        "<p>The foreign ministry summoned the ambassador on Sunday after recordings of officials "
        "discussing the vote were published by an anonymous account.</p>"
        "<p>Investigators said the account had been created a week before the recordings appeared.</p>"
        "</article><footer>Subscribe to our newsletter</footer></body></html>"
    )
    assert page is not None
    assert "summoned the ambassador" in page.text and "Sign in" not in page.text and "newsletter" not in page.text
    assert page.published is not None and page.published.date().isoformat() == "2025-06-01"
