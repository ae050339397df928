"""Integration fixtures: one migrated database per test session, the app with its lifespan
(its outbox relay publishing to the session's NATS server).

Tokens come from ``TestTokenIssuer``, which stands in for user-service: real EdDSA tokens with
the fleet's claims, verified by the app against the issuer's public key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from alembic.config import Config
from common_libs import migrations
from common_libs.auth import TokenVerifier
from common_libs.testing import NatsServer, PostgresServer, TestTokenIssuer
from common_libs.testing.app_checks import asgi_client
from common_libs.testing.db_checks import create_migrated_database
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.config import Settings
from app.main import create_app
from tests.conftest import make_settings

SERVICE_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration, pointed at ``database_url``."""
    return migrations.alembic_config(SERVICE_ROOT / "alembic.ini", database_url)


def integration_settings(database_url: str, nats_url: str, **overrides: object) -> Settings:
    """Settings of an app under test: a pool big enough for the storm tests, short TTLs allowed,
    events relayed to ``nats_url``.

    The sweeper waits an hour between sweeps unless a test asks for a faster one, so that only
    the tests about expiry see reservations released behind their back.
    """
    values: dict[str, object] = {
        "database_url": database_url,
        "nats_url": nats_url,
        "database_pool_size": 20,
        "database_max_overflow": 60,
        "reservation_min_ttl_seconds": 1,
        "reservation_sweep_interval_seconds": 3600,
        **overrides,
    }
    return make_settings(**values)


@pytest.fixture(scope="session")
def database_url(postgres_server: PostgresServer) -> str:
    """A fresh database for this session, migrated to the newest revision."""
    return create_migrated_database(
        postgres_server, "catalog_service_test", alembic_ini=SERVICE_ROOT / "alembic.ini"
    )


@pytest.fixture(scope="session")
def issuer() -> TestTokenIssuer:
    """Stands in for user-service: signs access tokens and publishes the matching JWKS."""
    return TestTokenIssuer()


def trust_issuer(app: FastAPI, issuer: TestTokenIssuer) -> None:
    """Make a started app verify tokens with ``issuer``'s public key."""
    app.state.token_verifier = TokenVerifier(
        issuer.key_source(), issuer=issuer.issuer, audience=issuer.audience
    )


@pytest.fixture(scope="session")
async def app(
    database_url: str, nats_server: NatsServer, issuer: TestTokenIssuer
) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running (engine, clients, sweeper, relay), trusting ``issuer``."""
    application = create_app(integration_settings(database_url, nats_server.url))
    async with application.router.lifespan_context(application):
        trust_issuer(application, issuer)
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client bound to the running app; each problem answer must have a type the
    operation documents for its status (``problem_type_hooks``)."""
    async with asgi_client(app) as http:
        yield http


@pytest.fixture(scope="session")
def admin_headers(issuer: TestTokenIssuer) -> dict[str, str]:
    """``Authorization`` of an admin."""
    return issuer.headers(role="admin", ttl_seconds=3600)


@pytest.fixture(scope="session")
def customer_headers(issuer: TestTokenIssuer) -> dict[str, str]:
    """``Authorization`` of a customer."""
    return issuer.headers(role="customer", ttl_seconds=3600)


@pytest.fixture(scope="session")
def service_headers(issuer: TestTokenIssuer) -> dict[str, str]:
    """``Authorization`` of another service (order-processing-service, say)."""
    return issuer.headers(role="service", ttl_seconds=3600)


@pytest.fixture(scope="session")
async def db_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A separate engine for tests that inspect or prepare rows directly."""
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Report how many requests schemathesis generated (for the closing note of a run)."""
    from tests.integration.test_schemathesis import SCHEMATHESIS_CASES

    cases = config.stash.get(SCHEMATHESIS_CASES, None)
    if cases:
        terminalreporter.write_line(f"schemathesis: {cases[0]} generated cases")
