"""`monitor web` on a real database: password hashes for web.users and API tokens for scripts."""

from __future__ import annotations

from pathlib import Path

import yaml
from argon2 import PasswordHasher
from click.testing import CliRunner, Result
from sqlalchemy import select

from monitor.cli import main
from monitor.config import Settings
from monitor.store.db import make_engine, make_session_factory
from monitor.store.models import ApiToken, utcnow
from monitor.store.tokens import digest, token_owner

REPO = Path(__file__).resolve().parents[1]


def config(tmp_path: Path, database_url: str) -> Path:
    settings = {"database_url": database_url, "seeds_dir": str(REPO / "seeds"), "cache_dir": str(tmp_path / "cache")}
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_web_commands_explain_themselves() -> None:
    assert "hash-password" in invoke("web", "--help").output
    for command in (["create"], ["list"], ["revoke"]):
        result = invoke("web", "token", *command, "--help")
        assert result.exit_code == 0 and "--config" in result.output, command


def test_hash_password_reads_one_line_and_prints_an_argon2_hash_that_config_accepts() -> None:
    result = invoke("web", "hash-password", input="correct horse battery\nignored second line\n")
    assert result.exit_code == 0, result.output
    hashed = result.stdout.strip()
    assert hashed.startswith("$argon2id$") and "correct horse" not in result.output
    assert PasswordHasher().verify(hashed, "correct horse battery")
    settings = Settings.model_validate({"web": {"users": [{"name": "ana", "password_hash": hashed}]}})
    assert settings.web.users[0].password_hash.get_secret_value() == hashed


def test_hash_password_refuses_an_empty_password() -> None:
    result = CliRunner().invoke(main, ["web", "hash-password"], input="\n")
    assert result.exit_code == 2 and "empty" in result.output


def test_token_create_prints_it_once_stores_only_its_hash_list_and_revoke(tmp_path: Path, database_url: str) -> None:
    path = config(tmp_path, database_url)
    created = invoke("web", "token", "create", "misp-sync", "--config", str(path))
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert len(secret) > 40 and "\n" not in secret

    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    try:
        with sessions() as session:
            row = session.scalar(select(ApiToken).where(ApiToken.name == "misp-sync"))
            assert row is not None and row.token_hash == digest(secret) and secret not in row.token_hash
        with sessions.begin() as session:
            assert token_owner(session, secret, utcnow()) == "misp-sync"

        again = CliRunner().invoke(main, ["web", "token", "create", "misp-sync", "--config", str(path)])
        assert again.exit_code == 1 and "revoke it first" in again.output

        listed = invoke("web", "token", "list", "--config", str(path))
        assert listed.exit_code == 0 and "misp-sync" in listed.output and secret not in listed.output

        revoked = invoke("web", "token", "revoke", "misp-sync", "--config", str(path))
        assert revoked.exit_code == 0 and "revoked" in revoked.output
        with sessions.begin() as session:
            assert token_owner(session, secret, utcnow()) is None
        unknown = CliRunner().invoke(main, ["web", "token", "revoke", "misp-sync", "--config", str(path)])
        assert unknown.exit_code == 1

        # The name is free again; the new token is another one, the old stays dead.
        renewed = invoke("web", "token", "create", "misp-sync", "--config", str(path)).stdout.strip()
        assert renewed != secret
        with sessions.begin() as session:
            assert token_owner(session, renewed, utcnow()) == "misp-sync"
            assert token_owner(session, secret, utcnow()) is None
    finally:
        engine.dispose()


def test_a_token_name_with_terminal_controls_is_refused(tmp_path: Path, database_url: str) -> None:
    path = config(tmp_path, database_url)
    result = CliRunner().invoke(main, ["web", "token", "create", "bad\x1b[2Jname", "--config", str(path)])
    assert result.exit_code == 2 and "\x1b" not in result.output
