"""Rendering: what an alert says, and that article text stays text in Slack, email and console."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from slack_sdk.models.blocks import Block
from support.receivers import SmtpReceiver, alert_content, slack_rejection

from monitor.alerts.channels import sample_alert
from monitor.alerts.console import console_text
from monitor.alerts.email import EmailChannel, email_message
from monitor.alerts.slack import slack_message
from monitor.config import EmailChannelSettings
from monitor.outbox import DeliveryStatus, FindingView
from monitor.process.findings import review_url

HOSTILE = "<!channel> <!here|here> @channel @here @everyone <@U123> <http://evil.example|click> & <b>x</b>"


def mrkdwn_texts(message: dict[str, Any]) -> list[str]:
    """Every string Slack will parse as mrkdwn: the fallback and each mrkdwn text object."""
    texts = [message["text"]]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                texts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message["blocks"])
    return texts


def hostile_content() -> Any:
    return alert_content(
        article_title=HOSTILE,
        feed="Feed " + HOSTILE,
        findings=[
            FindingView(
                kind="denial",
                value="Kremlin <@U999>",
                about="hacking @everyone",
                evidence="The spokesman said " + HOSTILE,
                closest_known="<!subteam^S123>",
                closest_source="seed <http://evil.example|seed.txt>",
                similarity=0.5,
            )
        ],
    )


# --- Slack ----------------------------------------------------------------------------------


def test_slack_names_what_is_new_with_evidence_and_context() -> None:
    content = alert_content()
    denial = FindingView(kind="denial", value="Russia", about="hacking the DNC", evidence="Moscow denied it.")
    content.findings.append(denial)
    message = slack_message(content)
    text = "\n".join(mrkdwn_texts(message))
    assert message["blocks"][0]["type"] == "header"
    assert message["blocks"][0]["text"]["text"].startswith("New country: North Korea")
    assert "*New country: North Korea*" in text
    assert "*New denial: hacking the DNC by Russia*" in text
    assert "> “Officials said North Korea ran accounts that targeted voters in Ohio.”" in text
    assert "Closest known: *China* from seeds/002_e589ff6f7929795d.txt, similarity 0.62" in text
    assert "Closest known: nothing similar known" in text
    assert "<https://news.example.org/2024/10/north-korea-vote|Officials say North Korea joined" in text
    assert "Feed: Example Wire · Published: 2024-10-02 14:30 UTC · Relevance: 0.71" in text
    assert "seeds/000_15f090fb8f4a8b8a.txt, score 0.83" in text
    assert "Russia interfered in the 2016 election" in text
    assert slack_rejection(message) is None


def test_slack_escapes_mentions_and_forged_links() -> None:
    message = slack_message(hostile_content())
    for text in mrkdwn_texts(message):
        assert not re.search(r"<[!@#]", text), text
        assert "<http://evil" not in text
        assert not re.search(r"@(channel|here|everyone)\b", text), text
        # The only angle-bracket construct left is the article link the renderer made itself.
        for link in re.findall(r"<[^>]*>", text):
            assert link.startswith("<https://news.example.org/2024/10/north-korea-vote|"), link
    joined = "\n".join(mrkdwn_texts(message))
    assert "&lt;!channel&gt;" in joined and "&lt;@U123&gt;" in joined and "&amp;" in joined
    assert "@\u2060channel" in joined  # still readable, no longer a broadcast
    header = message["blocks"][0]["text"]["text"]
    assert "<" not in header and not re.search(r"@(channel|here|everyone)\b", header)


def test_slack_links_only_http_urls_without_link_breaking_characters() -> None:
    forged = slack_message(alert_content(article_url="https://news.example.org/a|click here>b"))
    assert "<https://news.example.org/aclick%20here" not in json.dumps(forged)
    assert "<https://news.example.org/aclickhereb|Officials" in forged["blocks"][-2]["text"]["text"]
    query = slack_message(alert_content(article_url="https://news.example.org/a?x=1&y=2"))
    assert "*<https://news.example.org/a?x=1&amp;y=2|Officials" in query["blocks"][-2]["text"]["text"]
    for url in ["javascript:alert(1)", "data:text/html,hi", "ftp://files.example.org/x", "/relative", None]:
        article = slack_message(alert_content(article_url=url))["blocks"][-2]["text"]["text"]
        assert article.startswith("*Officials say North Korea") and "<" not in article, url


def test_slack_message_respects_block_kit_limits_for_a_huge_article() -> None:
    huge = "&<>" * 20_000 + " @channel " * 1000
    findings = [
        FindingView(
            kind="target",
            value=f"target {i} " + huge[:5000],
            evidence=huge,
            closest_known=huge,
            closest_source=huge,
            similarity=0.1,
            reason=huge,
        )
        for i in range(100)
    ]
    long_url = "https://news.example.org/" + "a" * 10_000
    message = slack_message(alert_content(article_title=huge, article_url=long_url, feed=huge, findings=findings))
    blocks = message["blocks"]
    assert len(blocks) <= 50
    assert len(blocks[0]["text"]["text"]) <= 150
    for raw in blocks:
        Block.parse(raw).validate_json()  # slack_sdk's own checks of every limit
        assert len(raw.get("text", {}).get("text", "")) <= 3000
    for text in mrkdwn_texts(message):
        assert not re.search(r"&(?!amp;|lt;|gt;)", text), "an escape was cut in half"
    assert any("…and 60 more findings" in json.dumps(raw, ensure_ascii=False) for raw in blocks)
    assert slack_rejection(message) is None


def test_test_alert_is_marked_everywhere_and_never_deduplicated() -> None:
    content = sample_alert()
    assert slack_message(content)["blocks"][0]["text"]["text"] == "TEST · New country: Example Country"
    assert slack_rejection(slack_message(content)) is None
    first, second = (email_message(content, sender="m@example.org", to=["a@example.org"], alert_id=0) for _ in "12")
    assert first["Subject"] == "[monitor] [TEST] New country: Example Country — Test alert from the monitor"
    assert first["Message-ID"] != second["Message-ID"]
    assert first["Message-ID"].endswith(".test-alert-0@example.org>")
    assert console_text(content).startswith("[monitor] [TEST] ")


# --- email ----------------------------------------------------------------------------------


def test_email_is_text_and_html_with_all_article_text_escaped() -> None:
    content = hostile_content().model_copy(update={"article_title": "<script>alert(1)</script> & co"})
    message = email_message(content, sender="monitor@example.org", to=["a@example.org", "b@example.org"], alert_id=7)
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    body = message.get_body(("html",)).get_content()
    assert "<script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in body
    assert "<b>x</b>" not in body and "&lt;b&gt;x&lt;/b&gt;" in body
    assert 'href="https://news.example.org/2024/10/north-korea-vote"' in body
    assert "<script>alert(1)</script> & co" in text  # plain text needs no escaping
    assert message["To"] == "a@example.org, b@example.org"

    unsafe = email_message(
        alert_content(article_url='javascript:alert("x")'), sender="m@example.org", to=["a@example.org"], alert_id=8
    )
    assert "href" not in unsafe.get_body(("html",)).get_content()


def test_email_headers_are_stable_and_complete() -> None:
    content = alert_content()
    first = email_message(content, sender="Monitor <monitor@alerts.example.org>", to=["a@example.org"], alert_id=42)
    again = email_message(content, sender="Monitor <monitor@alerts.example.org>", to=["a@example.org"], alert_id=42)
    other = email_message(content, sender="monitor@alerts.example.org", to=["a@example.org"], alert_id=43)
    assert first["Message-ID"] == again["Message-ID"] == "<alert-42@alerts.example.org>"
    assert other["Message-ID"] == "<alert-43@alerts.example.org>"
    assert (
        email_message(content, sender="m@x.org", to=["a@x.org"], alert_id=1, domain_hint="mail.example.net")[
            "Message-ID"
        ]
        == "<alert-1@mail.example.net>"
    )
    assert first["List-Id"] == "Monitor alerts <alerts.alerts.example.org>"
    assert first["Auto-Submitted"] == "auto-generated"
    assert parsedate_to_datetime(first["Date"]).tzinfo is not None
    assert first["Subject"] == (
        "[monitor] New country: North Korea — Officials say North Korea joined efforts to sway the vote"
    )


def test_email_subject_cannot_inject_headers() -> None:
    content = alert_content(article_title="Hi\r\nBcc: victim@example.org\r\n\r\nbody")
    message = email_message(content, sender="m@example.org", to=["a@example.org"], alert_id=1)
    assert message["Bcc"] is None
    assert "\n" not in message["Subject"] and "Bcc: victim@example.org" in message["Subject"]


async def test_non_ascii_subject_round_trips_through_a_real_smtp_server(smtp_receiver: SmtpReceiver) -> None:
    title = "Выборы: Côte d’Ivoire — 选举 interference 🗳️"
    content = alert_content(article_title=title)
    content.findings[0].value = "Côte d’Ivoire"
    settings = EmailChannelSettings(
        host=smtp_receiver.host, port=smtp_receiver.port, sender="monitor@example.org", to=["a@example.org"], timeout=5
    )
    delivery = await EmailChannel(settings).send(99, content)
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.error
    [mail] = smtp_receiver.messages
    raw_headers = mail.data.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in mail.data else mail.data.split(b"\n\n", 1)[0]
    raw_headers.decode("ascii")  # encoded words on the wire: no 8-bit bytes in the headers
    assert b"=?utf-8?" in raw_headers.lower()
    parsed = mail.message
    assert parsed["Subject"] == f"[monitor] New country: Côte d’Ivoire — {title}"
    assert parsed["Message-ID"] == "<alert-99@example.org>"
    assert title in parsed.get_body(("plain",)).get_content()
    assert title in parsed.get_body(("html",)).get_content()


# --- console --------------------------------------------------------------------------------


def test_console_text_says_what_is_new_and_drops_terminal_controls() -> None:
    content = alert_content(article_title="\x1b[2J\x1b[31mRed\x07 title\u202e", published=None)
    text = console_text(content)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert text.splitlines()[0] == "[monitor] New country: North Korea"
    assert "Article: [2J[31mRed title" in text
    assert "https://news.example.org/2024/10/north-korea-vote" in text
    assert "published: unknown | relevance: 0.71" in text
    assert "closest known: China from seeds/002_e589ff6f7929795d.txt, similarity 0.62" in text
    assert "Closest known allegation (seeds/000_15f090fb8f4a8b8a.txt, score 0.83):" in text


def test_payload_round_trips_through_json() -> None:
    content = alert_content(published=datetime(2024, 1, 1, tzinfo=UTC))
    payload = json.loads(json.dumps(content.model_dump(mode="json")))
    assert type(content).model_validate(payload) == content


# --- the desk's review link ------------------------------------------------------------------


REVIEW = "https://desk.example.org/alerts/17"


def test_with_a_desk_address_slack_carries_a_review_button() -> None:
    message = slack_message(alert_content(review_url=REVIEW))
    [actions] = [block for block in message["blocks"] if block["type"] == "actions"]
    [button] = actions["elements"]
    assert (button["type"], button["text"]["text"], button["url"]) == ("button", "Review", REVIEW)
    assert slack_rejection(message) is None
    # Without one there is no button; an address that is no http(s) URL never becomes one.
    for url in (None, "javascript:alert(1)"):
        message = slack_message(alert_content(review_url=url))
        assert all(block["type"] != "actions" for block in message["blocks"])
    assert review_url("https://desk.example.org", 17) == REVIEW and review_url(None, 17) is None


def test_with_a_desk_address_email_links_the_review_page_in_both_parts() -> None:
    content = alert_content(review_url=REVIEW + '?a=1&b="><script>')
    message = email_message(content, sender="m@example.org", to=["a@example.org"], alert_id=3)
    text = message.get_body(("plain",)).get_content()
    body = message.get_body(("html",)).get_content()
    # safe_url drops what would break out of the attribute; "&" is escaped for HTML.
    assert f"Review: {REVIEW}?a=1&b=script" in text
    assert f'<a href="{REVIEW}?a=1&amp;b=script">Review on the desk</a>' in body
    assert "<script>" not in body
    plain = email_message(alert_content(), sender="m@example.org", to=["a@example.org"], alert_id=4)
    assert "Review" not in plain.get_body(("plain",)).get_content()
    assert "Review" not in plain.get_body(("html",)).get_content()
    assert console_text(alert_content(review_url=REVIEW)).count(f"Review: {REVIEW}") == 1
