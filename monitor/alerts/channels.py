"""The channels the settings turn on, and what each is told: its filters and the sample alert that
`monitor test-alert` sends."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TextIO

import httpx

from monitor.alerts.channel import Channel
from monitor.alerts.console import ConsoleChannel
from monitor.alerts.email import EmailChannel
from monitor.alerts.slack import SlackApiChannel, SlackWebhookChannel
from monitor.alerts.webhook import WebhookChannel
from monitor.config import AlertSettings, ChannelFilter
from monitor.outbox import AlertContent, ClosestAllegation, FindingView


def build_channels(
    settings: AlertSettings, client: httpx.AsyncClient, stream: TextIO = sys.stdout
) -> dict[str, Channel]:
    """The active channels by name; alerts for a channel that is not here stay pending."""
    channels: dict[str, Channel] = {}
    if settings.slack.active:
        # With a bot token the Web API is used (threaded replies); else the incoming webhook.
        channels["slack"] = (
            SlackApiChannel(settings.slack) if settings.slack.threads else SlackWebhookChannel(settings.slack, client)
        )
    if settings.email.active:
        channels["email"] = EmailChannel(settings.email)
    if settings.webhook.active:
        channels["webhook"] = WebhookChannel(settings.webhook, client)
    if settings.console.enabled:
        channels["console"] = ConsoleChannel(stream)
    return channels


def follow_up_channels(channels: Mapping[str, Channel]) -> list[str]:
    """The channels that take "also reported by" lines (the processor writes rows only for them)."""
    return [name for name, channel in channels.items() if channel.follows_up]


def channel_filter(settings: AlertSettings, name: str) -> ChannelFilter:
    found = getattr(settings, name, None)
    return found if isinstance(found, ChannelFilter) else ChannelFilter()


def filter_content(
    content: AlertContent, filters: ChannelFilter, article_tags: list[str] | None
) -> tuple[AlertContent | None, str | None]:
    """(what a channel with these filters shows, None) or (None, why it shows nothing)."""
    if content.test:
        return content, None
    if content.relevance < filters.min_relevance:
        return None, f"filtered: relevance {content.relevance:.2f} below {filters.min_relevance:.2f}"
    if filters.feed_tags and not set(filters.feed_tags) & set(article_tags or []):
        return None, "filtered: the feed carries none of the tags " + ", ".join(filters.feed_tags)
    if filters.kinds is not None:
        kept = [finding for finding in content.findings if finding.kind in filters.kinds]
        if not kept:
            return None, "filtered: no finding of kind " + ", ".join(filters.kinds)
        if len(kept) != len(content.findings):
            content = content.model_copy(update={"findings": kept})
    return content, None


def sample_alert(now: datetime | None = None) -> AlertContent:
    """What `monitor test-alert` sends: every part filled in, marked as a test, about no real topic."""
    return AlertContent(
        article_title="Test alert from the monitor",
        article_url="https://example.org/monitor/test-alert",
        feed="monitor test-alert",
        published=now or datetime.now(UTC),
        relevance=1.0,
        findings=[
            FindingView(
                kind="country",
                value="Example Country",
                evidence="This is a test alert; the monitor found nothing new.",
                reason="sent by monitor test-alert to check this channel",
            )
        ],
        closest_allegation=ClosestAllegation(
            source="seeds/example.txt", sentence="An example sentence from the seed corpus.", score=1.0
        ),
        test=True,
    )
