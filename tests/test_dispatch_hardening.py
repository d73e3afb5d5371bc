"""Sends that a hostile or broken receiver cannot stretch, claims that cannot be overwritten, and
digests that one bad alert cannot sink: real receivers on 127.0.0.1, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from support import rows as support_rows
from support.receivers import DripReceiver, Reply, SlackReceiver, SmtpReceiver, ssl_context

from monitor.alerts.channels import Channel, EmailChannel, SlackWebhookChannel, WebhookChannel
from monitor.alerts.dispatch import DispatchReport, dispatch_alerts
from monitor.config import AlertSettings, EmailChannelSettings, SlackChannelSettings, WebhookChannelSettings
from monitor.outbox import DIGEST_MAX_ITEMS, claim_alert
from monitor.store.clock import database_now

T0 = datetime(2024, 10, 2, 12, 0, tzinfo=UTC)
enqueue = partial(support_rows.enqueue, at=T0)
alerts = support_rows.alerts_by_id


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=ssl_context()) as http:
        yield http


# --- an overall deadline on each send ---------------------------------------------------------


@pytest.mark.slow  # real timers or a process of its own: the full suite runs it, the fast tier does not
async def test_a_dripping_receiver_cannot_hold_a_send_past_its_deadline(
    sessions: sessionmaker[Session], client: httpx.AsyncClient
) -> None:
    # 33 bytes at one every 0.3 s: about 10 s, and never 1 s without a byte (httpx's read timeout).
    with DripReceiver(interval_s=0.3) as drip:
        settings = AlertSettings(
            webhook=WebhookChannelSettings(url=drip.url, secret="s" * 32, timeout=1), claim_lease=10
        )
        channels: dict[str, Channel] = {"webhook": WebhookChannel(settings.webhook, client)}
        (alert_id,) = enqueue(sessions, ["webhook"])
        started = time.monotonic()
        report = await dispatch_alerts(sessions, channels, settings)
        took = time.monotonic() - started
        assert drip.requests == 1 and drip.finished == 0
    # Before: about 10 s, then recorded as delivered.
    assert took < 3.0, took
    assert report == DispatchReport(retried=1)
    row = alerts(sessions)[alert_id]
    assert row.status == "pending" and row.attempts == 1
    assert row.last_error and "not finished within 1.25s" in row.last_error


@pytest.mark.slow  # real timers or a process of its own: the full suite runs it, the fast tier does not
async def test_a_per_phase_timeout_still_names_itself(
    sessions: sessionmaker[Session], client: httpx.AsyncClient, slack_receiver: SlackReceiver
) -> None:
    slack_receiver.script([Reply.hang(5)])
    settings = AlertSettings(slack=SlackChannelSettings(webhook_url=slack_receiver.url, timeout=1, rate_limit=None))
    (alert_id,) = enqueue(sessions, ["slack"])
    await dispatch_alerts(sessions, {"slack": SlackWebhookChannel(settings.slack, client)}, settings)
    assert alerts(sessions)[alert_id].last_error == "slack: timeout after 1s"


def test_the_claim_lease_must_cover_the_send_deadline_and_the_rate_limit() -> None:
    slack = SlackChannelSettings(webhook_url="https://hooks.example/x", timeout=50, rate_limit=30)
    with pytest.raises(ValueError, match="claim_lease must be at least 130s"):
        AlertSettings(slack=slack, claim_lease=110)  # before: twice the timeout (100 s) was enough
    assert AlertSettings(slack=slack, claim_lease=130).claim_lease == 130


# --- an outcome is recorded only under this dispatcher's claim --------------------------------


@pytest.mark.slow  # real timers or a process of its own: the full suite runs it, the fast tier does not
async def test_an_outcome_is_not_recorded_over_another_dispatchers_claim(
    sessions: sessionmaker[Session],
    client: httpx.AsyncClient,
    slack_receiver: SlackReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    slack_receiver.script([Reply(200, delay_s=1.5)])
    settings = AlertSettings(
        slack=SlackChannelSettings(webhook_url=slack_receiver.url, timeout=2, rate_limit=None), claim_lease=5
    )
    (alert_id,) = enqueue(sessions, ["slack"])
    channels: dict[str, Channel] = {"slack": SlackWebhookChannel(settings.slack, client)}
    with caplog.at_level(logging.WARNING, logger="monitor.alerts.dispatch"):
        first = asyncio.create_task(dispatch_alerts(sessions, channels, settings))
        while not slack_receiver.requests:
            await asyncio.sleep(0.02)
        # Another dispatcher, for which this one's lease is over (a stall, a clock far ahead),
        # claims the row while the first is still waiting for Slack's answer.
        later = datetime.now(UTC) + timedelta(minutes=10)
        taken = await asyncio.to_thread(claim_alert, sessions, alert_id, later, 5, False)
        assert taken is not None and taken.lease_until is not None
        await first
    row = alerts(sessions)[alert_id]
    # Before: the first dispatcher wrote "delivered" over the second one's claim.
    assert (row.status, row.attempts) == ("pending", 0)
    assert abs((row.next_attempt_at - taken.lease_until).total_seconds()) < 1e-3
    assert "the claim was taken over" in caplog.text


async def test_leases_come_from_the_database_clock(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        now = database_now(session)
        if session.get_bind().dialect.name == "postgresql":
            server = session.scalar(text("SELECT clock_timestamp()"))
            assert abs((server - now).total_seconds()) < 1.0
    assert now.tzinfo is not None
    (alert_id,) = enqueue(sessions, ["slack"])
    claimed = await asyncio.to_thread(claim_alert, sessions, alert_id, None, 60, False)
    assert claimed is not None and claimed.lease_until is not None
    assert abs((alerts(sessions)[alert_id].next_attempt_at - claimed.lease_until).total_seconds()) < 1e-3


# --- the email digest -------------------------------------------------------------------------


def digest_settings(smtp: SmtpReceiver, **changes: Any) -> AlertSettings:
    email = EmailChannelSettings(
        host=smtp.host, port=smtp.port, sender="monitor@example.org", to=["desk@example.org"], timeout=5, digest="1h"
    )
    return AlertSettings(email=email, retry_base=0.5, retry_max=4, max_attempts=3, claim_lease=30, **changes)


async def test_one_alert_the_server_refuses_does_not_sink_the_digest(
    sessions: sessionmaker[Session], smtp_receiver: SmtpReceiver
) -> None:
    settings = digest_settings(smtp_receiver)
    channels: dict[str, Channel] = {"email": EmailChannel(settings.email)}
    good = [enqueue(sessions, ["email"], article_title=f"Story {n}")[0] for n in range(4)]
    (bad,) = enqueue(sessions, ["email"], article_title="Story with FORBIDDEN-WORD in it")
    good += [enqueue(sessions, ["email"], article_title=f"Story {n}")[0] for n in range(4, 7)]
    smtp_receiver.refuse_containing(b"FORBIDDEN-WORD", 554)
    report = await dispatch_alerts(sessions, channels, settings, now=T0 + timedelta(hours=1))
    # Before: the one message held all eight, the 554 killed them all.
    assert report == DispatchReport(delivered=7, dead=1)
    rows = alerts(sessions)
    assert all(rows[alert_id].status == "delivered" for alert_id in good)
    assert rows[bad].status == "dead" and rows[bad].last_error == "email: 554 Message content rejected"
    delivered = [mail.message for mail in smtp_receiver.messages]
    listed = sum(int(m["Message-ID"].split("-")[-1].split("@")[0]) for m in delivered)
    assert listed == 7  # each good alert in exactly one delivered digest
    assert all(b"FORBIDDEN-WORD" not in mail.data for mail in smtp_receiver.messages)


async def test_a_large_backlog_goes_out_in_digests_of_bounded_size(
    sessions: sessionmaker[Session], smtp_receiver: SmtpReceiver
) -> None:
    settings = digest_settings(smtp_receiver)
    channels: dict[str, Channel] = {"email": EmailChannel(settings.email)}
    total = 2 * DIGEST_MAX_ITEMS + 7
    for n in range(total):
        enqueue(sessions, ["email"], article_title=f"Story {n}")
    due = T0 + timedelta(hours=1)
    sent = 0
    for _ in range(3):
        sent += (await dispatch_alerts(sessions, channels, settings, now=due)).delivered
    # Full digests go out at once; the remainder waits for its period.
    assert sent == 2 * DIGEST_MAX_ITEMS
    assert (await dispatch_alerts(sessions, channels, settings, now=due + timedelta(hours=1))).delivered == 7
    sizes = [int(mail.message["Message-ID"].split("-")[-1].split("@")[0]) for mail in smtp_receiver.messages]
    assert sizes == [DIGEST_MAX_ITEMS, DIGEST_MAX_ITEMS, 7]
