"""The outbox on a real SQLite database, with real Slack and SMTP receivers."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker
from support import rows as support_rows
from support.receivers import (
    Reply,
    SlackReceiver,
    SmtpReceiver,
    ssl_context,
)

from monitor.alerts.channel import Channel, OneByOne
from monitor.alerts.console import ConsoleChannel
from monitor.alerts.dispatch import DispatchReport, dispatch_alerts
from monitor.alerts.email import EmailChannel
from monitor.alerts.slack import SlackWebhookChannel
from monitor.backoff import backoff_s
from monitor.config import AlertSettings, EmailChannelSettings, SlackChannelSettings
from monitor.outbox import AlertContent, Delivery, requeue_dead
from monitor.store.models import Alert

T0 = datetime(2024, 10, 2, 12, 0, tzinfo=UTC)
SLACK_TIMEOUT_S = 1.0  # long enough that a loaded machine still sends both emails inside it


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=ssl_context()) as client:
        yield client


@pytest.fixture
def settings(slack_receiver: SlackReceiver, smtp_receiver: SmtpReceiver) -> AlertSettings:
    return AlertSettings(
        slack=SlackChannelSettings(webhook_url=slack_receiver.url, timeout=SLACK_TIMEOUT_S, rate_limit=None),
        email=EmailChannelSettings(
            host=smtp_receiver.host,
            port=smtp_receiver.port,
            sender="monitor@example.org",
            to=["a@example.org"],
            timeout=2,
        ),
        retry_base=0.5,
        retry_max=4,
        max_attempts=3,
    )


@pytest.fixture
def channels(settings: AlertSettings, client: httpx.AsyncClient) -> dict[str, Channel]:
    return {"slack": SlackWebhookChannel(settings.slack, client), "email": EmailChannel(settings.email)}


enqueue = partial(support_rows.enqueue, at=T0)
alerts = support_rows.alerts_by_id


async def test_each_alert_is_delivered_once(
    sessions: sessionmaker[Session],
    channels: dict[str, Channel],
    settings: AlertSettings,
    slack_receiver: SlackReceiver,
    smtp_receiver: SmtpReceiver,
) -> None:
    stream = io.StringIO()
    slack_id, email_id, console_id = enqueue(sessions, ["slack", "email", "console"])
    everything = {**channels, "console": ConsoleChannel(stream)}
    report = await dispatch_alerts(sessions, everything, settings, now=T0 + timedelta(seconds=1))
    assert report == DispatchReport(delivered=3, retried=0, dead=0)
    rows = alerts(sessions)
    for alert_id in (slack_id, email_id, console_id):
        row = rows[alert_id]
        assert (row.status, row.attempts, row.last_error) == ("delivered", 1, None)
        assert row.delivered_at == T0 + timedelta(seconds=1)
    assert len(slack_receiver.messages) == len(smtp_receiver.messages) == 1
    assert smtp_receiver.messages[0].message["Message-ID"] == f"<alert-{email_id}@example.org>"
    assert stream.getvalue().startswith("[monitor] New country: North Korea")

    again = await dispatch_alerts(sessions, everything, settings, now=T0 + timedelta(hours=1))
    assert again == DispatchReport(0, 0, 0)
    assert len(slack_receiver.requests) == len(smtp_receiver.messages) == 1
    assert stream.getvalue().count("[monitor]") == 1


async def test_a_failed_alert_is_retried_with_backoff_and_delivered_when_the_server_recovers(
    sessions: sessionmaker[Session],
    channels: dict[str, Channel],
    settings: AlertSettings,
    slack_receiver: SlackReceiver,
    smtp_receiver: SmtpReceiver,
) -> None:
    slack_receiver.script([500])
    smtp_receiver.refuse(451)
    slack_id, email_id = enqueue(sessions, ["slack", "email"])
    report = await dispatch_alerts(sessions, channels, settings, now=T0)
    assert report == DispatchReport(delivered=0, retried=2, dead=0)
    rows = alerts(sessions)
    assert rows[slack_id].last_error == "slack: 500 internal server error: rollup_error"
    assert rows[email_id].last_error == "email: 451 Try again later"
    for row in rows.values():
        assert (row.status, row.attempts) == ("pending", 1)
        # The first retry comes within retry_base, jittered by at most half.
        assert T0 + timedelta(seconds=0.25) <= row.next_attempt_at <= T0 + timedelta(seconds=0.5)

    too_early = await dispatch_alerts(sessions, channels, settings, now=T0 + timedelta(seconds=0.2))
    assert too_early == DispatchReport(0, 0, 0)
    recovered = await dispatch_alerts(sessions, channels, settings, now=T0 + timedelta(seconds=1))
    assert recovered == DispatchReport(delivered=2, retried=0, dead=0)
    assert {(row.status, row.attempts) for row in alerts(sessions).values()} == {("delivered", 2)}
    assert (len(slack_receiver.requests), len(slack_receiver.messages), len(smtp_receiver.messages)) == (2, 1, 1)


async def test_retry_after_from_slack_is_honoured(
    sessions: sessionmaker[Session],
    channels: dict[str, Channel],
    settings: AlertSettings,
    slack_receiver: SlackReceiver,
) -> None:
    slack_receiver.script([Reply(429, headers={"Retry-After": "30"})])
    [alert_id] = enqueue(sessions, ["slack"])
    await dispatch_alerts(sessions, channels, settings, now=T0)
    row = alerts(sessions)[alert_id]
    assert row.next_attempt_at == T0 + timedelta(seconds=30)  # beyond retry_max: Slack asked for it
    assert row.last_error == "slack: 429 too many requests: rate_limited"


async def test_an_alert_dies_after_max_attempts_and_can_be_requeued(
    sessions: sessionmaker[Session],
    channels: dict[str, Channel],
    settings: AlertSettings,
    slack_receiver: SlackReceiver,
) -> None:
    slack_receiver.script([500, 502, 503])
    [alert_id] = enqueue(sessions, ["slack"])
    reports = [await dispatch_alerts(sessions, channels, settings, now=T0 + timedelta(minutes=i)) for i in range(4)]
    assert [(r.retried, r.dead) for r in reports] == [(1, 0), (1, 0), (0, 1), (0, 0)]
    row = alerts(sessions)[alert_id]
    assert (row.status, row.attempts) == ("dead", 3)
    assert row.last_error == "slack: 503 service unavailable: service_unavailable"
    assert len(slack_receiver.requests) == 3

    with sessions() as session:
        assert requeue_dead(session, [alert_id, 12345], all_dead=False) == 1
        assert requeue_dead(session, None, all_dead=False) == 0
    row = alerts(sessions)[alert_id]
    assert (row.status, row.attempts) == ("pending", 0)
    assert await dispatch_alerts(sessions, channels, settings) == DispatchReport(delivered=1, retried=0, dead=0)


async def test_a_permanent_failure_is_dead_at_once(
    sessions: sessionmaker[Session],
    channels: dict[str, Channel],
    settings: AlertSettings,
    slack_receiver: SlackReceiver,
    smtp_receiver: SmtpReceiver,
) -> None:
    slack_receiver.script([400])
    smtp_receiver.refuse(550, message="No such user")
    enqueue(sessions, ["slack", "email"])
    assert await dispatch_alerts(sessions, channels, settings, now=T0) == DispatchReport(0, 0, 2)
    errors = {row.channel: (row.status, row.attempts, row.last_error) for row in alerts(sessions).values()}
    assert errors == {
        "slack": ("dead", 1, "slack: 400 bad request: invalid_payload"),
        "email": ("dead", 1, "email: 550 No such user"),
    }
    with sessions() as session:
        assert requeue_dead(session, None, all_dead=True) == 2


@pytest.mark.slow  # real timers or a process of its own: the full suite runs it, the fast tier does not
async def test_a_hanging_slack_does_not_delay_email(
    sessions: sessionmaker[Session],
    channels: dict[str, Channel],
    settings: AlertSettings,
    slack_receiver: SlackReceiver,
    smtp_receiver: SmtpReceiver,
) -> None:
    slack_receiver.script([Reply.hang(10), Reply.hang(10)])
    enqueue(sessions, ["slack", "email"], article_title="first")
    enqueue(sessions, ["slack", "email"], article_title="second")
    started = time.monotonic()
    report = await dispatch_alerts(sessions, channels, settings, now=T0)
    took = time.monotonic() - started
    assert report == DispatchReport(delivered=2, retried=2, dead=0)
    assert len(smtp_receiver.messages) == 2
    # Sent one after the other, at least one email would wait for Slack's first timeout, so it
    # would arrive after Slack's second request. Measured against that request rather than a
    # fixed bound, so a loaded machine's slow SMTP exchange does not decide the outcome.
    first_slack, second_slack = slack_receiver.requests
    assert second_slack.received_at - first_slack.received_at >= SLACK_TIMEOUT_S
    assert all(mail.received_at < second_slack.received_at for mail in smtp_receiver.messages)
    assert 2 * SLACK_TIMEOUT_S <= took < 2 * SLACK_TIMEOUT_S + 1.5  # Slack's two timeouts, one after the other
    slack_errors = {row.last_error for row in alerts(sessions).values() if row.channel == "slack"}
    assert slack_errors == {f"slack: timeout after {SLACK_TIMEOUT_S:g}s"}


async def test_alerts_of_one_channel_go_out_oldest_first(
    sessions: sessionmaker[Session],
    channels: dict[str, Channel],
    settings: AlertSettings,
    slack_receiver: SlackReceiver,
) -> None:
    for minute, title in [(3, "third"), (1, "first"), (2, "second")]:
        enqueue(sessions, ["slack"], at=T0 + timedelta(minutes=minute), article_title=title)
    report = await dispatch_alerts(sessions, channels, settings, now=T0 + timedelta(minutes=5), limit=2)
    assert report.delivered == 2
    await dispatch_alerts(sessions, channels, settings, now=T0 + timedelta(minutes=5))
    titles = [post.json["text"].rsplit("— ", 1)[1] for post in slack_receiver.messages]
    assert titles == ["first", "second", "third"]


async def test_alerts_for_an_unconfigured_channel_stay_pending(
    sessions: sessionmaker[Session], channels: dict[str, Channel], settings: AlertSettings
) -> None:
    [slack_id, pager_id] = enqueue(sessions, ["slack", "pager"])
    assert await dispatch_alerts(sessions, channels, settings, now=T0) == DispatchReport(1, 0, 0)
    pager = alerts(sessions)[pager_id]
    assert (pager.status, pager.attempts, pager.next_attempt_at) == ("pending", 0, T0)


async def test_two_dispatchers_at_once_send_each_alert_once(
    sessions: sessionmaker[Session],
    channels: dict[str, Channel],
    settings: AlertSettings,
    slack_receiver: SlackReceiver,
) -> None:
    slack_receiver.script([Reply(200, delay_s=0.05)] * 6)
    for n in range(6):
        enqueue(sessions, ["slack"], article_title=f"story {n}")
    first, second = await asyncio.gather(
        dispatch_alerts(sessions, channels, settings, now=T0), dispatch_alerts(sessions, channels, settings, now=T0)
    )
    assert first.delivered + second.delivered == 6
    assert len(slack_receiver.requests) == len({post.json["text"] for post in slack_receiver.messages}) == 6


class Exploding(OneByOne):
    """A channel with a bug: the dispatcher boundary must contain it."""

    name = "console"

    async def send(self, alert_id: int, content: AlertContent) -> Delivery:
        raise RuntimeError("boom")


async def test_a_broken_channel_or_payload_is_recorded_not_raised(
    sessions: sessionmaker[Session], settings: AlertSettings
) -> None:
    [alert_id] = enqueue(sessions, ["console"])
    with sessions() as session:
        session.add(Alert(channel="console", payload={"article_title": 3}, created_at=T0, next_attempt_at=T0))
        session.commit()
    report = await dispatch_alerts(sessions, {"console": Exploding()}, settings, now=T0)
    assert report == DispatchReport(delivered=0, retried=1, dead=1)
    rows = alerts(sessions)
    assert rows[alert_id].last_error == "dispatch: RuntimeError: boom"
    [bad] = [row for row in rows.values() if row.id != alert_id]
    assert bad.status == "dead" and bad.last_error and bad.last_error.startswith("dispatch: invalid payload: ")


def test_backoff_doubles_with_jitter_up_to_the_cap(settings: AlertSettings) -> None:
    # The dispatcher's jitter: down by up to half.
    backoff = partial(backoff_s, base_s=settings.retry_base, max_s=settings.retry_max, jitter=(0.5, 1.0))
    assert [backoff(n, rng=lambda: 1.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff(1, rng=lambda: 0.0) == 0.25
    assert backoff(10_000) <= settings.retry_max
