"""user-service's Dockerfile, manifests and workflow pass the fleet's repository checks.

The checks are common-libs' (common_libs.testing.service_checks lists them); this module gives them
what only this service knows, and keeps the one check that is its own: the signing key directory.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from common_libs.testing.checks import Check
from common_libs.testing.repository import Repository
from common_libs.testing.service_checks import ServiceFacts, service_checks
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.security.hash_secret import hash_secret
from app.security.signing_keys import private_key_pem
from tests.conftest import make_settings

REPOSITORY = Repository.at(Path(__file__).resolve().parents[3])
APP_UID = "10001"
# Docker Compose mounts a volume here for the generated signing key (USERS_SIGNING_KEY_FILE).
SIGNING_KEY_DIR = "/var/lib/user-service"


def secret_stand_ins(database_url: str) -> dict[str, str]:
    """Stand-ins for every key of the Secret the manifests reference, valid in production."""
    clients = {"order-processing-service": hash_secret("orders-client-secret", make_settings())}
    return {
        "USERS_DATABASE_URL": database_url,
        "USERS_SIGNING_KEY_PEM": private_key_pem(Ed25519PrivateKey.generate()).decode(),
        "USERS_ADMIN_EMAIL": "fleet.admin@example.com",
        "USERS_ADMIN_PASSWORD": "Quartz-Lantern-Orbit-2931",
        "USERS_SERVICE_CLIENTS": json.dumps(clients),
    }


FACTS = ServiceFacts(
    repository=REPOSITORY, environment_prefix="USERS_", secret_stand_ins=secret_stand_ins
)


@pytest.mark.parametrize("check", service_checks(FACTS), ids=str)
def test_repository_passes(check: Check, request: pytest.FixtureRequest) -> None:
    assert check.findings(request) == []


def _shell_commands(run_value: str) -> list[list[str]]:
    """The simple commands of a ``RUN`` in shell form, split at ``&&``, ``||`` and ``;``."""
    lexer = shlex.shlex(run_value, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for word in lexer:
        if word in {"&&", ";", "||"}:
            commands.append([])
        else:
            commands[-1].append(word)
    return [command for command in commands if command]


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
    for run in REPOSITORY.instruction_values("RUN"):
        for command in _shell_commands(run):
            installed = _installed_directories(command)
            created |= set(installed) | _made_directories(command)
            owners |= installed | _chowned(command)

    assert SIGNING_KEY_DIR in created, "the final stage does not create the signing key directory"
    assert owners.get(SIGNING_KEY_DIR) == f"{APP_UID}:{APP_UID}"
    assert REPOSITORY.instruction_values("USER") == [f"{APP_UID}:{APP_UID}"]
