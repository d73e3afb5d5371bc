"""Render AlertContent for Slack (Block Kit), email (text + HTML) and the console.

Every string that came from a feed or the analysis of one is untrusted: it is escaped for the
medium here, and only here, so that an article can never ping a channel, forge a link, inject
markup or drive a terminal.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from monitor.alerts.content import (
    AlertContent,
    AlsoReported,
    ClosestAllegation,
    FindingView,
)
from monitor.alerts.links import display_url

# Slack's documented limits (https://docs.slack.dev/reference/block-kit/blocks).
SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
SLACK_BLOCKS_MAX = 50
# Findings shown in one Slack message; the rest are counted. Leaves room for the fixed blocks.
SLACK_FINDINGS_MAX = 40
SLACK_FALLBACK_MAX = 500
# A longer article URL is shown unlinked: it would not fit a section with the title.
SLACK_URL_MAX = 1500

SUBJECT_TITLE_MAX = 120
EMAIL_TEXT_MAX = 5000

# Controls (ESC drives terminals), zero-width and bidirectional overrides (which disguise text).
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069]"
)
_MENTION = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_WORD_JOINER = "\u2060"
_MRKDWN_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


# --- untrusted text -------------------------------------------------------------------------


def clean(text: str) -> str:
    """One line of text: controls and invisible characters removed, whitespace collapsed."""
    return " ".join(_CONTROL.sub("", text).split())


def defang_mentions(text: str) -> str:
    # A word joiner after "@" keeps "@channel" readable but no longer a broadcast keyword.
    return _MENTION.sub(lambda m: "@" + _WORD_JOINER + m.group(1), text)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mrkdwn(text: str, limit: int) -> str:
    """Untrusted text as Slack mrkdwn, at most ``limit`` characters once escaped."""
    escaped = "".join(_MRKDWN_ESCAPES.get(c, c) for c in defang_mentions(clean(text)))
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    # Every "&" in the escaped text opens an entity: never leave half of one ("&am") behind.
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def plain(text: str, limit: int) -> str:
    """Untrusted text for a Slack plain_text object (the header), at most ``limit`` characters."""
    # plain_text is not parsed for mentions or links; the angle brackets are swapped anyway so
    # that the header cannot carry "<!channel>" even if Slack changes how it treats plain_text.
    text = defang_mentions(clean(text)).replace("<", "‹").replace(">", "›")
    return clip(text, limit)


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s) with a host, as links.display_url shows it (ASCII, undisguised)."""
    return display_url(url)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "unknown"
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _title(content: AlertContent) -> str:
    return clean(content.article_title) or "(untitled)"


def _prefix(content: AlertContent) -> str:
    return "[monitor] [TEST] " if content.test else "[monitor] "


# --- Slack ----------------------------------------------------------------------------------


def _slack_finding(finding: FindingView) -> str:
    # Budgets add up to well under SLACK_SECTION_MAX whatever the input.
    lines = [
        f"*{mrkdwn(finding.headline(), 400)}*",
        f"> “{mrkdwn(finding.evidence, 1500)}”",
    ]
    if finding.closest_known:
        similarity = (
            ""
            if finding.similarity is None
            else f", similarity {finding.similarity:.2f}"
        )
        source = (
            f" from {mrkdwn(finding.closest_source, 200)}"
            if finding.closest_source
            else ""
        )
        lines.append(
            f"Closest known: *{mrkdwn(finding.closest_known, 300)}*{source}{similarity}"
        )
    else:
        lines.append("Closest known: nothing similar known")
    if finding.reason:
        lines.append(f"_{mrkdwn(finding.reason, 300)}_")
    return "\n".join(lines)


def _slack_article(content: AlertContent) -> str:
    title = mrkdwn(_title(content), 800)
    url = safe_url(content.article_url)
    # In mrkdwn "&" is escaped inside link targets too (Slack decodes it back).
    target = url.replace("&", "&amp;") if url else None
    link = (
        f"*<{target}|{title}>*"
        if target and len(target) <= SLACK_URL_MAX
        else f"*{title}*"
    )
    facts = (
        f"Feed: {mrkdwn(content.feed, 300)} · Published: {_when(content.published)}"
        f" · Relevance: {content.relevance:.2f}"
    )
    return f"{link}\n{facts}"


def _slack_allegation(allegation: ClosestAllegation | None) -> str:
    if allegation is None:
        return "*Closest known allegation:* none"
    return (
        f"*Closest known allegation* ({mrkdwn(allegation.source, 300)}, score {allegation.score:.2f})"
        f"\n> {mrkdwn(allegation.sentence, 2000)}"
    )


def _section(text: str) -> SectionBlock:
    # verbatim: Slack must not turn bare names or URLs in article text into mentions or links.
    return SectionBlock(text=MarkdownTextObject(text=text, verbatim=True))


def slack_message(content: AlertContent) -> dict[str, Any]:
    """A Block Kit message for an incoming webhook: {"text": fallback, "blocks": [...]}."""
    header = ("TEST · " if content.test else "") + content.headline()
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=plain(header, SLACK_HEADER_MAX)))
    ]
    shown = content.findings[:SLACK_FINDINGS_MAX]
    blocks += [_section(_slack_finding(finding)) for finding in shown]
    hidden = len(content.findings) - len(shown)
    if hidden:
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=f"…and {hidden} more findings")]
            )
        )
    blocks += [
        DividerBlock(),
        _section(_slack_article(content)),
        _section(_slack_allegation(content.closest_allegation)),
    ]
    if content.test:
        note = "This is a test alert sent by `monitor test-alert`."
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=note)]))
    fallback = mrkdwn(
        f"{_prefix(content)}{content.headline()} — {_title(content)}",
        SLACK_FALLBACK_MAX,
    )
    # to_dict() validates every block against Slack's limits: a rendering bug fails here, loudly.
    return {
        "text": fallback,
        "blocks": [block.to_dict() for block in blocks[:SLACK_BLOCKS_MAX]],
    }


def _slack_link(title: str, url: str | None) -> str:
    target = safe_url(url)
    text = mrkdwn(clean(title) or "(untitled)", 800)
    if target and len(target) <= SLACK_URL_MAX:
        return f"<{target.replace('&', '&amp;')}|{text}>"
    return text


def slack_also_reported(item: AlsoReported) -> dict[str, Any]:
    """A threaded reply under the alert it follows: one line naming the outlet and its article."""
    line = (
        f"Also reported by *{mrkdwn(item.feed, 300)}*: {_slack_link(item.article_title, item.article_url)}"
        f" · Published: {_when(item.published)}"
    )
    fallback = mrkdwn(
        f"Also reported by {item.feed} — {clean(item.article_title)}",
        SLACK_FALLBACK_MAX,
    )
    return {"text": fallback, "blocks": [_section(line).to_dict()]}


# --- email ----------------------------------------------------------------------------------


def email_subject(content: AlertContent) -> str:
    return f"{_prefix(content)}{clean(content.headline())} — {clip(_title(content), SUBJECT_TITLE_MAX)}"


def _mail_domain(sender: str, domain_hint: str | None) -> str:
    domain = (domain_hint or sender.rpartition("@")[2]).strip().lower()
    domain = re.sub(r"[^a-z0-9.-]", "", domain)
    return domain or "monitor.invalid"


def _h(text: str, limit: int = EMAIL_TEXT_MAX) -> str:
    return html.escape(clip(clean(text), limit), quote=True)


def _html_finding(finding: FindingView) -> str:
    if finding.closest_known:
        source = f" from {_h(finding.closest_source)}" if finding.closest_source else ""
        similarity = (
            ""
            if finding.similarity is None
            else f", similarity {finding.similarity:.2f}"
        )
        closest = (
            f"Closest known: <b>{_h(finding.closest_known)}</b>{source}{similarity}"
        )
    else:
        closest = "Closest known: nothing similar known"
    reason = f"<br><i>{_h(finding.reason)}</i>" if finding.reason else ""
    return (
        f"<h3>{_h(finding.headline())}</h3>"
        f'<blockquote style="border-left:3px solid #ccc;margin:0;padding-left:8px">'
        f"{_h(finding.evidence)}</blockquote>"
        f"<p>{closest}{reason}</p>"
    )


def _html_body(content: AlertContent) -> str:
    url = safe_url(content.article_url)
    title = _h(_title(content), 500)
    link = f'<a href="{html.escape(url, quote=True)}">{title}</a>' if url else title
    allegation = content.closest_allegation
    closest = (
        f"<p><b>Closest known allegation</b> ({_h(allegation.source)}, score {allegation.score:.2f})"
        f"</p><blockquote>{_h(allegation.sentence)}</blockquote>"
        if allegation
        else "<p><b>Closest known allegation:</b> none</p>"
    )
    test = (
        "<p><b>TEST</b>: sent by <code>monitor test-alert</code>.</p>"
        if content.test
        else ""
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
        '<body style="font-family:sans-serif">'
        f"{test}<h2>{_h(content.headline())}</h2>"
        + "".join(_html_finding(finding) for finding in content.findings)
        + f"<hr><p><b>{link}</b><br>Feed: {_h(content.feed)} · Published: {_when(content.published)}"
        f" · Relevance: {content.relevance:.2f}</p>{closest}</body></html>"
    )


def email_message(
    content: AlertContent,
    *,
    sender: str,
    to: list[str],
    alert_id: int,
    domain_hint: str | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """A multipart/alternative message; its Message-ID is stable so a re-send is a duplicate."""
    domain = _mail_domain(sender, domain_hint)
    # The default policy encodes non-ASCII headers (RFC 2047) and rejects header injection.
    message = EmailMessage()
    message["Subject"] = email_subject(content)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = format_datetime(now or datetime.now(UTC))
    # A real alert keeps one Message-ID across retries so mail systems drop duplicates; a test
    # alert gets a fresh one, or a second `monitor test-alert` would be dropped as a duplicate.
    message["Message-ID"] = (
        make_msgid(f"test-alert-{alert_id}", domain)
        if content.test
        else f"<alert-{alert_id}@{domain}>"
    )
    message["List-Id"] = f"Monitor alerts <alerts.{domain}>"
    # RFC 3834: autoresponders must not answer this mail.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Monitor-Alert-Id"] = str(alert_id)
    message.set_content(console_text(content))
    message.add_alternative(_html_body(content), subtype="html")
    return message


def _digest_counts(items: list[AlertContent | AlsoReported]) -> tuple[int, int]:
    findings = sum(
        len(item.findings) for item in items if isinstance(item, AlertContent)
    )
    also = sum(1 for item in items if isinstance(item, AlsoReported))
    return findings, also


def digest_subject(items: list[AlertContent | AlsoReported]) -> str:
    findings, also = _digest_counts(items)
    parts = (
        [f"{findings} new finding{'s' if findings != 1 else ''}"] if findings else []
    )
    if also:
        parts.append(f"{also} also reported")
    return "[monitor] Digest: " + ", ".join(parts or ["nothing new"])


def _text_also(item: AlsoReported) -> list[str]:
    url = safe_url(item.article_url)
    original = (
        f" (follows: {clip(clean(item.original_title), 200)})"
        if item.original_title
        else ""
    )
    lines = [
        f"- Also reported by {clean(item.feed)}: {clip(_title(item), 500)}{original}"
    ]  # type: ignore[arg-type]
    if url:
        lines.append(f"  {url}")
    return lines


def digest_text(items: list[AlertContent | AlsoReported]) -> str:
    findings, also = _digest_counts(items)
    lines = [digest_subject(items), ""]
    alerts = [item for item in items if isinstance(item, AlertContent)]
    for content in alerts:
        lines += [console_text(content), ""]
    others = [item for item in items if isinstance(item, AlsoReported)]
    if others:
        lines.append("Also reported by other outlets:")
        for item in others:
            lines += _text_also(item)
    return "\n".join(lines).rstrip()


def _html_also(item: AlsoReported) -> str:
    url = safe_url(item.article_url)
    title = _h(_title(item), 500)  # type: ignore[arg-type]
    link = f'<a href="{html.escape(url, quote=True)}">{title}</a>' if url else title
    original = (
        f" <i>(follows: {_h(item.original_title, 200)})</i>"
        if item.original_title
        else ""
    )
    return f"<li>Also reported by <b>{_h(item.feed)}</b>: {link}{original}</li>"


def digest_html(items: list[AlertContent | AlsoReported]) -> str:
    alerts = [item for item in items if isinstance(item, AlertContent)]
    others = [item for item in items if isinstance(item, AlsoReported)]
    body = "".join(
        _html_body(content)
        .split("<body", 1)[1]
        .split(">", 1)[1]
        .rsplit("</body>", 1)[0]
        + "<hr>"
        for content in alerts
    )
    if others:
        body += (
            "<h2>Also reported by other outlets</h2><ul>"
            + "".join(_html_also(i) for i in others)
            + "</ul>"
        )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
        f'<body style="font-family:sans-serif"><h1>{_h(digest_subject(items))}</h1>{body}</body></html>'
    )


def email_digest(
    items: list[AlertContent | AlsoReported],
    *,
    sender: str,
    to: list[str],
    digest_key: str,
    domain_hint: str | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """One message listing every item; its Message-ID is stable for the same set of alerts."""
    domain = _mail_domain(sender, domain_hint)
    message = EmailMessage()
    message["Subject"] = digest_subject(items)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = f"<digest-{digest_key}@{domain}>"
    message["List-Id"] = f"Monitor alerts <alerts.{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Monitor-Digest"] = digest_key
    message.set_content(digest_text(items))
    message.add_alternative(digest_html(items), subtype="html")
    return message


# --- webhook --------------------------------------------------------------------------------

WEBHOOK_SCHEMA_ID = "https://monitor.invalid/schemas/webhook-alert-v1.json"


def webhook_payload(
    alert_id: int, item: AlertContent | AlsoReported, sent_at: datetime
) -> dict[str, Any]:
    """The generic webhook's JSON body (monitor/alerts/webhook_schema.json). Text is raw, unescaped:
    the receiver escapes it for wherever it shows it."""
    article = {
        "title": item.article_title,
        "url": item.article_url,
        "feed": item.feed,
        "published": item.published.isoformat() if item.published else None,
    }
    body: dict[str, Any] = {
        "schema": WEBHOOK_SCHEMA_ID,
        "alert_id": alert_id,
        "sent_at": sent_at.astimezone(UTC).isoformat(),
        "article": article,
    }
    if isinstance(item, AlsoReported):
        body |= {
            "kind": "also_reported",
            "original_article_id": item.original_article_id,
        }
        return body
    article["relevance"] = item.relevance
    body |= {
        "kind": "test" if item.test else "alert",
        "headline": item.headline(),
        "findings": [
            finding.model_dump(mode="json") | {"headline": finding.headline()}
            for finding in item.findings
        ],
        "closest_allegation": item.closest_allegation.model_dump(mode="json")
        if item.closest_allegation
        else None,
    }
    return body


# --- console --------------------------------------------------------------------------------


def _text_finding(finding: FindingView) -> list[str]:
    lines = [
        f"- {clean(finding.headline())}",
        f"  “{clip(clean(finding.evidence), EMAIL_TEXT_MAX)}”",
    ]
    if finding.closest_known:
        source = (
            f" from {clean(finding.closest_source)}" if finding.closest_source else ""
        )
        similarity = (
            ""
            if finding.similarity is None
            else f", similarity {finding.similarity:.2f}"
        )
        lines.append(
            f"  closest known: {clean(finding.closest_known)}{source}{similarity}"
        )
    else:
        lines.append("  closest known: nothing similar known")
    if finding.reason:
        lines.append(f"  why: {clean(finding.reason)}")
    return lines


def console_text(content: AlertContent) -> str:
    """Plain text (also the email's text part); control characters from articles are removed."""
    url = safe_url(content.article_url)
    lines = [
        f"{_prefix(content)}{clean(content.headline())}",
        f"Article: {clip(_title(content), 500)}",
    ]
    if url:
        lines.append(f"  {url}")
    lines.append(
        f"  feed: {clean(content.feed)} | published: {_when(content.published)}"
        f" | relevance: {content.relevance:.2f}"
    )
    for finding in content.findings:
        lines += _text_finding(finding)
    allegation = content.closest_allegation
    if allegation:
        lines.append(
            f"Closest known allegation ({clean(allegation.source)}, score {allegation.score:.2f}):"
        )
        lines.append(f"  “{clip(clean(allegation.sentence), EMAIL_TEXT_MAX)}”")
    else:
        lines.append("Closest known allegation: none")
    return "\n".join(lines)
