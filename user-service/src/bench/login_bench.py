"""Login throughput of one user-service process (uvicorn) on a throwaway PostgreSQL.

    .venv/bin/python -m bench.login_bench [--concurrency 8] [--duration 10] [--time-cost 2] ...

It starts PostgreSQL from the local server binaries (or uses TEST_DATABASE_URL), migrates a fresh
database, starts the service as a uvicorn process with the given Argon2 parameters, registers a
few users, then logs in with the password grant from ``--concurrency`` clients for
``--duration`` seconds. It prints logins per second, latencies, and the time an unknown email
takes next to a wrong password (they should match).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from alembic import command
from alembic.config import Config
from common_libs.testing import (
    PostgresServer,
    ServerProcess,
    create_database,
    free_port,
    start_postgres,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.security.signing_keys import private_key_pem

SERVICE_ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "benchmark password 1"  # noqa: S105 - a throwaway account's password


@contextmanager
def postgres() -> Iterator[PostgresServer]:
    """TEST_DATABASE_URL's server, or a throwaway local one."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield PostgresServer.from_url(url)
        return
    with start_postgres() as server:
        yield server


def migrated_database(server: PostgresServer) -> str:
    """A fresh database at the newest revision."""
    url = create_database(server, "user_service_bench")
    config = Config(str(SERVICE_ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    return url


async def register_users(http: httpx.AsyncClient, count: int) -> list[str]:
    """Register ``count`` users and return their emails."""
    emails = [f"bench.{uuid.uuid4().hex[:10]}@example.com" for _ in range(count)]
    for email in emails:
        response = await http.post(
            "/users", json={"email": email, "password": PASSWORD, "full_name": "Bench"}
        )
        response.raise_for_status()
    return emails


async def login_loop(
    http: httpx.AsyncClient, email: str, deadline: float, latencies: list[float]
) -> int:
    """Log in again and again until ``deadline``; return how many logins succeeded."""
    done = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        response = await http.post("/auth/token", data={"username": email, "password": PASSWORD})
        latencies.append(time.perf_counter() - started)
        if response.status_code == 200:
            done += 1
    return done


async def failure_latencies(
    http: httpx.AsyncClient, known_email: str, rounds: int
) -> tuple[float, float]:
    """Median times of a wrong password and of an unknown email, measured alternately."""
    samples: dict[str, list[float]] = {known_email: [], "nobody@example.com": []}
    for _ in range(rounds):
        for username, times in samples.items():
            started = time.perf_counter()
            response = await http.post(
                "/auth/token", data={"username": username, "password": "wrong password"}
            )
            times.append(time.perf_counter() - started)
            assert response.status_code == 401
    wrong_password, unknown_email = (statistics.median(times) for times in samples.values())
    return wrong_password, unknown_email


async def measure(base_url: str, args: argparse.Namespace) -> None:
    """Run the load and print the figures."""
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        emails = await register_users(http, args.concurrency)
        warm_up = time.perf_counter() + 1.0
        await asyncio.gather(*(login_loop(http, e, warm_up, []) for e in emails))
        latencies: list[float] = []
        started = time.perf_counter()
        counts = await asyncio.gather(
            *(login_loop(http, e, started + args.duration, latencies) for e in emails)
        )
        elapsed = time.perf_counter() - started
        wrong_password, unknown_email = await failure_latencies(http, emails[0], 40)
    quantiles = statistics.quantiles(latencies, n=100)
    print(f"logins:               {sum(counts)} in {elapsed:.1f} s")
    print(f"logins per second:    {sum(counts) / elapsed:.1f}")
    print(f"latency p50 / p95:    {quantiles[49] * 1000:.0f} ms / {quantiles[94] * 1000:.0f} ms")
    print(
        f"failed login median:  wrong password {wrong_password * 1000:.1f} ms, "
        f"unknown email {unknown_email * 1000:.1f} ms"
    )


def main() -> int:
    """Parse the options, start everything, measure, stop everything."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--time-cost", type=int, default=2)
    parser.add_argument("--memory-kib", type=int, default=19_456)
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--hash-concurrency", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    print(
        f"argon2id t={args.time_cost} m={args.memory_kib} KiB p={args.parallelism}; "
        f"{args.hash_concurrency} hashes at once; one uvicorn process; "
        f"{args.concurrency} concurrent clients; {os.cpu_count()} CPUs"
    )
    with postgres() as server, tempfile.TemporaryDirectory() as workdir:
        database_url = migrated_database(server)
        port = free_port()
        env = {
            "USERS_ENVIRONMENT": "test",
            "USERS_DATABASE_URL": database_url,
            "USERS_SIGNING_KEY_PEM": private_key_pem(Ed25519PrivateKey.generate()).decode(),
            "USERS_ARGON2_TIME_COST": str(args.time_cost),
            "USERS_ARGON2_MEMORY_COST_KIB": str(args.memory_kib),
            "USERS_ARGON2_PARALLELISM": str(args.parallelism),
            "USERS_PASSWORD_HASH_CONCURRENCY": str(args.hash_concurrency),
            "USERS_LOG_LEVEL": "WARNING",
            # The failed-login latencies below fail 40 logins of one account on purpose.
            "USERS_LOGIN_FAILURE_LIMIT": "1000000000",
        }
        argv = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        argv += ["--log-level", "warning"]
        base_url = f"http://127.0.0.1:{port}"
        with ServerProcess(
            argv,
            env=env,
            cwd=SERVICE_ROOT,
            log_path=Path(workdir) / "service.log",
            ready_url=base_url + "/ready",
        ):
            asyncio.run(measure(base_url, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
