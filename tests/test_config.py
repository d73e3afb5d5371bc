"""Settings: the documented keys work as written; bad input refuses with the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, load_settings, parse_duration

ISSUE_EXAMPLE = """
database_url: sqlite:///data/monitor.db      # or postgresql+psycopg://...
seeds_dir: seeds
poll:
  interval: 15m
feeds:
  - name: Example Wire
    url: https://news.example/rss.xml
    interval: 5m
    tags: [wire]
feeds_file: {feeds_file}
alerts:
  console: {{enabled: true}}
  slack: {{webhook_url: "${{SLACK_WEBHOOK_URL}}"}}
  email:
    host: smtp.example.org
    port: 587
    starttls: true
    username: "${{SMTP_USER:-}}"
    password: "${{SMTP_PASSWORD:-}}"
    from: monitor@example.org
    to: [analysts@example.org]
"""


def write(tmp_path: Path, text: str, name: str = "monitor.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_example_loads_as_written(tmp_path: Path) -> None:
    feeds = write(tmp_path, "- name: Second\n  url: http://second.example/feed\n", "feeds.yaml")
    path = write(tmp_path, ISSUE_EXAMPLE.format(feeds_file=feeds))
    settings = load_settings(path, {"SLACK_WEBHOOK_URL": "https://hooks.example/T/B/Xy9TopSecretToken"})
    assert settings.poll.interval == 900
    assert [(f.name, f.interval, f.tags) for f in settings.feeds] == [
        ("Example Wire", 300, ["wire"]),
        ("Second", None, []),
    ]
    assert settings.alerts.slack.active
    assert settings.alerts.slack.webhook_url.get_secret_value() == "https://hooks.example/T/B/Xy9TopSecretToken"
    assert "Xy9TopSecretToken" not in repr(settings) and "Xy9TopSecretToken" not in settings.model_dump_json()
    email = settings.alerts.email
    assert (email.host, email.port, email.starttls, email.sender, email.to) == (
        "smtp.example.org",
        587,
        True,
        "monitor@example.org",
        ["analysts@example.org"],
    )
    assert email.username is None and email.password is None  # ${VAR:-} empty means "no login"


def test_an_unset_variable_without_default_names_itself(tmp_path: Path) -> None:
    path = write(tmp_path, ISSUE_EXAMPLE.format(feeds_file=write(tmp_path, "[]", "f.yaml")))
    with pytest.raises(ConfigError, match=r"\$\{SLACK_WEBHOOK_URL\} is not set"):
        load_settings(path, {})


def test_defaults_apply_and_set_values_win(tmp_path: Path) -> None:
    path = write(tmp_path, "database_url: ${DB:-sqlite:///fallback.db}\n")
    assert load_settings(path, {}).database_url.get_secret_value() == "sqlite:///fallback.db"
    assert (
        load_settings(path, {"DB": "postgresql://u@h/db"}).database_url.get_secret_value()
        == "postgresql+psycopg://u@h/db"
    )


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("poll:\n  intervall: 5m\n", "poll.intervall: unknown key"),
        ("colour: red\n", "colour: unknown key"),
        ("poll:\n  interval: soon\n", "poll.interval: Value error, 'soon' is not a duration"),
        (
            "alerts:\n  email: {host: h, port: abc, from: a@b.c, to: [x@y.z]}\n",
            "alerts.email.port: Input should be a valid integer",
        ),
        (
            "alerts:\n  email: {host: h, ssl: true, starttls: true, from: a@b.c, to: [x@y.z]}\n",
            "starttls and ssl are exclusive",
        ),
        (
            "feeds:\n  - name: A\n    url: ftp://a.example/feed\n",
            "feeds.0.url: Value error, 'ftp://a.example/feed' is not an http(s) URL",
        ),
        (
            "feeds:\n  - {name: A, url: 'http://a.example/1'}\n  - {name: A, url: 'http://a.example/2'}\n",
            "feed name 'A' appears twice",
        ),
        ("database_url: mysql://x\n", "database_url: Value error, use sqlite"),
        ("poll: [1, 2]\n", "poll: Input should be a valid dictionary"),
        ("- just\n- a list\n", "must be a mapping"),
        ("poll: {interval: 5m\n", "is not valid YAML"),
    ],
)
def test_bad_config_refuses_with_key_path_and_reason(tmp_path: Path, yaml_text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, yaml_text), {})
    assert message in str(caught.value)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.yaml", {})


def test_monitor_config_variable_chooses_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "poll: {interval: 42}\n")
    assert load_settings(None, {"MONITOR_CONFIG": str(path)}).poll.interval == 42


def test_opml_feeds_file(tmp_path: Path) -> None:
    opml = write(
        tmp_path,
        """<?xml version="1.0"?><opml version="2.0"><head><title>subs</title></head><body>
        <outline text="World"><outline type="rss" text="Wire One" xmlUrl="https://one.example/rss"/>
        <outline type="rss" title="Wire Two" text="two" xmlUrl="https://two.example/atom"
                 category="/security"/></outline>
        </body></opml>""",
        "subs.opml",
    )
    settings = load_settings(write(tmp_path, f"feeds_file: {opml}\n"), {})
    assert [(f.name, f.url, f.tags) for f in settings.feeds] == [
        ("Wire One", "https://one.example/rss", ["World"]),
        ("Wire Two", "https://two.example/atom", ["World", "security"]),
    ]


@pytest.mark.parametrize(
    ("given", "seconds"),
    [
        (30, 30.0),
        ("30", 30.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1s", 1.0),
        ("250ms", 0.25),
    ],
)
def test_durations(given: object, seconds: float) -> None:
    assert parse_duration(given) == seconds


@pytest.mark.parametrize("given", ["0", "-5s", "5 parsecs", "", True])
def test_bad_durations(given: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(given)


def test_the_committed_example_config_is_valid() -> None:
    repo = Path(__file__).resolve().parents[1]
    import os

    cwd = os.getcwd()
    os.chdir(repo)
    try:
        settings = load_settings(repo / "config" / "monitor.yaml", {})
    finally:
        os.chdir(cwd)
    assert settings.alerts.console.enabled
    assert not settings.alerts.slack.active and not settings.alerts.email.active
    assert settings.database_url.get_secret_value() == "sqlite:///data/monitor.db"
    assert len(settings.feeds) >= 1


def test_feeds_file_is_found_beside_the_config_file(tmp_path: Path) -> None:
    folder = tmp_path / "mounted"
    folder.mkdir()
    write(folder, "- name: Beside\n  url: http://beside.example/feed\n", "extra-feeds.yaml")
    path = write(folder, "feeds_file: conf/extra-feeds.yaml\n")
    assert [f.name for f in load_settings(path, {}).feeds] == ["Beside"]
