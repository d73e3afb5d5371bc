"""Text: feed HTML and article pages turned into plain text for the analysis."""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser

logger = logging.getLogger(__name__)
_IMPORT_LOCK = threading.Lock()

# Elements whose content is never reader-visible text.
_SKIPPED = frozenset({"script", "style", "noscript", "template", "head", "svg", "math", "iframe", "object"})
# Elements that end a line; everything else flows inline.
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "div", "dl", "dt",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot",
        "th", "thead", "tr", "ul",
    }
)  # fmt: skip
# A UTF-8 lead byte read as cp1252 (Â..ô) followed by a continuation byte read the same way.
_MOJIBAKE_PAIR = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6"
    "\u02dc\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)
_CP1252_RUN = re.compile(
    "[\u0080-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014"
    "\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]{2,}"
)
_INLINE_SPACE = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
# Zero-width marks and soft hyphens, plus what no database or reader wants: control characters
# (NUL is refused by PostgreSQL) and lone surrogates (refused by every UTF-8 encoder).
_INVISIBLE = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff\u00ad\x00-\x08\x0b\x0e-\x1f\x7f\ud800-\udfff]")


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skip_depth += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/> and friends: a line break, never the start of a skipped region.
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Plain text: tags and scripts gone, entities decoded, one line per paragraph."""
    if not html:
        return ""
    if "<" in html or "&" in html:
        collector = _TextCollector()
        collector.feed(html)
        collector.close()
        html = "".join(collector.parts)
    return normalise_whitespace(html)


def normalise_whitespace(text: str) -> str:
    """Runs of spaces collapsed, lines trimmed, blank lines dropped."""
    text = _INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = (_INLINE_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def repair_mojibake(text: str) -> str:
    """UTF-8 that someone decoded as Windows-1252 ("Ã©tÃ©" for "été") decoded back.

    Each run of Latin-1/cp1252 characters is repaired on its own, and only when it re-encodes to
    strictly valid UTF-8; real accented text ("SÃO", "café") never does, so a false repair needs
    an unlikely accident. Run it on the raw string: whitespace clean-up would eat the
    no-break spaces and soft hyphens that mojibake is made of.
    """
    if not _MOJIBAKE_PAIR.search(text):
        return text
    return _CP1252_RUN.sub(_repair_run, text)


def _repair_run(match: re.Match[str]) -> str:
    run = match.group(0)
    raw = _cp1252_bytes(run)
    if raw is None:
        return run
    try:
        repaired = raw.decode("utf-8")
    except UnicodeDecodeError:
        return run
    # Real text decodes to letters, marks, digits, punctuation, symbols and spaces; a control,
    # format or unassigned character means the run was not mojibake after all.
    if any(unicodedata.category(char)[0] == "C" for char in repaired):
        return run
    return repaired


def _cp1252_bytes(text: str) -> bytes | None:
    out = bytearray()
    for char in text:
        if char < "\x80":
            out.append(ord(char))
            continue
        try:
            out += char.encode("cp1252")
        except UnicodeEncodeError:
            # The five bytes cp1252 leaves undefined come through decoders as C1 controls.
            if ord(char) > 0xFF:
                return None
            out.append(ord(char))
    return bytes(out)


def _trafilatura_extract() -> Callable[..., str | None]:
    # Imported on first use (slow, and only full_text feeds need it), one thread at a time:
    # concurrent first imports from worker threads can see a half-built module.
    with _IMPORT_LOCK:
        try:
            from trafilatura import extract
        except ImportError as exc:
            raise RuntimeError(f"text: trafilatura cannot be loaded: {exc}") from exc
    return extract


def extract_article_text(html: bytes | str, url: str) -> str | None:
    """The main text of an article page (trafilatura), or None when it finds none.

    Raises RuntimeError when trafilatura cannot be loaded: a missing dependency is a deployment
    fault to surface, not a page without text.
    """
    extract = _trafilatura_extract()
    text = extract(
        html,
        url=url,
        include_comments=False,
        include_tables=False,
        favor_precision=True,
    )
    if not text:
        logger.info("no article text found", extra={"url": url})
        return None
    cleaned = normalise_whitespace(text)
    return cleaned or None


@dataclass(frozen=True)
class Page:
    """An article page read whole: its headline, main text and publication date when it gives one."""

    title: str
    text: str
    published: datetime | None


def looks_like_html(text: str) -> bool:
    return bool(_HTML_START.match(text))


def read_page(html: str) -> Page | None:
    """Headline, main text and date of an article page (trafilatura), or None when it has no text."""
    _trafilatura_extract()  # the same import guard as the page fetcher
    from trafilatura import bare_extraction

    found = bare_extraction(
        html, with_metadata=True, include_comments=False, include_tables=False, favor_precision=True
    )
    body = normalise_whitespace(getattr(found, "text", None) or "") if found is not None else ""
    if not body:
        return None
    published = None
    if date := getattr(found, "date", None):
        try:
            published = datetime.fromisoformat(str(date)).replace(tzinfo=UTC)
        except ValueError:
            published = None
    return Page(normalise_whitespace(getattr(found, "title", None) or ""), body, published)


_HTML_START = re.compile(r"\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|article|meta|div|p)\b", re.I | re.S)
