"""What the alert and article lists share: their query parameters (bounded, blank fields ignored,
anything out of range a 422), the cursor, and how a page links to the next."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from monitor.alerts.escaping import safe_url, when

# The store's ids are 32-bit integers on PostgreSQL: a larger one would be a database error.
MAX_ID = 2**31 - 1
MAX_PAGE = 500
# No control characters (PostgreSQL refuses NUL in text), no unbounded strings.
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
ArticleId = Annotated[int, Field(ge=1, le=MAX_ID)]


class ListQuery(BaseModel):
    """Parameters every list takes. A GET form sends its empty fields as "": those mean "any"."""

    model_config = ConfigDict(extra="ignore")

    since: date | None = Field(None, description="On or after this day (UTC), by when the article was fetched.")
    until: date | None = Field(None, description="On or before this day (UTC).")
    before: str | None = Field(
        None, max_length=20, description="The cursor: the `next` of the previous page; absent for the first."
    )
    limit: int | None = Field(None, ge=1, le=MAX_PAGE, description="Rows per page (default: web.page_size).")

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, values: Any) -> Any:
        if isinstance(values, dict):
            return {key: value for key, value in values.items() if not (value is None or str(value).strip() == "")}
        return values

    @field_validator("since", "until")
    @classmethod
    def _sane_day(cls, value: date | None) -> date | None:
        if value is not None and not 1900 <= value.year <= 9998:
            raise ValueError("a day between the years 1900 and 9998")
        return value

    @field_validator("before")
    @classmethod
    def _cursor(cls, value: str | None) -> str | None:
        if value is not None and not (value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_ID):
            raise ValueError("not a cursor this list gave out")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> ListQuery:
        if self.since and self.until and self.since > self.until:
            raise ValueError("since is after until")
        return self

    def cursor(self) -> int | None:
        return int(self.before) if self.before else None

    def page_size(self, default: int) -> int:
        return min(self.limit or default, MAX_PAGE)

    def window(self) -> tuple[datetime | None, datetime | None]:
        """The days as UTC instants: from the start of SINCE to the end of UNTIL (exclusive)."""
        since = datetime.combine(self.since, time.min, UTC) if self.since else None
        until = datetime.combine(self.until, time.min, UTC) + timedelta(days=1) if self.until else None
        return since, until

    def link(self, path: str, cursor: str | None) -> str | None:
        """PATH with these filters and CURSOR: the next page's address, or None at the end."""
        if cursor is None:
            return None
        values = self.model_dump(mode="json", exclude_none=True, exclude={"before"})
        return f"{path}?{urlencode({**values, 'before': cursor})}"


class Page(BaseModel):
    """A page of a list: `next` is the cursor to pass as `before`, null on the last page."""

    next: str | None


def highlight(text: str, needle: str) -> list[tuple[str, bool]]:
    """TEXT cut into (part, is NEEDLE) pieces, case-insensitively, for the template to wrap the
    marked parts in <mark>: each part is escaped on its own, never joined into markup here."""
    if not needle.strip():
        return [(text, False)]
    lowered, wanted = text.casefold(), needle.casefold()
    if wanted not in lowered and (owned := re.fullmatch(r"(.+) \([^()]+\)", needle)):
        # A target's value ends with whose it is ("the vote (Mozambique)"); its sentence has the words.
        needle = owned.group(1)
        wanted = needle.casefold()
    # casefold can change lengths ("ß" -> "ss"): positions then no longer line up; mark nothing.
    if len(lowered) != len(text) or len(wanted) != len(needle):
        return [(text, False)]
    parts: list[tuple[str, bool]] = []
    start = 0
    while (found := lowered.find(wanted, start)) != -1:
        if found > start:
            parts.append((text[start:found], False))
        parts.append((text[found : found + len(needle)], True))
        start = found + len(needle)
    if start < len(text):
        parts.append((text[start:], False))
    return parts


def link_of(url: str | None) -> str | None:
    """An article's address as a link target: only plain http(s) URLs become links."""
    return safe_url(url)


def shown(moment: datetime | None) -> str:
    return when(moment) if moment else "—"


def wants_fragment(headers: Any) -> bool:
    """True for an htmx request that swaps the rows only (not a history restore, which needs a page)."""
    return headers.get("hx-request") == "true" and headers.get("hx-history-restore-request") != "true"
