"""Each channel against a real server: what it sends, and how it reads each kind of failure."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from support.receivers import (
    Reply,
    SlackReceiver,
    SmtpReceiver,
    alert_content,
    ssl_context,
)

from monitor.alerts.channels import build_channels
from monitor.alerts.console import ConsoleChannel
from monitor.alerts.email import EmailChannel
from monitor.alerts.slack import SlackWebhookChannel, slack_message
from monitor.backoff import retry_after_s as retry_after_seconds
from monitor.config import (
    AlertSettings,
    ConsoleChannelSettings,
    EmailChannelSettings,
    SlackChannelSettings,
)
from monitor.outbox import DeliveryStatus

SECRET = "secrettoken"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=ssl_context()) as client:
        yield client


def slack(receiver: SlackReceiver, client: httpx.AsyncClient, timeout: float = 2.0) -> SlackWebhookChannel:
    return SlackWebhookChannel(SlackChannelSettings(webhook_url=receiver.url, timeout=timeout), client)


def email(receiver: SmtpReceiver, **changes: object) -> EmailChannel:
    values: dict[str, object] = {
        "host": receiver.host,
        "port": receiver.port,
        "sender": "monitor@example.org",
        "to": ["analyst@example.org", "desk@example.org"],
        "timeout": 5,
    }
    return EmailChannel(EmailChannelSettings(**(values | changes)))


# --- Slack ----------------------------------------------------------------------------------


async def test_slack_posts_the_block_kit_message(slack_receiver: SlackReceiver, client: httpx.AsyncClient) -> None:
    content = alert_content()
    delivery = await slack(slack_receiver, client).send(1, content)
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.error is None
    [post] = slack_receiver.messages
    assert post.headers["content-type"] == "application/json"
    assert post.json == json.loads(json.dumps(slack_message(content)))


@pytest.mark.parametrize(
    ("reply", "status", "error"),
    [
        (500, DeliveryStatus.RETRY, "slack: 500 internal server error: rollup_error"),
        (503, DeliveryStatus.RETRY, "slack: 503 service unavailable: service_unavailable"),
        (400, DeliveryStatus.PERMANENT, "slack: 400 bad request: invalid_payload"),
        (403, DeliveryStatus.PERMANENT, "slack: 403 forbidden: action_prohibited"),
        (410, DeliveryStatus.PERMANENT, "slack: 410 gone: channel_is_archived"),
    ],
)
async def test_slack_reads_each_failure(
    slack_receiver: SlackReceiver, client: httpx.AsyncClient, reply: int, status: DeliveryStatus, error: str
) -> None:
    slack_receiver.script([reply])
    delivery = await slack(slack_receiver, client).send(1, alert_content())
    assert (delivery.status, delivery.error) == (status, error)
    assert slack_receiver.messages == []


async def test_slack_429_is_retried_after_what_slack_asks(
    slack_receiver: SlackReceiver, client: httpx.AsyncClient
) -> None:
    slack_receiver.script([429, Reply(429, headers={"Retry-After": "7"})])
    channel = slack(slack_receiver, client)
    first, second = await channel.send(1, alert_content()), await channel.send(1, alert_content())
    assert first.status == DeliveryStatus.RETRY and first.error == "slack: 429 too many requests: rate_limited"
    assert (first.retry_after_s, second.retry_after_s) == (1.0, 7.0)


async def test_slack_timeouts_and_dropped_connections_are_retried(
    slack_receiver: SlackReceiver, client: httpx.AsyncClient
) -> None:
    slack_receiver.script([Reply.hang(5), Reply.drop()])
    channel = slack(slack_receiver, client, timeout=0.3)
    timed_out = await channel.send(1, alert_content())
    assert (timed_out.status, timed_out.error) == (DeliveryStatus.RETRY, "slack: timeout after 0.3s")
    dropped = await channel.send(1, alert_content())
    assert dropped.status == DeliveryStatus.RETRY
    assert dropped.error and dropped.error.startswith("slack: connection error: RemoteProtocolError")


async def test_slack_errors_never_reveal_the_webhook_url(client: httpx.AsyncClient) -> None:
    with SlackReceiver() as receiver:
        url = receiver.url
        wrong_path = SlackWebhookChannel(SlackChannelSettings(webhook_url=url + "x"), client)
        not_found = await wrong_path.send(1, alert_content())
    gone = SlackWebhookChannel(SlackChannelSettings(webhook_url=url, timeout=1), client)
    refused = await gone.send(1, alert_content())
    assert (not_found.status, not_found.error) == (DeliveryStatus.PERMANENT, "slack: 404 not found: no_service")
    assert refused.status == DeliveryStatus.RETRY and refused.error
    assert refused.error.startswith("slack: connection error: ConnectError")
    for error in (not_found.error, refused.error):
        assert SECRET not in error and "/services/" not in error


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2024, 10, 2, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("30") == 30.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=90), usegmt=True), now) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


# --- email ----------------------------------------------------------------------------------


async def test_email_is_accepted_by_the_server(smtp_receiver: SmtpReceiver) -> None:
    delivery = await email(smtp_receiver).send(5, alert_content())
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.error is None
    [mail] = smtp_receiver.messages
    assert mail.mail_from == "monitor@example.org"
    assert mail.rcpt_tos == ["analyst@example.org", "desk@example.org"]
    assert mail.login is None
    assert mail.message["Message-ID"] == "<alert-5@example.org>"
    assert mail.message["Subject"].startswith("[monitor] New country: North Korea — ")


@pytest.mark.parametrize(
    ("code", "at", "status"),
    [
        (421, "mail", DeliveryStatus.RETRY),
        (451, "data", DeliveryStatus.RETRY),
        (452, "rcpt", DeliveryStatus.RETRY),
        (550, "data", DeliveryStatus.PERMANENT),
        (553, "mail", DeliveryStatus.PERMANENT),
    ],
)
async def test_email_reads_smtp_codes(smtp_receiver: SmtpReceiver, code: int, at: str, status: DeliveryStatus) -> None:
    # At RCPT both recipients must be refused for the message to fail.
    smtp_receiver.refuse(code, times=2 if at == "rcpt" else 1, message="Mailbox busy", at=at)  # type: ignore[arg-type]
    delivery = await email(smtp_receiver).send(5, alert_content())
    assert (delivery.status, delivery.error) == (status, f"email: {code} Mailbox busy")
    assert smtp_receiver.messages == []


async def test_email_to_some_recipients_is_delivered(smtp_receiver: SmtpReceiver) -> None:
    smtp_receiver.refuse(550, times=1, message="No such user", at="rcpt")
    delivery = await email(smtp_receiver).send(5, alert_content())
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.error == "email: refused by analyst@example.org (550)"
    assert [mail.rcpt_tos for mail in smtp_receiver.messages] == [["desk@example.org"]]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_email_logs_in_when_a_username_is_set() -> None:
    # The test server has no TLS: logging in in clear is allowed here by name.
    with SmtpReceiver(users={"monitor": "s3cret"}) as server:
        ok = await email(server, username="monitor", password="s3cret", allow_plaintext_auth=True).send(
            5, alert_content()
        )
        wrong = await email(server, username="monitor", password="nope", allow_plaintext_auth=True).send(
            6, alert_content()
        )
        anonymous = await email(server).send(7, alert_content())
        assert ok.status == DeliveryStatus.DELIVERED, ok.error
        assert [mail.login for mail in server.messages] == ["monitor"]
    assert wrong.status == DeliveryStatus.PERMANENT and wrong.error and wrong.error.startswith("email: 535")
    assert anonymous.status == DeliveryStatus.PERMANENT and anonymous.error and anonymous.error.startswith("email: 530")
    assert "s3cret" not in (wrong.error or "")


async def test_email_connection_refused_is_retried() -> None:
    with SmtpReceiver() as server:
        port = server.port
    delivery = await EmailChannel(
        EmailChannelSettings(host="127.0.0.1", port=port, sender="m@example.org", to=["a@example.org"], timeout=2)
    ).send(1, alert_content())
    assert delivery.status == DeliveryStatus.RETRY
    assert delivery.error and delivery.error.startswith("email: connection error: ")


async def test_email_starttls_required_but_not_offered_is_permanent(smtp_receiver: SmtpReceiver) -> None:
    delivery = await email(smtp_receiver, starttls=True).send(1, alert_content())
    assert delivery.status == DeliveryStatus.PERMANENT
    assert delivery.error and delivery.error.startswith("email: not supported: ")


# --- console and wiring ---------------------------------------------------------------------


async def test_console_writes_the_alert() -> None:
    stream = io.StringIO()
    delivery = await ConsoleChannel(stream).send(1, alert_content())
    assert delivery.status == DeliveryStatus.DELIVERED
    assert stream.getvalue().startswith("[monitor] New country: North Korea\n")
    stream.close()
    closed = await ConsoleChannel(stream).send(1, alert_content())
    assert closed.status == DeliveryStatus.RETRY and closed.error and closed.error.startswith("console: ValueError")


async def test_build_channels_returns_only_the_active_ones(client: httpx.AsyncClient) -> None:
    assert set(build_channels(AlertSettings(), client)) == {"console"}
    settings = AlertSettings(
        console=ConsoleChannelSettings(enabled=False),
        slack=SlackChannelSettings(webhook_url="https://hooks.slack.com/services/T/B/x"),
        email=EmailChannelSettings(host="smtp.example.org", sender="m@example.org", to=["a@example.org"]),
    )
    channels = build_channels(settings, client)
    assert set(channels) == {"slack", "email"}
    assert {name: channel.name for name, channel in channels.items()} == {"slack": "slack", "email": "email"}
    off = SlackChannelSettings(enabled=False, webhook_url="https://h.example/x")
    disabled = settings.model_copy(update={"slack": off})
    assert set(build_channels(disabled, client)) == {"email"}
