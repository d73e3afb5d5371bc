"""The README stays true: every settings key and CLI command is documented, CI runs its command."""

from __future__ import annotations

import re
from pathlib import Path

import click
from pydantic import BaseModel

from monitor.cli import main
from monitor.config import Settings

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        key = field.validation_alias.choices[0] if hasattr(field.validation_alias, "choices") else name
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _keys(annotation, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def test_every_settings_key_is_in_the_readme() -> None:
    missing = [key for key in _keys(Settings) if f"`{key}`" not in README]
    assert not missing, f"README lacks settings keys: {missing}"


def test_every_cli_command_is_in_the_readme() -> None:
    def commands(group: click.Group, prefix: str = "monitor") -> list[str]:
        found = []
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                found += commands(command, f"{prefix} {name}")
            else:
                found.append(f"{prefix} {name}")
        return found

    missing = [c for c in commands(main) if f"`{c}" not in README]
    assert not missing, f"README lacks commands: {missing}"


def test_ci_runs_the_readme_test_command() -> None:
    blocks = re.findall(r"```sh\n(.*?)\n\s*```", README, re.DOTALL)
    test_command = blocks[1].strip()
    assert "pytest" in test_command
    assert test_command in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_torch_is_pinned_to_the_cpu_build_in_the_install_path() -> None:
    assert "torch==2.13.0" in (REPO / "constraints.txt").read_text()
    assert '"torch==2.13.0"' in (REPO / "pyproject.toml").read_text()
    assert "download.pytorch.org/whl/cpu" in (REPO / "Dockerfile").read_text()


def test_seeds_are_the_shared_documents_unchanged() -> None:
    shared = REPO.parent / "shared" / "seeds"
    ours = sorted(p.name for p in (REPO / "seeds").iterdir())
    assert len(ours) == 5
    if shared.is_dir():
        for name in ours:
            assert (REPO / "seeds" / name).read_bytes() == (shared / name).read_bytes()
