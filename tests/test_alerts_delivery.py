"""Delivery under faults and noise control, with real servers: a database that goes away, a signed
webhook, per-channel filters and pace, the email digest and "also reported by" threads."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from support import rows as support_rows
from support.receivers import (
    Reply,
    SlackReceiver,
    SmtpReceiver,
    TcpProxy,
    WebhookReceiver,
    alert_content,
    ssl_context,
)

import monitor.alerts
from monitor.alerts.channel import Channel
from monitor.alerts.channels import follow_up_channels
from monitor.alerts.console import ConsoleChannel
from monitor.alerts.dispatch import Dispatcher, DispatchReport, dispatch_alerts
from monitor.alerts.email import EmailChannel
from monitor.alerts.slack import SlackApiChannel, SlackWebhookChannel
from monitor.alerts.webhook import WebhookChannel
from monitor.config import (
    AlertSettings,
    EmailChannelSettings,
    SlackChannelSettings,
    WebhookChannelSettings,
)
from monitor.outbox import FindingView
from monitor.process.followups import add_also_reported
from monitor.store.db import make_engine, make_session_factory
from monitor.store.models import Article, Feed
from tests.conftest import migrated_sqlite

T0 = datetime(2024, 10, 2, 12, 0, tzinfo=UTC)
SCHEMA = json.loads((Path(monitor.alerts.__file__).parent / "webhook_schema.json").read_text())


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=ssl_context()) as client:
        yield client


def alert_settings(**channels: Any) -> AlertSettings:
    return AlertSettings(retry_base=0.5, retry_max=4, max_attempts=3, claim_lease=30, **channels)


def slack_settings(receiver: SlackReceiver, **changes: Any) -> SlackChannelSettings:
    return SlackChannelSettings(**({"webhook_url": receiver.url, "timeout": 2, "rate_limit": None} | changes))


def email_settings(receiver: SmtpReceiver, **changes: Any) -> EmailChannelSettings:
    values = {
        "host": receiver.host,
        "port": receiver.port,
        "sender": "monitor@example.org",
        "to": ["a@example.org"],
    }
    return EmailChannelSettings(**(values | {"timeout": 2} | changes))


enqueue = partial(support_rows.enqueue, at=T0)
rows = support_rows.alerts_by_id


class Ticks:
    """A monotonic clock the test moves: a Retry-After pause is over when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def add_article(
    sessions: sessionmaker[Session],
    feed: str,
    title: str,
    url: str,
    *,
    tags: list[str] | None = None,
    same_story_as: int | None = None,
) -> int:
    with sessions() as session:
        row = session.scalar(select(Feed).where(Feed.name == feed))
        if row is None:
            row = Feed(
                name=feed,
                url=f"http://{feed.lower().replace(' ', '-')}.example/feed",
                tags=tags or [],
            )
            session.add(row)
            session.flush()
        article = Article(
            feed_id=row.id,
            entry_key=url,
            url=url,
            title=title,
            status="processed",
            relevant=True,
            same_story_as_id=same_story_as,
            processed_at=T0,
            published_at=T0,
        )
        session.add(article)
        session.commit()
        return article.id


# --- the database goes away during dispatch ---------------------------------------------------


@pytest.fixture
def proxied_postgres(empty_postgres: str) -> Iterator[tuple[sessionmaker[Session], TcpProxy]]:
    """A migrated PostgreSQL database reached through a TCP link the test can cut."""
    url = make_url(empty_postgres)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        engine = make_engine(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
        yield make_session_factory(engine), proxy
        engine.dispose()


async def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_postgres_lost_while_a_message_is_on_the_wire_is_recorded_once_it_returns(
    caplog: pytest.LogCaptureFixture,
    proxied_postgres: tuple[sessionmaker[Session], TcpProxy],
    slack_receiver: SlackReceiver,
    smtp_receiver: SmtpReceiver,
    client: httpx.AsyncClient,
) -> None:
    sessions, proxy = proxied_postgres
    settings = alert_settings(slack=slack_settings(slack_receiver), email=email_settings(smtp_receiver))
    channels: dict[str, Channel] = {
        "slack": SlackWebhookChannel(settings.slack, client),
        "email": EmailChannel(settings.email),
    }
    slack_receiver.script([Reply(200, delay_s=0.5)])
    slack_id, email_id = enqueue(sessions, ["slack", "email"])
    task = asyncio.create_task(dispatch_alerts(sessions, channels, settings))
    await wait_for(lambda: slack_receiver.requests and smtp_receiver.messages)
    proxy.cut()  # every connection dropped, new ones refused, while Slack is answering
    await wait_for(lambda: "alert outcome not stored" in caplog.text, timeout=15)
    assert not task.done()  # the outcome waits in memory for the database
    proxy.restore()
    report = await asyncio.wait_for(task, 30)
    assert report.delivered == 2
    stored = rows(sessions)
    assert (stored[slack_id].status, stored[slack_id].attempts) == ("delivered", 1)
    assert (stored[email_id].status, stored[email_id].attempts) == ("delivered", 1)
    # Exactly once each, now and on the next rounds.
    assert await dispatch_alerts(sessions, channels, settings) == DispatchReport()
    assert (len(slack_receiver.requests), len(smtp_receiver.messages)) == (1, 1)


async def test_postgres_down_before_a_claim_sends_nothing_until_it_returns(
    proxied_postgres: tuple[sessionmaker[Session], TcpProxy],
    slack_receiver: SlackReceiver,
    client: httpx.AsyncClient,
) -> None:
    sessions, proxy = proxied_postgres
    settings = alert_settings(slack=slack_settings(slack_receiver))
    channels: dict[str, Channel] = {"slack": SlackWebhookChannel(settings.slack, client)}
    [alert_id] = enqueue(sessions, ["slack"])
    proxy.cut()
    with pytest.raises(DBAPIError):
        await dispatch_alerts(sessions, channels, settings)
    assert slack_receiver.requests == []
    proxy.restore()
    assert (await dispatch_alerts(sessions, channels, settings)).delivered == 1
    assert await dispatch_alerts(sessions, channels, settings) == DispatchReport()
    assert len(slack_receiver.messages) == 1 and rows(sessions)[alert_id].attempts == 1


async def test_sqlite_locked_by_another_process_delays_the_record_not_the_delivery(
    tmp_path: Path,
    sqlite_template: Path,
    slack_receiver: SlackReceiver,
    smtp_receiver: SmtpReceiver,
    client: httpx.AsyncClient,
) -> None:
    path = tmp_path / "locked.db"
    engine = make_engine(migrated_sqlite(sqlite_template, path))
    sessions = make_session_factory(engine)
    settings = alert_settings(slack=slack_settings(slack_receiver), email=email_settings(smtp_receiver))
    channels: dict[str, Channel] = {
        "slack": SlackWebhookChannel(settings.slack, client),
        "email": EmailChannel(settings.email),
    }
    slack_receiver.script([Reply(200, delay_s=0.3)])
    enqueue(sessions, ["slack", "email"])
    enqueue(sessions, ["email"], article_title="second")
    locker = sqlite3.connect(path, timeout=10, check_same_thread=False)
    recording = threading.Event()

    @event.listens_for(engine, "before_cursor_execute")
    def writes(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if slack_receiver.messages and statement.startswith("UPDATE alerts"):
            recording.set()  # Slack has answered and its outcome is being written: into the lock

    def lock_then_release() -> None:
        locker.execute("BEGIN EXCLUSIVE")  # what another process writing the file holds
        # Held until the record has met it, and a while longer: the record waits, whatever the pace.
        recording.wait(10)
        time.sleep(0.1)
        locker.rollback()

    task = asyncio.create_task(dispatch_alerts(sessions, channels, settings))
    await wait_for(lambda: slack_receiver.requests)
    holder = threading.Thread(target=lock_then_release)
    holder.start()
    report = await asyncio.wait_for(task, 30)
    holder.join()
    locker.close()
    assert report == DispatchReport(delivered=3)
    assert {(row.status, row.attempts) for row in rows(sessions).values()} == {("delivered", 1)}
    assert (len(slack_receiver.requests), len(smtp_receiver.messages)) == (1, 2)
    engine.dispose()


# --- Slack faults through the dispatcher ----------------------------------------------------------


async def test_a_dropped_connection_and_a_429_are_retried_and_delivered_once(
    sessions: sessionmaker[Session],
    slack_receiver: SlackReceiver,
    smtp_receiver: SmtpReceiver,
    client: httpx.AsyncClient,
) -> None:
    settings = alert_settings(slack=slack_settings(slack_receiver), email=email_settings(smtp_receiver))
    channels: dict[str, Channel] = {
        "slack": SlackWebhookChannel(settings.slack, client),
        "email": EmailChannel(settings.email),
    }
    slack_receiver.script([Reply.drop(), Reply(429, headers={"Retry-After": "1"})])
    smtp_receiver.refuse(421, at="mail")
    first = enqueue(sessions, ["slack", "email"], article_title="first")
    second = enqueue(sessions, ["slack"], article_title="second")
    ticks = Ticks()
    dispatcher = Dispatcher(sessions, channels, settings, monotonic=ticks)
    one = await dispatcher.dispatch_alerts(now=T0)
    # The drop is retried later; the 429 pauses Slack, so "second" waits too, in order.
    assert (one.delivered, one.retried) == (0, 3)
    assert len(slack_receiver.requests) == 2
    later = T0 + timedelta(minutes=1)
    # While the pause lasts, Slack is not asked again, however due its rows are.
    ticks.now += 0.5
    paused = await dispatcher.dispatch_alerts(now=later)
    assert len(slack_receiver.requests) == 2
    ticks.now += 0.5  # the second Slack asked for is over
    assert not dispatcher.paused("slack")
    two = await dispatcher.dispatch_alerts(now=later)
    assert paused.delivered + two.delivered == 3
    assert [p.json["text"].rsplit("— ", 1)[1] for p in slack_receiver.messages] == [
        "first",
        "second",
    ]
    assert len(smtp_receiver.messages) == 1
    assert {rows(sessions)[i].status for i in first + second} == {"delivered"}


async def test_email_message_id_is_stable_across_resends(
    smtp_receiver: SmtpReceiver,
) -> None:
    channel = EmailChannel(email_settings(smtp_receiver))
    await channel.send(42, alert_content())
    await channel.send(42, alert_content())
    await channel.send(43, alert_content())
    ids = [mail.message["Message-ID"] for mail in smtp_receiver.messages]
    assert ids == [
        "<alert-42@example.org>",
        "<alert-42@example.org>",
        "<alert-43@example.org>",
    ]


# --- the generic webhook ---------------------------------------------------------------------


def webhook(receiver: WebhookReceiver, client: httpx.AsyncClient, secret: str | None = None) -> WebhookChannel:
    settings = WebhookChannelSettings(url=receiver.url, secret=secret or receiver.secret, timeout=2)
    return WebhookChannel(settings, client)


async def test_webhook_posts_signed_json_that_matches_its_schema(
    sessions: sessionmaker[Session],
    webhook_receiver: WebhookReceiver,
    client: httpx.AsyncClient,
) -> None:
    settings = alert_settings(webhook=WebhookChannelSettings(url=webhook_receiver.url, secret=webhook_receiver.secret))
    webhook_receiver.script([500, Reply(429, body="slow down")])
    [alert_id] = enqueue(sessions, ["webhook"], article_title="Ünïcode <b>title</b>")
    channels: dict[str, Channel] = {"webhook": webhook(webhook_receiver, client)}
    for minute in range(3):
        await dispatch_alerts(sessions, channels, settings, now=T0 + timedelta(minutes=minute))
    assert rows(sessions)[alert_id].status == "delivered"
    [post] = webhook_receiver.messages
    assert len(webhook_receiver.requests) == 3
    jsonschema.validate(post.json, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert post.json["alert_id"] == alert_id and post.json["kind"] == "alert"
    assert post.json["article"]["title"] == "Ünïcode <b>title</b>"  # raw: the receiver escapes
    assert post.json["findings"][0]["headline"] == "New country: North Korea"
    assert post.json["review_url"] is None  # no web.base_url: no desk to link to
    assert webhook_receiver.verify(post.headers, post.body) is None
    # Replaying the same bytes later, or with another body, fails the check.
    assert webhook_receiver.verify(post.headers, post.body, now=time.time() + 600) == "stale timestamp"
    assert webhook_receiver.verify(post.headers, post.body.replace(b"North", b"South")) == "bad signature"


async def test_webhook_carries_the_review_page_of_the_alert(
    webhook_receiver: WebhookReceiver, client: httpx.AsyncClient
) -> None:
    review = "https://desk.example.org/alerts/17"
    delivery = await webhook(webhook_receiver, client).send(5, alert_content(review_url=review))
    assert delivery.status == "delivered", delivery.error
    [post] = webhook_receiver.messages
    jsonschema.validate(post.json, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert post.json["review_url"] == review


async def test_webhook_wrong_secret_and_4xx_are_permanent(
    webhook_receiver: WebhookReceiver, client: httpx.AsyncClient
) -> None:
    wrong = await webhook(webhook_receiver, client, secret="not-the-secret").send(1, alert_content())
    assert (wrong.status, wrong.error) == (
        "permanent",
        "webhook: 401 unauthorized: bad signature",
    )
    webhook_receiver.script([Reply(422, body="unprocessable")])
    refused = await webhook(webhook_receiver, client).send(1, alert_content())
    assert refused.status == "permanent"
    webhook_receiver.script([Reply.hang(3)])
    slow = await WebhookChannel(
        WebhookChannelSettings(url=webhook_receiver.url, secret=webhook_receiver.secret, timeout=0.3),
        client,
    ).send(1, alert_content())
    assert (slow.status, slow.error) == ("retry", "webhook: timeout after 0.3s")
    assert webhook_receiver.messages == []


def test_webhook_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret is required"):
        WebhookChannelSettings(url="https://hooks.example/x")
    assert not WebhookChannelSettings(url="", secret="").active


# --- filters and pace --------------------------------------------------------------------------


async def test_each_channel_sees_only_what_its_filters_let_through(
    sessions: sessionmaker[Session],
    slack_receiver: SlackReceiver,
    smtp_receiver: SmtpReceiver,
    client: httpx.AsyncClient,
) -> None:
    settings = alert_settings(
        slack=slack_settings(slack_receiver, kinds=["denial"]),
        email=email_settings(smtp_receiver, min_relevance=0.8, feed_tags=["elections"]),
    )
    channels: dict[str, Channel] = {
        "slack": SlackWebhookChannel(settings.slack, client),
        "email": EmailChannel(settings.email),
    }
    tagged = add_article(sessions, "Tagged Wire", "t1", "http://t.example/1", tags=["elections", "world"])
    plain = add_article(sessions, "Plain Wire", "p1", "http://p.example/1")
    denial = FindingView(kind="denial", value="Russia", about="hacking", evidence="Moscow denied it.")
    country_only = enqueue(sessions, ["slack", "email"], article_id=tagged, relevance=0.9)
    both = enqueue(
        sessions,
        ["slack", "email"],
        article_id=plain,
        relevance=0.9,
        findings=[*alert_content().findings, denial],
    )
    report = await dispatch_alerts(sessions, channels, settings, now=T0)
    assert report == DispatchReport(delivered=2, filtered=2)
    stored = rows(sessions)
    assert stored[country_only[0]].status == "filtered"
    assert stored[country_only[0]].last_error == "filtered: no finding of kind denial"
    assert stored[both[1]].last_error == "filtered: the feed carries none of the tags elections"
    [post] = slack_receiver.messages
    assert post.json["blocks"][0]["text"]["text"] == "New denial: hacking by Russia"  # the country left out
    [mail] = smtp_receiver.messages
    assert mail.message["X-Monitor-Alert-Id"] == str(country_only[1])


async def test_relevance_floor_filters(
    sessions: sessionmaker[Session],
    slack_receiver: SlackReceiver,
    client: httpx.AsyncClient,
) -> None:
    settings = alert_settings(slack=slack_settings(slack_receiver, min_relevance=0.75))
    [alert_id] = enqueue(sessions, ["slack"], relevance=0.7)
    report = await dispatch_alerts(
        sessions,
        {"slack": SlackWebhookChannel(settings.slack, client)},
        settings,
        now=T0,
    )
    assert report == DispatchReport(filtered=1)
    assert rows(sessions)[alert_id].last_error == "filtered: relevance 0.70 below 0.75"
    assert slack_receiver.requests == []


@pytest.mark.slow  # real timers or a process of its own: the full suite runs it, the fast tier does not
async def test_slack_is_paced_in_order_while_email_goes_at_once(
    sqlite_sessions: sessionmaker[Session],
    slack_receiver: SlackReceiver,
    smtp_receiver: SmtpReceiver,
    client: httpx.AsyncClient,
) -> None:
    sessions = sqlite_sessions
    settings = alert_settings(
        slack=slack_settings(slack_receiver, rate_limit=1.0),
        email=email_settings(smtp_receiver),
    )
    channels: dict[str, Channel] = {
        "slack": SlackWebhookChannel(settings.slack, client),
        "email": EmailChannel(settings.email),
    }
    for n in range(4):
        enqueue(
            sessions,
            ["slack", "email"],
            at=T0 + timedelta(seconds=n),
            article_title=f"story {n}",
        )
    assert (await dispatch_alerts(sessions, channels, settings, now=T0 + timedelta(minutes=1))).delivered == 8
    times = [post.received_at for post in slack_receiver.messages]
    assert [post.json["text"].rsplit("— ", 1)[1] for post in slack_receiver.messages] == [
        f"story {n}" for n in range(4)
    ]
    # Sends start a second apart. The receiver stamps arrival, which a loaded machine delays by up
    # to a few hundred milliseconds for one message and not the next, so single gaps get slack and
    # the span of three gaps carries the pace (unpaced, all four arrive within a fraction of a second).
    assert all(b - a >= 0.5 for a, b in zip(times, times[1:], strict=False)), times
    assert times[-1] - times[0] >= 2.5, times
    # Email is not paced behind Slack: every mail is in before Slack's last message.
    assert max(mail.received_at for mail in smtp_receiver.messages) < times[-1]
    assert SlackChannelSettings().rate_limit == 1.0  # Slack's default: one message a second


# --- email digest ----------------------------------------------------------------------------


async def test_the_email_digest_gathers_every_finding_of_the_period_in_one_message(
    sessions: sessionmaker[Session], smtp_receiver: SmtpReceiver
) -> None:
    settings = alert_settings(email=email_settings(smtp_receiver, digest="1h"))
    channels: dict[str, Channel] = {"email": EmailChannel(settings.email)}
    first = enqueue(sessions, ["email"], at=T0, article_title="Zürich story")
    denial = FindingView(
        kind="denial",
        value="Iran",
        about="hacking the campaign",
        evidence="Tehran denied it.",
    )
    second = enqueue(
        sessions,
        ["email"],
        at=T0 + timedelta(minutes=20),
        findings=[denial],
        article_title="second",
    )
    assert await dispatch_alerts(sessions, channels, settings, now=T0 + timedelta(minutes=30)) == DispatchReport()
    assert smtp_receiver.messages == []
    report = await dispatch_alerts(sessions, channels, settings, now=T0 + timedelta(minutes=61))
    assert report == DispatchReport(delivered=2)
    [mail] = smtp_receiver.messages
    message = mail.message
    assert message["Subject"] == "[monitor] Digest: 2 new findings"
    assert message["Message-ID"] == f"<digest-{first[0]}-{second[0]}-2@example.org>"
    assert message["List-Id"] == "Monitor alerts <alerts.example.org>"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "New country: North Korea" in text and "New denial: hacking the campaign by Iran" in text
    assert "Zürich story" in text and "Zürich story" in html
    # The next alert waits for the next period, counted from the last digest.
    enqueue(sessions, ["email"], at=T0 + timedelta(minutes=70))
    assert await dispatch_alerts(sessions, channels, settings, now=T0 + timedelta(minutes=100)) == DispatchReport()
    assert (await dispatch_alerts(sessions, channels, settings, now=T0 + timedelta(minutes=122))).delivered == 1
    assert len(smtp_receiver.messages) == 2


async def test_a_failed_digest_is_retried_with_the_same_message_id(
    sessions: sessionmaker[Session], smtp_receiver: SmtpReceiver
) -> None:
    settings = alert_settings(email=email_settings(smtp_receiver, digest="1h"))
    channels: dict[str, Channel] = {"email": EmailChannel(settings.email)}
    ids = enqueue(sessions, ["email"], at=T0)
    smtp_receiver.refuse(451)
    assert (await dispatch_alerts(sessions, channels, settings, now=T0 + timedelta(hours=1))).retried == 1
    assert (await dispatch_alerts(sessions, channels, settings, now=T0 + timedelta(hours=2))).delivered == 1
    [mail] = smtp_receiver.messages
    assert mail.message["Message-ID"] == f"<digest-{ids[0]}-{ids[0]}-1@example.org>"


# --- also reported by ------------------------------------------------------------------------


def story(
    sessions: sessionmaker[Session],
    channels: list[str],
    followups: list[str] | None = None,
) -> tuple[int, int]:
    """An alerted article and a later repeat from another outlet; the repeat's rows are queued."""
    original = add_article(sessions, "Example Wire", "North Korea joins", "http://wire.example/nk")
    enqueue(sessions, channels, at=T0, article_id=original)
    repeat = add_article(
        sessions,
        "Other Wire",
        "Pyongyang linked to vote meddling",
        "http://other.example/nk",
        same_story_as=original,
    )
    with sessions() as session:
        article = session.get(Article, repeat)
        assert article is not None
        add_also_reported(
            session, article, "Other Wire", channels if followups is None else followups, T0 + timedelta(minutes=1)
        )
        session.commit()
    return original, repeat


async def test_also_reported_is_a_threaded_reply_under_the_slack_alert(
    sessions: sessionmaker[Session], slack_receiver: SlackReceiver
) -> None:
    settings = alert_settings(
        slack=SlackChannelSettings(
            bot_token="xoxb-test-token",
            channel="C0ALERTS",
            api_url=slack_receiver.api_url,
            rate_limit=None,
        )
    )
    channels: dict[str, Channel] = {"slack": SlackApiChannel(settings.slack)}
    assert follow_up_channels({**channels, "console": ConsoleChannel(io.StringIO())}) == ["slack"]
    original, repeat = story(sessions, ["slack"])
    assert (await dispatch_alerts(sessions, channels, settings, now=T0 + timedelta(minutes=2))).delivered == 2
    parent, reply = slack_receiver.messages
    assert parent.path == reply.path == "/api/chat.postMessage"
    assert parent.headers["authorization"] == "Bearer xoxb-test-token"
    parent_ts = json.loads(parent.answer or "{}")["ts"]
    assert reply.json["thread_ts"] == parent_ts and reply.json["channel"] == "C0ALERTS"
    assert (
        "Also reported by *Other Wire*: <http://other.example/nk|Pyongyang linked to vote meddling>"
        in reply.json["blocks"][0]["text"]["text"]
    )
    stored = {row.article_id: row for row in rows(sessions).values()}
    assert stored[original].payload["receipt"] == {
        "slack_channel": "C0ALERTS",
        "slack_ts": parent_ts,
    }
    assert stored[repeat].status == "delivered"


async def test_a_reply_waits_for_its_alert_and_slack_api_errors_are_read(
    sessions: sessionmaker[Session], slack_receiver: SlackReceiver
) -> None:
    settings = alert_settings(
        slack=SlackChannelSettings(
            bot_token="xoxb-test-token",
            channel="C0ALERTS",
            api_url=slack_receiver.api_url,
            rate_limit=None,
        )
    )
    channels: dict[str, Channel] = {"slack": SlackApiChannel(settings.slack)}
    original, repeat = story(sessions, ["slack"])
    slack_receiver.script([Reply(429, headers={"Retry-After": "1"})])
    ticks = Ticks()
    dispatcher = Dispatcher(sessions, channels, settings, monotonic=ticks)
    report = await dispatcher.dispatch_alerts(now=T0 + timedelta(minutes=2))
    # The alert was rate limited; the channel pauses, the reply waits.
    assert report.retried == 1
    by_article = {row.article_id: row for row in rows(sessions).values()}
    assert by_article[original].last_error == "slack: 429 ratelimited"
    assert dispatcher.paused("slack")
    ticks.now += 1  # the second Slack asked for
    assert not dispatcher.paused("slack")
    report = await dispatcher.dispatch_alerts(now=T0 + timedelta(minutes=3))
    assert report.delivered == 2
    assert [bool(post.json.get("thread_ts")) for post in slack_receiver.messages] == [
        False,
        True,
    ]
    wrong = SlackApiChannel(settings.slack.model_copy(update={"channel": "C0ALERTS"}))
    slack_receiver.bot_token = "another"
    refused = await wrong.send(1, alert_content())
    assert (refused.status, refused.error) == ("permanent", "slack: 200 invalid_auth")


async def test_also_reported_is_a_digest_line_and_never_an_alert_elsewhere(
    sessions: sessionmaker[Session],
    smtp_receiver: SmtpReceiver,
    slack_receiver: SlackReceiver,
    client: httpx.AsyncClient,
) -> None:
    settings = alert_settings(
        email=email_settings(smtp_receiver, digest="1h"),
        slack=slack_settings(slack_receiver),
    )
    channels: dict[str, Channel] = {
        "email": EmailChannel(settings.email),
        "slack": SlackWebhookChannel(settings.slack, client),
    }
    # A webhook Slack cannot thread: it gets no also-reported rows.
    assert follow_up_channels(channels) == ["email"]
    original, repeat = story(sessions, ["email", "slack"], follow_up_channels(channels))
    assert {row.channel for row in rows(sessions).values() if row.article_id == repeat} == {"email"}
    report = await dispatch_alerts(sessions, channels, settings, now=T0 + timedelta(hours=2))
    assert report.delivered == 3 and len(slack_receiver.messages) == 1
    [mail] = smtp_receiver.messages
    assert mail.message["Subject"] == "[monitor] Digest: 1 new finding, 1 also reported"
    text = mail.message.get_body(("plain",)).get_content()
    assert (
        "- Also reported by Other Wire: Pyongyang linked to vote meddling (follows: Officials say North Korea joined efforts to sway the vote)"  # noqa: E501
        in text
    )
    assert "http://other.example/nk" in text
