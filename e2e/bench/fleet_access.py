"""The fleet under measurement: one the benchmark starts, or one that is already running.

By default the fleet is started as ``make up`` starts it (``scripts/fleet.py up`` through the
e2e harness's ``new_fleet``: free ports, its own data folder), with the gateway's rate limits
raised out of the way and the benchmark's own OpenAI-compatible server as its LLM.

With ``BENCH_GATEWAY_URL`` set, a running fleet is used instead, found as ``make up`` describes
it: ``FLEET_DATA_DIR``, the ``*_PORT`` variables, ``FLEET_PG_PORT``, ``FLEET_ADMIN_EMAIL`` /
``FLEET_ADMIN_PASSWORD`` (else the data folder's ``secrets.json``); ``BENCH_USER_URL``,
``BENCH_CATALOG_URL``, ``BENCH_ORDER_URL`` and ``BENCH_CHAT_URL`` override the services' direct
URLs. It must have been started with raised rate limits (the variables in ``RAISED_LIMITS``:
the gateway's, and the order service's per user), or the load runs count 429s as errors; its
chat cannot be timed (its LLM is not the benchmark's).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import fleet as runner
from common_libs.testing import LlmServer

from tests.fleet import new_fleet

__all__ = ["RAISED_LIMITS", "Target", "fleet_target"]

ADMIN_EMAIL = "bench-admin@example.com"
ADMIN_PASSWORD = "bench-admin-password-1"
# Far above what two cores can serve: the benchmark measures the fleet, not nginx's limiter, nor
# the services' limits per user and per account (still counted, so their cost is measured: a
# few customers place every order of the load runs).
RAISED_LIMITS = {
    "GATEWAY_RATE_LIMIT": "1000000r/s",
    "GATEWAY_RATE_BURST": "1000000",
    "GATEWAY_AUTH_RATE_LIMIT": "1000000r/s",
    "GATEWAY_AUTH_RATE_BURST": "1000000",
    "GATEWAY_ORDER_RATE_LIMIT": "1000000r/s",
    "GATEWAY_ORDER_RATE_BURST": "1000000",
    "ORDERS_PLACE_ORDER_LIMIT": "1000000000",
    "USERS_LOGIN_FAILURE_LIMIT": "1000000000",
}


@dataclass(frozen=True)
class Target:
    """Where everything is: the gateway, each service, the PostgreSQL server, the admin."""

    own: bool
    config: runner.FleetConfig
    gateway: str
    urls: Mapping[str, str]
    admin_email: str
    admin_password: str
    secrets: Mapping[str, str]
    llm: LlmServer | None

    def url(self, service: runner.Service) -> str:
        """The service's direct URL (not through the gateway)."""
        return self.urls[service.name]

    def port(self, service: runner.Service) -> int:
        port = urlsplit(self.url(service)).port
        assert port is not None
        return port

    def database_dsn(self, database: str) -> str:
        """A database of the fleet's PostgreSQL server, for asyncpg."""
        return f"postgresql://postgres@127.0.0.1:{self.config.pg_port}/{database}"

    def sessions(self, service: runner.Service) -> int:
        """How many sessions the service's database has had (``pg_stat_database.sessions``): a
        pool too small for its load opens and closes connections as it goes. A connection that
        stays open is counted when its backend reports, within about 10 s."""

        async def count() -> int:
            # Asked from the 'postgres' database: asking opens no session of the one counted.
            connection = await asyncpg.connect(self.database_dsn("postgres"))
            try:
                return int(
                    await connection.fetchval(
                        "SELECT sessions FROM pg_stat_database WHERE datname = $1",
                        service.database,
                    )
                )
            finally:
                await connection.close()

        return asyncio.run(count())

    def service_env(self, service: runner.Service) -> dict[str, str]:
        """The environment the fleet gives this service (secrets included when known)."""
        return {**self.config.environ, **runner.service_env(self.config, service, self.secrets)}

    def service_command(self, service: runner.Service, port: int) -> list[str]:
        """The fleet's uvicorn command line for this service, on another port."""
        ports = {**self.config.service_ports, service.name: port}
        return runner.service_command(replace(self.config, service_ports=ports), service)


def _secrets(config: runner.FleetConfig) -> dict[str, str]:
    path = config.data_dir / "secrets.json"
    return dict(json.loads(path.read_text())) if path.exists() else {}


def _running(environ: Mapping[str, str]) -> Target:
    config = runner.FleetConfig.from_environ(environ)
    secrets = _secrets(config)
    password = config.admin_password or secrets.get("admin_password")
    if not password:
        raise RuntimeError("set FLEET_ADMIN_PASSWORD (no secrets.json in FLEET_DATA_DIR)")
    overrides = {
        runner.USERS.name: "BENCH_USER_URL",
        runner.CATALOG.name: "BENCH_CATALOG_URL",
        runner.ORDERS.name: "BENCH_ORDER_URL",
        runner.CHAT.name: "BENCH_CHAT_URL",
    }
    urls = {
        service.name: environ.get(overrides[service.name]) or config.url(service)
        for service in runner.SERVICES
    }
    return Target(
        own=False,
        config=config,
        gateway=environ["BENCH_GATEWAY_URL"].rstrip("/"),
        urls=urls,
        admin_email=config.admin_email,
        admin_password=password,
        secrets=secrets,
        llm=None,
    )


@contextmanager
def fleet_target() -> Iterator[Target]:
    """The fleet to measure, for the duration of the block (a started one is then stopped)."""
    if os.environ.get("BENCH_GATEWAY_URL"):
        yield _running(os.environ)
        return
    log_dir = Path(tempfile.mkdtemp(prefix="bench-llm-"))
    llm = LlmServer(log_path=log_dir / "llm-server.log", api_key="bench-fake-llm-key").start()
    try:
        extra = {
            "FLEET_ADMIN_EMAIL": ADMIN_EMAIL,
            "FLEET_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "OPENAI_BASE_URL": llm.base_url,
            "OPENAI_API_KEY": "bench-fake-llm-key",
            **RAISED_LIMITS,
        }
        started = new_fleet(extra)
        try:
            started.start()
            config = runner.FleetConfig.from_environ(started.env)
            yield Target(
                own=True,
                config=config,
                gateway=started.gateway,
                urls={service.name: config.url(service) for service in runner.SERVICES},
                admin_email=ADMIN_EMAIL,
                admin_password=ADMIN_PASSWORD,
                secrets=_secrets(config),
                llm=llm,
            )
        finally:
            if started.process is not None:
                started.stop()
            started.remove()
    finally:
        llm.stop()
        shutil.rmtree(log_dir, ignore_errors=True)
