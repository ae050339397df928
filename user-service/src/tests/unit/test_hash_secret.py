"""python -m app.security.hash_secret: the operator's tool for USERS_SERVICE_CLIENTS values."""

from __future__ import annotations

import os
import subprocess
import sys

from argon2 import PasswordHasher

from tests.conftest import SERVICE_ROOT


def test_cli_prints_an_argon2id_hash_of_stdin_without_echoing_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.security.hash_secret"],
        input="client-secret-42\n",
        capture_output=True,
        text=True,
        cwd=SERVICE_ROOT,
        env={**os.environ, "USERS_ARGON2_TIME_COST": "1", "USERS_ARGON2_MEMORY_COST_KIB": "1024"},
        check=True,
    )

    printed = result.stdout.strip()
    assert printed.startswith("$argon2id$")
    assert PasswordHasher().verify(printed, "client-secret-42")
    assert "client-secret-42" not in result.stdout + result.stderr


def test_cli_refuses_an_empty_secret() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.security.hash_secret"],
        input="",
        capture_output=True,
        text=True,
        cwd=SERVICE_ROOT,
        check=False,
    )

    assert result.returncode == 2
    assert result.stdout == ""
