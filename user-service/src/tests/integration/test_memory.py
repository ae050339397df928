"""A real process gives each password hash's memory back: logins do not make it grow."""

from __future__ import annotations

import asyncio
import platform
import re
import sys
from pathlib import Path

import httpx
import pytest
from common_libs.testing import ServerProcess, free_port

from tests.integration.conftest import SERVICE_ROOT
from tests.support.users import login, register

# The production cost (Argon2's memory is what this is about), four hashes at once.
MEMORY_COST_KIB = 19_456
HASHES_AT_ONCE = 4


def resident_mib(pid: int) -> float:
    """VmRSS of process ``pid`` in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB$", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1)) / 1024


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="the memory of a hash is returned through glibc"
)
async def test_logins_leave_resident_memory_under_one_hash_worth_of_growth(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    env = {
        "USERS_DATABASE_URL": database_url,
        "USERS_ENVIRONMENT": "test",
        "USERS_LOG_JSON": "false",
        "USERS_SIGNING_KEY_FILE": str(tmp_path / "keys" / "signing-key.pem"),
        "USERS_ARGON2_TIME_COST": "2",
        "USERS_ARGON2_MEMORY_COST_KIB": str(MEMORY_COST_KIB),
        "USERS_ARGON2_PARALLELISM": "1",
        "USERS_PASSWORD_HASH_CONCURRENCY": str(HASHES_AT_ONCE),
        # Eight logins of each account at once: each takes one of the account's login attempts
        # until it succeeds, and more than the limit at once would be refused.
        "USERS_LOGIN_FAILURE_LIMIT": "1000",
    }
    base_url = f"http://127.0.0.1:{port}"
    with ServerProcess(
        argv,
        env=env,
        cwd=SERVICE_ROOT,
        log_path=tmp_path / "service.log",
        ready_url=base_url + "/ready",
    ) as server:
        assert server.process is not None
        pid = server.process.pid
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            users = [await register(client) for _ in range(HASHES_AT_ONCE)]
            await login(client, users[0]["email"])  # anything made once, at the first login
            before = resident_mib(pid)
            # Hashes run in several worker threads at once (each glibc thread arena its own).
            await asyncio.gather(
                *(login(client, users[i % len(users)]["email"]) for i in range(8 * HASHES_AT_ONCE))
            )
            after = resident_mib(pid)

    # Kept blocks would add a whole hash's memory (19 MiB) per thread that hashed.
    assert after - before < MEMORY_COST_KIB / 1024, f"RSS {before:.1f} -> {after:.1f} MiB"
