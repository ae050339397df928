"""Integration fixtures: one migrated database per session, the app with its lifespan, clients.

Every client of the app checks each problem answer's type against the app's document
(common-libs' ``asgi_client``).

``client`` runs each test inside one outer transaction that is rolled back afterwards (every
request gets its own session on a savepoint of it); ``committing_client`` commits for real, for
tests about concurrency across connections (they use unique rows).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from alembic.config import Config
from common_libs import migrations
from common_libs.testing import NatsServer, PostgresServer, ServerProcess, free_port
from common_libs.testing.app_checks import asgi_client
from common_libs.testing.db_checks import create_migrated_database
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db.session import ReadConnect, get_db_session, get_read_connect, unit_of_work
from app.main import create_app
from app.security.hash_secret import hash_secret
from app.security.signing_keys import private_key_pem
from tests.conftest import FAST_ARGON2, SERVICE_ROOT, make_settings

ADMIN_EMAIL = "root.admin@example.com"
ADMIN_PASSWORD = "admin-password-for-tests"
PASSWORD = "correct horse battery"
SERVICE_CLIENT_ID = "order-processing-service"
SERVICE_CLIENT_SECRET = "s3rvice-secret-for-tests"


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration, pointed at ``database_url``."""
    return migrations.alembic_config(SERVICE_ROOT / "alembic.ini", database_url)


def unique_email(prefix: str = "user") -> str:
    """An email no other test uses."""
    return f"{prefix}.{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture(scope="session")
def database_url(postgres_server: PostgresServer) -> str:
    """A fresh database for this session, migrated to the newest revision."""
    return create_migrated_database(
        postgres_server, "user_service_test", alembic_ini=SERVICE_ROOT / "alembic.ini"
    )


@pytest.fixture(scope="session")
def signing_key() -> Ed25519PrivateKey:
    """The service's signing key in this session (tests sign crafted tokens with it)."""
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def service_settings(
    database_url: str, signing_key: Ed25519PrivateKey, nats_server: NatsServer
) -> dict[str, object]:
    """The settings the in-process app runs with (its relay publishes to the session's NATS)."""
    return {
        "database_url": database_url,
        "nats_url": nats_server.url,
        "signing_key_pem": private_key_pem(signing_key).decode(),
        "admin_email": ADMIN_EMAIL,
        "admin_password": ADMIN_PASSWORD,
        "service_clients": {SERVICE_CLIENT_ID: hash_secret(SERVICE_CLIENT_SECRET, make_settings())},
    }


@pytest.fixture(scope="session")
async def app(service_settings: dict[str, object]) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running (engine, keys, the bootstrapped admin)."""
    application = create_app(make_settings(**service_settings))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def connection(app: FastAPI) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction that is rolled back after the test."""
    async with app.state.engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            await transaction.rollback()


def bind_to_connection(app: FastAPI, connection: AsyncConnection) -> None:
    """Make every request of ``app`` use a savepoint of ``connection``."""

    @asynccontextmanager
    async def session_on_savepoint() -> AsyncIterator[AsyncSession]:
        async with (
            AsyncSession(
                bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            ) as session,
            unit_of_work(session),
        ):
            yield session

    async def db_session() -> AsyncIterator[AsyncSession]:
        async with session_on_savepoint() as session:
            yield session

    async def read_connect() -> ReadConnect:
        return session_on_savepoint

    app.dependency_overrides[get_db_session] = db_session
    app.dependency_overrides[get_read_connect] = read_connect


@pytest.fixture
async def client(app: FastAPI, connection: AsyncConnection) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client bound to the running app; the test's writes are rolled back."""
    bind_to_connection(app, connection)
    try:
        async with asgi_client(app) as http:
            yield http
    finally:
        app.dependency_overrides.clear()


@pytest.fixture
async def committing_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose requests commit for real (use unique rows)."""
    async with asgi_client(app) as http:
        yield http


@dataclass(frozen=True)
class RunningService:
    """A user-service uvicorn process of this session."""

    base_url: str
    server: ServerProcess


@pytest.fixture(scope="session")
def running_service(
    service_settings: dict[str, object], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    """user-service as a real uvicorn process, on the session's database and signing key."""
    port = free_port()
    env = {
        "USERS_ENVIRONMENT": "test",
        "USERS_LOG_JSON": "false",
        "USERS_DATABASE_URL": str(service_settings["database_url"]),
        "NATS_URL": str(service_settings["nats_url"]),
        "USERS_SIGNING_KEY_PEM": str(service_settings["signing_key_pem"]),
        "USERS_ADMIN_EMAIL": ADMIN_EMAIL,
        "USERS_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "USERS_SERVICE_CLIENTS": json.dumps(service_settings["service_clients"]),
        **{f"USERS_{name.upper()}": str(value) for name, value in FAST_ARGON2.items()},
    }
    argv = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("user-service") / "service.log"
    with ServerProcess(
        argv, env=env, cwd=SERVICE_ROOT, log_path=log_path, ready_url=base_url + "/ready"
    ) as server:
        yield RunningService(base_url=base_url, server=server)
