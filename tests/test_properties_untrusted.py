"""Property tests: whatever a feed writes, the functions that carry it to people let no mention,
link, tag, header break or control sequence through. Hypothesis draws the text, with fragments
an attacker would try mixed into arbitrary Unicode."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from monitor.alerts.console import console_text
from monitor.alerts.email import email_digest, email_message
from monitor.alerts.escaping import mrkdwn, plain, safe_url
from monitor.alerts.slack import slack_also_reported, slack_message
from monitor.outbox import AlertContent, AlsoReported, ClosestAllegation, FindingView
from monitor.redact import redact_url
from monitor.terminal import cell, has_unsafe, strip_controls

# Hundreds of generated inputs per property: the full suite runs them, the fast tier does not.
pytestmark = pytest.mark.slow

# What an attacker would put in a title: Slack mentions and links, HTML, header breaks,
# terminal sequences, invisible and reordering characters, entity tricks.
FRAGMENTS = [
    "<!channel>",
    "<!here|here>",
    "<!everyone>",
    "<@U012AB3CD>",
    "<#C123|general>",
    "<!subteam^S123>",
    "@channel",
    "@HERE",
    "@everyone",
    "<https://evil.example|click me>",
    "<mailto:x@evil.example>",
    "*bold*",
    "`code`",
    "&lt;!channel&gt;",
    "&amp;",
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '"><a href="javascript:alert(1)">',
    "<!--",
    "]]>",
    "\r\nBcc: victim@example.org",
    "\nX-Injected: yes",
    "\r",
    "=?utf-8?q?=0D=0ABcc:_x?=",
    "\x1b[2J",
    "\x1b]8;;https://evil.example\x07link\x1b]8;;\x07",
    "\x1b]0;title\x07",
    "\x9b31m",
    "\x07",
    "\x00",
    "\u202e",
    "\u2066",
    "\u200b",
    "\u2028",
    "\ufeff",
    "[/]",
    "[link=https://evil.example]x[/link]",
]

hostile = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(FRAGMENTS)), max_size=12).map("".join)
urls = st.one_of(
    hostile,
    st.builds(lambda tail: "https://news.example/" + tail, hostile),
    st.sampled_from(["javascript:alert(1)", "https://a.example/x?a=1&b=<2>|3", "http://[::1]:80/", "data:text/html,x"]),
)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# A broadcast keyword as Slack reads one: the word itself, not "@here0" or a path in a link target.
BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
LINK_TARGET = re.compile(r"<[^|>]*\|")
WORD_JOINER = "\u2060"  # what the renderer itself puts after "@" to defuse a broadcast word
C0_C1 = re.compile("[\x00-\x1f\x7f-\x9f]")


def unsafe_in_slack(text: str) -> bool:
    # The word joiner is the renderer's own; the cleaner removed every one the feed wrote.
    return has_unsafe(text.replace("@" + WORD_JOINER, "@").replace("\n", " "))


def content(title: str, url: str | None, feed: str, evidence: str, value: str, sentence: str) -> AlertContent:
    return AlertContent(
        article_title=title,
        article_url=url,
        feed=feed,
        published=datetime(2024, 10, 2, tzinfo=UTC),
        relevance=0.7,
        findings=[
            FindingView(
                kind="country",
                value=value,
                evidence=evidence,
                closest_known=value,
                closest_source=feed,
                similarity=0.5,
                reason=evidence,
            ),
            FindingView(kind="denial", value=value, about=title, evidence=sentence),
        ],
        closest_allegation=ClosestAllegation(source=feed, sentence=sentence, score=0.8),
    )


alert_contents = st.builds(content, hostile, st.one_of(st.none(), urls), hostile, hostile, hostile, hostile)


# --- Slack mrkdwn and plain text ---------------------------------------------------------------


@PROPERTY
@given(hostile, st.integers(min_value=2, max_value=300))
def test_mrkdwn_carries_no_mention_link_or_control(text: str, limit: int) -> None:
    out = mrkdwn(text, limit)
    assert len(out) <= limit
    assert "<" not in out and ">" not in out  # no <!channel>, <@U...>, <url|text>
    assert not BROADCAST.search(out)
    assert not unsafe_in_slack(out)
    # No entity cut in half: every "&" opens one of the three escapes Slack decodes.
    assert all(m in ("&amp;", "&lt;", "&gt;") for m in re.findall(r"&[a-z]*;?", out))


@PROPERTY
@given(hostile, st.integers(min_value=2, max_value=150))
def test_slack_plain_text_carries_no_mention_or_control(text: str, limit: int) -> None:
    out = plain(text, limit)
    assert len(out) <= limit and "<" not in out and ">" not in out
    assert not BROADCAST.search(out) and not unsafe_in_slack(out)


def _slack_texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [text for key, value in node.items() for text in (_slack_texts(value) if key != "type" else [])]
    if isinstance(node, list):
        return [text for item in node for text in _slack_texts(item)]
    return [node] if isinstance(node, str) else []


@PROPERTY
@given(alert_contents)
def test_a_slack_message_holds_only_the_article_link_we_made(item: AlertContent) -> None:
    message = slack_message(item)
    texts = _slack_texts(message)
    target = safe_url(item.article_url)
    allowed = {f"<{target.replace('&', '&amp;')}|"} if target else set()
    for text in texts:
        shown = LINK_TARGET.sub("", text)  # bidirectional marks in URLs are the URL guard's business
        assert not BROADCAST.search(shown) and not unsafe_in_slack(shown)
        assert not any(C0_C1.search(target) for target in LINK_TARGET.findall(text))
        opened = re.findall(r"<[^|>]*\|?", text)
        assert set(opened) <= allowed, opened
    json.dumps(message)  # serialisable as sent


@PROPERTY
@given(hostile, st.one_of(st.none(), urls), hostile)
def test_an_also_reported_reply_holds_no_mention_or_foreign_link(title: str, url: str | None, feed: str) -> None:
    item = AlsoReported(article_title=title, article_url=url, feed=feed, published=None, original_article_id=1)
    target = safe_url(url)
    for text in _slack_texts(slack_also_reported(item)):
        shown = LINK_TARGET.sub("", text)  # bidirectional marks in URLs are the URL guard's business
        assert not BROADCAST.search(shown) and not unsafe_in_slack(shown)
        assert not any(C0_C1.search(target) for target in LINK_TARGET.findall(text))
        allowed = {f"<{target.replace('&', '&amp;')}|"} if target else set()
        assert set(re.findall(r"<[^|>]*\|?", text)) <= allowed


# --- HTML email ---------------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple[str, ...]]] = []
        self.hrefs: list[str] = []
        self.comments = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, tuple(name for name, _ in attrs)))
        self.hrefs += [value or "" for name, value in attrs if name == "href"]

    def handle_comment(self, data: str) -> None:
        self.comments += 1


def _tags(html_text: str) -> _Tags:
    parser = _Tags()
    parser.feed(html_text)
    parser.close()
    return parser


def _word(text: str | None) -> str:
    return "w" if text else ""


def _benign(item: AlertContent) -> AlertContent:
    """The same alert with every feed-written string replaced by a plain word (an empty one kept
    empty, so the template takes the same branches): the tags it renders are the template's."""
    finding = item.findings[0]
    return content(
        _word(item.article_title),
        "https://news.example/x" if safe_url(item.article_url) else None,
        _word(item.feed),
        _word(finding.evidence),
        _word(finding.value),
        _word(item.findings[1].evidence),
    )


@PROPERTY
@given(alert_contents)
def test_the_html_email_has_the_templates_tags_and_nothing_else(item: AlertContent) -> None:
    body = email_message(item, sender="monitor@example.org", to=["desk@example.org"], alert_id=1)
    html_part = body.get_body(("html",)).get_content()
    found, expected = (
        _tags(html_part),
        _tags(
            email_message(_benign(item), sender="monitor@example.org", to=["desk@example.org"], alert_id=1)
            .get_body(("html",))
            .get_content()
        ),
    )
    assert found.tags == expected.tags and found.comments == 0
    target = safe_url(item.article_url)
    assert found.hrefs == ([target] if target else [])


# --- email headers ------------------------------------------------------------------------------

HEADERS = ["Subject", "From", "To", "Date", "Message-ID", "List-Id", "Auto-Submitted", "X-Monitor-Alert-Id"]


@PROPERTY
@given(alert_contents)
def test_an_alert_email_has_exactly_its_headers(item: AlertContent) -> None:
    raw = email_message(item, sender="monitor@example.org", to=["desk@example.org"], alert_id=7).as_bytes()
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    names = [name for name in parsed.keys() if name not in ("MIME-Version", "Content-Type")]
    assert names == HEADERS
    subject = str(parsed["Subject"])
    assert "\r" not in subject and "\n" not in subject and not has_unsafe(subject)
    assert parsed["To"] == "desk@example.org" and parsed["Bcc"] is None


@PROPERTY
@given(st.lists(alert_contents, min_size=1, max_size=3))
def test_a_digest_email_has_exactly_its_headers(items: list[AlertContent]) -> None:
    raw = email_digest(items, sender="monitor@example.org", to=["desk@example.org"], digest_key="1-2-2").as_bytes()
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    names = [name for name in parsed.keys() if name not in ("MIME-Version", "Content-Type")]
    assert names == ["Subject", "From", "To", "Date", "Message-ID", "List-Id", "Auto-Submitted", "X-Monitor-Digest"]


# --- terminals ------------------------------------------------------------------------------------


@PROPERTY
@given(hostile)
def test_terminal_text_carries_no_control_sequence(text: str) -> None:
    out = strip_controls(text)
    assert not has_unsafe(out) and "\n" not in out
    shown = cell(text)
    assert shown.plain == out and not shown.spans  # markup is never parsed into styles or links


@PROPERTY
@given(alert_contents)
def test_the_console_alert_carries_no_control_sequence(item: AlertContent) -> None:
    out = console_text(item)
    url = safe_url(item.article_url)
    for line in out.split("\n"):
        assert not C0_C1.search(line)
        # Bidirectional marks in the URL line are the URL guard's business; everywhere else, none.
        assert line == f"  {url}" or not has_unsafe(line)
    # Its lines are the template's: a newline in a title cannot add one.
    assert out.count("\n") == console_text(_benign(item)).count("\n")


# --- URLs shown to people -------------------------------------------------------------------------


@PROPERTY
@given(urls)
def test_a_link_target_is_http_and_cannot_break_out_of_its_markup(url: str) -> None:
    target = safe_url(url)
    if target is not None:
        assert target.lower().startswith(("http://", "https://"))
        # C0 and C1 controls (a terminal's escapes); bidirectional marks in URLs are the URL
        # guard's business.
        assert not re.search(r"[\s<>|\"'`]", target) and not C0_C1.search(target)


@PROPERTY
@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=12, max_size=40),
    st.sampled_from(["token", "api_key", "apikey", "access_token", "key", "X-Api-Key", "client_secret", "sig"]),
    hostile,
)
def test_a_credential_in_a_url_is_never_shown(secret: str, name: str, path: str) -> None:
    assume(secret not in path)
    for url in (
        f"https://news.example/{path}?page=2&{name}={secret}",
        f"https://user:{secret}@news.example/{path}",
        f"https://{secret}@news.example/feed",
    ):
        assert secret not in redact_url(url)
