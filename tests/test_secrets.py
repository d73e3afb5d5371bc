"""Secrets stay secret in everything shown to people: check-config, configuration errors, logs and
the operator alerts about failing feeds; ${VAR} values arrive whole, whatever they contain."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select
from support.feedserver import FeedServer
from support.rows import add_feed, refresh_feed

from monitor.cli import main
from monitor.config import ConfigError, PollSettings, Settings, load_settings
from monitor.ingest.fetch import FetchLimits, make_http_client
from monitor.logs import HumanFormatter, JsonFormatter, configure_logging
from monitor.redact import redact_text, redact_url
from monitor.store.db import SessionFactory
from monitor.store.models import Alert

DB_PASSWORD = "Db-Pa55word-never-shown"
WEBHOOK_TOKEN = "wh-token-never-shown"
API_KEY = "feed-api-key-never-shown"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def check_config(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check-config", "--config", str(path)])
    return result.exit_code, result.output


# --- redaction --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:pw@news.example/rss?token=abc&page=2", "https://***@news.example/rss?token=***&page=2"),
        ("https://TOKEN123@git.example/feed.atom", "https://***@git.example/feed.atom"),
        (
            "https://news.example/rss?apikey=a&X-Api-Key=b&q=election",
            "https://news.example/rss?apikey=***&X-Api-Key=***&q=election",
        ),
        ("https://news.example/cb#access_token=zz", "https://news.example/cb#access_token=***"),
        ("https://news.example/plain.xml?page=3", "https://news.example/plain.xml?page=3"),
    ],
)
def test_urls_shown_to_people_lose_their_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_database_url_keeps_its_user_and_hides_its_password() -> None:
    assert redact_url(f"postgresql+psycopg://monitor:{DB_PASSWORD}@db.example:5432/m", keep_user=True) == (
        "postgresql+psycopg://monitor:***@db.example:5432/m"
    )
    assert DB_PASSWORD not in redact_text(f"could not connect to postgresql://monitor:{DB_PASSWORD}@db/m: refused")


# --- check-config and configuration errors ----------------------------------------------------


def test_check_config_masks_the_database_password_and_feed_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        yaml.safe_dump(
            {
                "database_url": f"postgresql+psycopg://monitor:{DB_PASSWORD}@db.example:5432/monitor",
                "feeds": [{"name": "Keyed", "url": f"https://news.example/rss?api_key={API_KEY}"}],
                "alerts": {"webhook": {"url": f"https://hooks.example/in/{WEBHOOK_TOKEN}", "secret": "s" * 16}},
            }
        ),
    )
    code, output = check_config(path)
    assert code == 0, output
    for secret in (DB_PASSWORD, API_KEY, WEBHOOK_TOKEN):
        assert secret not in output
    shown = json.loads(output[: output.rindex("}") + 1])
    # Still useful: which server, as whom, which feed.
    assert shown["database_url"] == "postgresql+psycopg://monitor:***@db.example:5432/monitor"
    assert shown["feeds"][0]["url"] == "https://news.example/rss?api_key=***"


def test_the_settings_repr_never_holds_the_database_password() -> None:
    configured = Settings.model_validate({"database_url": f"postgresql://monitor:{DB_PASSWORD}@db/m"})
    assert DB_PASSWORD not in repr(configured) and DB_PASSWORD not in str(configured)
    assert configured.database_url.get_secret_value() == f"postgresql+psycopg://monitor:{DB_PASSWORD}@db/m"


@pytest.mark.parametrize(
    ("document", "key", "secret"),
    [
        (
            f"alerts: {{webhook: {{url: 'ftp://hooks.example/in/{WEBHOOK_TOKEN}', secret: s}}}}\n",
            "alerts.webhook.url",
            WEBHOOK_TOKEN,
        ),
        (
            f"alerts: {{slack: {{webhook_url: 'hooks.example/services/{WEBHOOK_TOKEN}'}}}}\n",
            "alerts.slack.webhook_url",
            WEBHOOK_TOKEN,
        ),
        (f"database_url: mysql://user:{DB_PASSWORD}@db.example/monitor\n", "database_url", DB_PASSWORD),
        (
            f"feeds: [{{name: Keyed, url: 'htp://user:{DB_PASSWORD}@news.example/rss?api_key={API_KEY}'}}]\n",
            "feeds.0.url",
            API_KEY,
        ),
        ("alerts: {email: {password: [1, 2], host: h}}\n", "alerts.email.password", "[1, 2]"),
    ],
)
def test_configuration_errors_name_the_key_and_never_echo_a_secret(
    tmp_path: Path, document: str, key: str, secret: str
) -> None:
    code, output = check_config(write(tmp_path, document))
    assert code == 2
    assert key in output
    assert secret not in output and DB_PASSWORD not in output


def test_environment_values_arrive_whole_and_cannot_add_keys(tmp_path: Path) -> None:
    # Unquoted on purpose: substituted into the text before parsing, " #" started a comment and a
    # newline started a new key.
    path = write(
        tmp_path,
        "alerts:\n"
        "  email:\n"
        "    host: smtp.example\n"
        "    port: 587  # ${NOT_SET_ANYWHERE}\n"
        "    starttls: true\n"
        "    username: ${SMTP_USER}\n"
        "    password: ${SMTP_PASSWORD}\n"
        "    from: monitor@example.org\n"
        "    to: [desk@example.org]\n",
    )
    environ = {"SMTP_USER": "monitor\nlog_level: DEBUG", "SMTP_PASSWORD": "hunter2 #and-the-rest"}
    settings = load_settings(path, environ)
    email = settings.alerts.email
    assert email.password is not None and email.password.get_secret_value() == "hunter2 #and-the-rest"
    assert email.username == "monitor\nlog_level: DEBUG"
    assert settings.log_level == "INFO"
    assert email.port == 587


def test_an_unset_variable_is_still_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\$\{SMTP_PASSWORD\} is not set"):
        load_settings(write(tmp_path, "alerts: {email: {password: '${SMTP_PASSWORD}'}}\n"), {})


# --- the operator alert about a failing feed --------------------------------------------------


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_http_client(FetchLimits.from_settings(PollSettings(timeout="5s"))) as http:
        yield http


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        yield running


async def test_a_failing_feeds_alert_never_carries_its_api_key(
    sqlite_sessions: SessionFactory, feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    feed_server.set_response("/feed.xml", 410)
    host = feed_server.base_url.removeprefix("http://")
    url = f"http://reader:{DB_PASSWORD}@{host}/feed.xml?api_key={API_KEY}"
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    feed_id = add_feed(sqlite_sessions, "Keyed wire", url, next_poll_at=now)
    poll = PollSettings(timeout="5s", failing_alert_after="1s", parse_workers=0)
    await refresh_feed(sqlite_sessions, client, feed_id, poll, now, alert_channels=["slack"])
    result = await refresh_feed(sqlite_sessions, client, feed_id, poll, now + timedelta(seconds=5), ["slack"])
    assert result.alert == "failing"
    # The server was asked with the key: only what people see is masked.
    assert feed_server.requests_for("/feed.xml")[0].target == f"/feed.xml?api_key={API_KEY}"
    with sqlite_sessions() as session:
        (alert,) = session.scalars(select(Alert))
    shown = json.dumps(alert.payload)
    assert API_KEY not in shown and DB_PASSWORD not in shown
    assert alert.payload["article_url"] == f"http://***@{host}/feed.xml?api_key=***"


# --- logs -------------------------------------------------------------------------------------


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("monitor.test", logging.WARNING, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


@pytest.mark.parametrize("formatter", [HumanFormatter(), JsonFormatter()])
def test_logs_mask_credentials_in_urls_and_drop_terminal_controls(formatter: logging.Formatter) -> None:
    record = _record(
        f"fetch failed for https://u:{DB_PASSWORD}@news.example/rss?token={API_KEY} \x1b]0;owned\x07\x1b[2J",
        url=f"https://news.example/rss?api_key={API_KEY}",
        error="fetch: 500 \x9b31m\u202egnp.exe",
    )
    line = formatter.format(record)
    assert DB_PASSWORD not in line and API_KEY not in line
    assert not any(ch in line for ch in "\x1b\x07\x9b\u202e")


def test_a_terminal_gets_the_human_format_and_it_stays_one_line_per_record() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    configure_logging("INFO", stream=stream)
    try:
        logging.getLogger("monitor.test").warning("title: %s", "first line\nforged: second line\r\x1b[1A")
    finally:
        logging.getLogger().handlers.clear()
    assert stream.getvalue().count("\n") == 1 and "\x1b" not in stream.getvalue()
