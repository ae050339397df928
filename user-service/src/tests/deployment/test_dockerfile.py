"""The Dockerfile passes hadolint, and its final stage prepares what the running image needs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.deployment.artifacts import (
    DOCKERFILE,
    SERVICE_ROOT,
    VENV_BIN,
    instruction_values,
    shell_commands,
)

APP_UID = "10001"
# Docker Compose mounts a volume here for the generated signing key (USERS_SIGNING_KEY_FILE).
SIGNING_KEY_DIR = "/var/lib/user-service"


def test_hadolint_finds_no_error_or_warning_in_the_dockerfile(tmp_path: Path) -> None:
    hadolint = [str(VENV_BIN / "hadolint"), "--format", "json", "--failure-threshold", "warning"]
    # HOME is empty so that no personal hadolint configuration can silence a rule.
    result = subprocess.run(
        [*hadolint, str(DOCKERFILE)],
        cwd=SERVICE_ROOT,
        env={"HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    findings = json.loads(result.stdout)
    assert [item for item in findings if item["level"] in {"error", "warning"}] == []
    assert result.returncode == 0, result.stderr


def _installed_directories(command: list[str]) -> dict[str, str]:
    """Directory -> owner ("uid:gid") of an ``install -d -o U -g G DIR...`` command."""
    if command[0] != "install" or "-d" not in command:
        return {}
    owner = {"-o": "", "-g": ""}
    directories: list[str] = []
    words = iter(command[1:])
    for word in words:
        if word in {"-o", "-g", "-m"}:
            value = next(words)
            if word in owner:
                owner[word] = value
        elif not word.startswith("-"):
            directories.append(word)
    return {directory: f"{owner['-o']}:{owner['-g']}" for directory in directories}


def _made_directories(command: list[str]) -> set[str]:
    """The directories of a ``mkdir [-p] DIR...`` command."""
    if command[0] != "mkdir":
        return set()
    return {word for word in command[1:] if not word.startswith("-")}


def _chowned(command: list[str]) -> dict[str, str]:
    """Path -> owner of a ``chown U:G PATH...`` command."""
    if command[0] != "chown":
        return {}
    words = [word for word in command[1:] if not word.startswith("-")]
    return {path: words[0] for path in words[1:]}


def test_final_stage_creates_the_signing_key_directory_for_the_app_user() -> None:
    created: set[str] = set()
    owners: dict[str, str] = {}
    for run in instruction_values("RUN"):
        for command in shell_commands(run):
            installed = _installed_directories(command)
            created |= set(installed) | _made_directories(command)
            owners |= installed | _chowned(command)

    assert SIGNING_KEY_DIR in created, "the final stage does not create the signing key directory"
    assert owners.get(SIGNING_KEY_DIR) == f"{APP_UID}:{APP_UID}"
    assert instruction_values("USER") == [f"{APP_UID}:{APP_UID}"]
