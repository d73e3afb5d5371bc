"""Text from feeds, servers and configuration made safe for a terminal.

Feed titles, feed URLs, error messages quoting a server's answer: none of it is ours. On a
terminal an ESC starts a control sequence (colours, cursor moves, window titles, OSC 8
hyperlinks), a BEL rings, a bidirectional override reorders what is shown; Rich reads "[...]"
as markup ("[/]" raises, "[link=...]" makes a hyperlink). Everything printed to a terminal or
written to the human log format goes through here.
"""

from __future__ import annotations

import re
import unicodedata

from rich.text import Text

# C0 and C1 controls (ESC, BEL, CSI, OSC...) and DEL; tab and newline are handled by callers that
# keep lines. Invisible formatting characters that disguise text: zero-width characters,
# bidirectional embeddings, overrides and isolates, line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]")


def strip_controls(text: str, *, keep_newlines: bool = False) -> str:
    """TEXT without control or invisible formatting characters; tabs become spaces.

    With ``keep_newlines`` a newline stays (a traceback in a log), anything else that moves the
    cursor does not.
    """
    text = text.replace("\t", " ")
    if keep_newlines:
        return "\n".join(_UNSAFE.sub("", line) for line in text.split("\n"))
    return _UNSAFE.sub("", text.replace("\n", " "))


def has_unsafe(text: str) -> bool:
    """True when TEXT holds a character that strip_controls removes (a test's oracle, too)."""
    return any(
        _UNSAFE.match(character) or (unicodedata.category(character) == "Cc" and character not in "\n")
        for character in text
    )


def cell(value: object) -> Text:
    """VALUE as a Rich Text: printed as it reads, never parsed for markup, controls removed."""
    return Text(strip_controls("" if value is None else str(value)))
