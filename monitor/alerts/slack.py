"""Slack: alerts as Block Kit messages, through an incoming webhook or the Web API (a bot token,
which threads "also reported by" replies under the alert they follow)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from monitor.alerts.channel import ERROR_BODY_MAX, OneByOne, permanent, post_to_webhook, retry
from monitor.alerts.escaping import clean, clip, mrkdwn, plain, prefix, safe_url, similarity_note, title_of, when
from monitor.backoff import retry_after_s
from monitor.config import SlackChannelSettings
from monitor.outbox import AlertContent, AlsoReported, ClosestAllegation, Delivery, DeliveryStatus, FindingView

# Slack's documented limits (https://docs.slack.dev/reference/block-kit/blocks).
SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
SLACK_BLOCKS_MAX = 50
# Findings shown in one Slack message; the rest are counted. Leaves room for the fixed blocks.
SLACK_FINDINGS_MAX = 40
SLACK_FALLBACK_MAX = 500
# A longer article URL is shown unlinked: it would not fit a section with the title.
SLACK_URL_MAX = 1500


# --- rendering ------------------------------------------------------------------------------------


def _finding(finding: FindingView) -> str:
    # Budgets add up to well under SLACK_SECTION_MAX whatever the input.
    lines = [f"*{mrkdwn(finding.headline(), 400)}*", f"> “{mrkdwn(finding.evidence, 1500)}”"]
    if finding.closest_known:
        source = f" from {mrkdwn(finding.closest_source, 200)}" if finding.closest_source else ""
        known = mrkdwn(finding.closest_known, 300)
        lines.append(f"Closest known: *{known}*{source}{similarity_note(finding.similarity)}")
    else:
        lines.append("Closest known: nothing similar known")
    if finding.reason:
        lines.append(f"_{mrkdwn(finding.reason, 300)}_")
    return "\n".join(lines)


def _link(title: str, url: str | None) -> str:
    """A linked title, the link's target escaped ("&" too: Slack decodes it back)."""
    target = safe_url(url)
    if target and len(target) <= SLACK_URL_MAX:
        return f"<{target.replace('&', '&amp;')}|{title}>"
    return title


def _article(content: AlertContent) -> str:
    facts = (
        f"Feed: {mrkdwn(content.feed, 300)} · Published: {when(content.published)} · Relevance: {content.relevance:.2f}"
    )
    return f"*{_link(mrkdwn(title_of(content), 800), content.article_url)}*\n{facts}"


def _allegation(allegation: ClosestAllegation | None) -> str:
    if allegation is None:
        return "*Closest known allegation:* none"
    return (
        f"*Closest known allegation* ({mrkdwn(allegation.source, 300)}, score {allegation.score:.2f})"
        f"\n> {mrkdwn(allegation.sentence, 2000)}"
    )


def _section(text: str) -> SectionBlock:
    # verbatim: Slack must not turn bare names or URLs in article text into mentions or links.
    return SectionBlock(text=MarkdownTextObject(text=text, verbatim=True))


def _review(content: AlertContent) -> ActionsBlock | None:
    """A "Review" button opening the alert's page on the desk, when web.base_url is set."""
    target = safe_url(content.review_url)
    if not target or len(target) > SLACK_URL_MAX:
        return None
    return ActionsBlock(elements=[ButtonElement(text="Review", url=target, action_id="review", style="primary")])


def slack_message(content: AlertContent) -> dict[str, Any]:
    """A Block Kit message: {"text": fallback, "blocks": [...]}."""
    header = ("TEST · " if content.test else "") + content.headline()
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=plain(header, SLACK_HEADER_MAX)))]
    shown = content.findings[:SLACK_FINDINGS_MAX]
    blocks += [_section(_finding(finding)) for finding in shown]
    hidden = len(content.findings) - len(shown)
    if hidden:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"…and {hidden} more findings")]))
    blocks += [DividerBlock(), _section(_article(content)), _section(_allegation(content.closest_allegation))]
    if review := _review(content):
        blocks.append(review)
    if content.test:
        note = "This is a test alert sent by `monitor test-alert`."
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=note)]))
    fallback = mrkdwn(f"{prefix(content.test)}{content.headline()} — {title_of(content)}", SLACK_FALLBACK_MAX)
    # to_dict() validates every block against Slack's limits: a rendering bug fails here, loudly.
    return {"text": fallback, "blocks": [block.to_dict() for block in blocks[:SLACK_BLOCKS_MAX]]}


def slack_also_reported(item: AlsoReported) -> dict[str, Any]:
    """A threaded reply under the alert it follows: one line naming the outlet and its article."""
    title = _link(mrkdwn(title_of(item), 800), item.article_url)
    line = f"Also reported by *{mrkdwn(item.feed, 300)}*: {title} · Published: {when(item.published)}"
    fallback = mrkdwn(f"Also reported by {item.feed} — {clean(item.article_title)}", SLACK_FALLBACK_MAX)
    return {"text": fallback, "blocks": [_section(line).to_dict()]}


# --- sending --------------------------------------------------------------------------------------


class SlackWebhookChannel(OneByOne):
    name = "slack"

    def __init__(self, settings: SlackChannelSettings, client: httpx.AsyncClient) -> None:
        if settings.webhook_url is None or not settings.webhook_url.get_secret_value():
            raise ValueError("slack: webhook_url is not set")
        self._url = settings.webhook_url.get_secret_value()
        self._timeout = settings.timeout
        self._client = client

    async def send(self, alert_id: int, content: AlertContent) -> Delivery:
        message = slack_message(content)
        return await post_to_webhook(
            self._client, self._url, stage="slack", setting="webhook_url", timeout=self._timeout, json=message
        )


# Web API errors that say "not now" rather than "never".
_SLACK_API_TRANSIENT = {
    "ratelimited",
    "rate_limited",
    "service_unavailable",
    "fatal_error",
    "internal_error",
    "request_timeout",
    "team_added_to_org",
}


def slack_api_outcome(error: SlackApiError) -> Delivery:
    """The one place that reads a failed chat.postMessage (an HTTP error or ok: false)."""
    response = error.response
    status = response.status_code
    data = response.data if isinstance(response.data, dict) else {}
    code = clip(clean(str(data.get("error") or "")), ERROR_BODY_MAX) or "unknown error"
    message = f"slack: {status} {code}"
    retry_after = retry_after_s(response.headers.get("Retry-After") or response.headers.get("retry-after"))
    if status == 429 or status >= 500 or code in _SLACK_API_TRANSIENT:
        return retry(message, retry_after)
    return permanent(message)


class SlackApiChannel(OneByOne):
    """Slack through the Web API (chat.postMessage with a bot token): messages can be threaded.

    slack_sdk's WebClient runs in a worker thread (it is synchronous, on the standard library), so
    no other HTTP stack is needed; its own retries are off, the dispatcher does the retrying.
    """

    name = "slack"
    follows_up = True

    def __init__(self, settings: SlackChannelSettings) -> None:
        if not settings.threads or settings.bot_token is None or settings.channel is None:
            raise ValueError("slack: bot_token and channel are required for the Web API")
        self._token = settings.bot_token.get_secret_value()
        self._channel = settings.channel
        self._timeout = settings.timeout
        self._client = WebClient(
            token=self._token,
            base_url=settings.api_url,
            timeout=settings.timeout,
            retry_handlers=[],  # type: ignore[arg-type]
        )
        self._client.logger.disabled = True  # it logs each failure; the dispatcher does that once

    async def _post(self, **message: Any) -> Delivery:
        def call() -> Any:
            return self._client.chat_postMessage(**message)

        try:
            response = await asyncio.to_thread(call)
        except SlackApiError as exc:
            return slack_api_outcome(exc)
        except TimeoutError:
            return retry(f"slack: timeout after {self._timeout:g}s")
        except OSError as exc:  # URLError, refused, reset, closed without an answer
            reason = getattr(exc, "reason", None) or exc
            detail = str(reason).replace(self._token, "<token>") or "no detail"
            if isinstance(reason, TimeoutError):
                return retry(f"slack: timeout after {self._timeout:g}s")
            return retry(f"slack: connection error: {type(reason).__name__}: {detail}")
        except Exception as exc:  # http.client's RemoteDisconnected is an OSError; this is the rest
            return retry(f"slack: {type(exc).__name__}: {str(exc).replace(self._token, '<token>')}")
        data = response.data if isinstance(response.data, dict) else {}
        receipt = {"slack_channel": data.get("channel") or self._channel, "slack_ts": data.get("ts")}
        return Delivery(DeliveryStatus.DELIVERED, receipt=receipt)

    async def send(self, alert_id: int, content: AlertContent) -> Delivery:
        return await self._post(channel=self._channel, **slack_message(content), unfurl_links=False)

    async def send_also_reported(self, alert_id: int, item: AlsoReported, parent: dict[str, Any]) -> Delivery:
        """A threaded reply under the parent alert's message (its receipt names channel and ts)."""
        if not parent.get("slack_ts"):
            return permanent("slack: the alert to reply to has no message ts (sent by webhook?)")
        return await self._post(
            channel=parent.get("slack_channel") or self._channel,
            thread_ts=parent["slack_ts"],
            unfurl_links=False,
            **slack_also_reported(item),
        )
