"""A password never crosses without TLS unless the configuration says so by name, against a real
SMTP server (aiosmtpd) that offers no STARTTLS: the kind an attacker who strips STARTTLS from the
server's answer makes of any server."""

from __future__ import annotations

import pytest
from support.receivers import SmtpReceiver, alert_content

from monitor.alerts.email import EmailChannel
from monitor.config import EmailChannelSettings
from monitor.outbox import DeliveryStatus

PASSWORD = "smtp-password-never-in-clear"

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def settings(server: SmtpReceiver, **changes: object) -> EmailChannelSettings:
    values: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "sender": "monitor@example.org",
        "to": ["desk@example.org"],
        "username": "monitor",
        "password": PASSWORD,
        "timeout": 5,
    }
    return EmailChannelSettings(**(values | changes))


async def test_a_server_without_starttls_never_receives_the_password() -> None:
    # The defaults: starttls false, ssl false. Before, aiosmtplib's "STARTTLS when offered" logged
    # in in clear when the server offered none.
    with SmtpReceiver(users={"monitor": PASSWORD}) as server:
        delivery = await EmailChannel(settings(server)).send(1, alert_content())
        assert server.auth_attempts == []
        assert server.messages == []
    assert delivery.status == DeliveryStatus.PERMANENT
    assert delivery.error is not None and "STARTTLS" in delivery.error and "allow_plaintext_auth" in delivery.error
    assert PASSWORD not in delivery.error


async def test_starttls_true_without_a_server_offer_refuses_too() -> None:
    with SmtpReceiver(users={"monitor": PASSWORD}) as server:
        delivery = await EmailChannel(settings(server, starttls=True)).send(1, alert_content())
        assert server.auth_attempts == [] and server.messages == []
    assert delivery.status == DeliveryStatus.PERMANENT


async def test_allow_plaintext_auth_relaxes_it_by_name() -> None:
    with SmtpReceiver(users={"monitor": PASSWORD}) as server:
        delivery = await EmailChannel(settings(server, allow_plaintext_auth=True)).send(1, alert_content())
        assert delivery.status == DeliveryStatus.DELIVERED, delivery.error
        assert server.auth_attempts == [("monitor", PASSWORD)]
        assert [mail.login for mail in server.messages] == ["monitor"]


async def test_without_a_password_nothing_secret_crosses_and_mail_still_goes_out() -> None:
    with SmtpReceiver() as server:
        delivery = await EmailChannel(settings(server, username=None, password=None)).send(1, alert_content())
        assert delivery.status == DeliveryStatus.DELIVERED, delivery.error
        assert len(server.messages) == 1


def test_the_setting_is_named_and_off_by_default() -> None:
    assert EmailChannelSettings().allow_plaintext_auth is False
    assert EmailChannelSettings(username="u", password="p").requires_tls
    assert not EmailChannelSettings(username="u", password="p", allow_plaintext_auth=True).requires_tls
