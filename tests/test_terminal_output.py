"""What feeds write reaches a terminal as text: Rich markup in a feed's name, URL or error is
printed as written (never parsed: "[/]" used to crash `monitor feeds`, "[link=...]" made a
hyperlink), and ESC, BEL and bidirectional overrides never reach the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import update

from monitor.store.db import make_engine, make_session_factory, upgrade
from monitor.store.models import Feed
from monitor.terminal import cell, has_unsafe, strip_controls

# The real CLI in a process of its own: the full suite runs them, the fast tier does not.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# Short enough that the 200-column table never folds them.
HOSTILE_NAME = "W [/] [b]X[/b]"
HOSTILE_URL = "http://127.0.0.1:9/f?x=[link=https://e.example/]c[/link]"
HOSTILE_ERROR = "500 \x1b]8;;https://e.example/\x07c\x1b]8;;\x07 \x1b[2J\x07\u202etxt.exe"


def run_cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    # A terminal as Rich sees one (colours and hyperlinks on), whatever runs the tests.
    env = {**os.environ, "TTY_COMPATIBLE": "1", "FORCE_COLOR": "1", "COLUMNS": "400", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args, "--config", str(config)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_monitor_feeds_prints_hostile_feed_text_as_text(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'terminal.db'}"
    config = tmp_path / "monitor.yaml"
    config.write_text(
        yaml.safe_dump({"database_url": database, "feeds": [{"name": HOSTILE_NAME, "url": HOSTILE_URL}]}),
        encoding="utf-8",
    )
    assert run_cli("feeds", config=config).returncode == 0  # creates the feed row
    # The error as a feed server's answer would leave it on the row.
    engine = make_engine(database)
    upgrade(engine)
    with make_session_factory(engine).begin() as session:
        session.execute(update(Feed).values(last_error=HOSTILE_ERROR, consecutive_errors=3))
    engine.dispose()

    shown = run_cli("feeds", config=config)
    assert shown.returncode == 0, shown.stderr  # before: rich.errors.MarkupError on "[/]"
    output = shown.stdout
    assert HOSTILE_NAME in output and HOSTILE_URL in output
    assert "\x1b]8;" not in output  # no terminal hyperlink
    assert "\x07" not in output and "\x1b[2J" not in output and "\u202e" not in output
    assert "txt.exe" in output


def test_strip_controls_keeps_the_words_and_drops_what_drives_a_terminal() -> None:
    assert strip_controls("a\x1b[31mred\x1b[0m\x07 b\u202ec\tTab") == "a[31mred[0m b c Tab".replace(" c", "c")
    assert strip_controls("line one\nline two") == "line one line two"
    assert strip_controls("tb\x00\n  at x", keep_newlines=True) == "tb\n  at x"
    assert not has_unsafe(strip_controls("".join(chr(code) for code in range(0, 0x250))))
    assert cell("[link=https://x]y[/link]").plain == "[link=https://x]y[/link]"
