"""Integration fixtures: one migrated database and one NATS server per test session, the app with
its lifespan (its relay publishing to that server), and user-service and the catalog replaced at
the HTTP boundary by stub apps on real sockets."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.config import Config
from common_libs import migrations
from common_libs.auth import Role
from common_libs.testing import NatsServer, PostgresServer, TestTokenIssuer, UvicornThread
from common_libs.testing.app_checks import asgi_client
from common_libs.testing.db_checks import create_migrated_database
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from app.services.reconciler import Reconciler
from app.services.settlement import OrderSettlement
from tests.conftest import make_settings
from tests.support.catalog_stub import CatalogStub
from tests.support.orders import Caller
from tests.support.users_stub import UsersStub

SERVICE_ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "order-processing-service"
CLIENT_SECRET = "client-secret-for-tests"
DEADLINE_SECONDS = 1.0


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration, pointed at ``database_url``."""
    return migrations.alembic_config(SERVICE_ROOT / "alembic.ini", database_url)


@pytest.fixture(scope="session")
def database_url(postgres_server: PostgresServer) -> str:
    """A fresh database for this session, migrated to the newest revision."""
    return create_migrated_database(
        postgres_server, "order_service_test", alembic_ini=SERVICE_ROOT / "alembic.ini"
    )


@pytest.fixture(scope="session")
def issuer() -> TestTokenIssuer:
    """Signs the users' tokens and, through the users stub, the service token."""
    return TestTokenIssuer()


@pytest.fixture(scope="session")
def users_stub(issuer: TestTokenIssuer) -> UsersStub:
    """user-service's token endpoint and JWKS."""
    return UsersStub(issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


@pytest.fixture(scope="session")
def catalog(issuer: TestTokenIssuer) -> CatalogStub:
    """The catalog's reservation API."""
    return CatalogStub(issuer)


@pytest.fixture(scope="session")
def users_url(users_stub: UsersStub) -> Iterator[str]:
    """Where the users stub listens."""
    with UvicornThread(users_stub.app) as server:
        yield server.url


@pytest.fixture(scope="session")
def catalog_url(catalog: CatalogStub) -> Iterator[str]:
    """Where the catalog stub listens."""
    with UvicornThread(catalog.app) as server:
        yield server.url


@pytest.fixture(scope="session")
def service_settings(
    database_url: str, users_url: str, catalog_url: str, nats_server: NatsServer
) -> Callable[..., Settings]:
    """Settings for an app wired to the test database, broker and stubs (overrides allowed)."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "nats_url": nats_server.url,
            "jwks_url": users_url + "/auth/jwks",
            "users_url": users_url,
            "catalog_url": catalog_url,
            "service_client_id": CLIENT_ID,
            "service_client_secret": CLIENT_SECRET,
            "catalog_deadline_seconds": DEADLINE_SECONDS,
            "pending_max_age_seconds": 5,
            # Tests run reconciler passes themselves; the loop only makes its first pass.
            "reconcile_interval_seconds": 3600,
            **overrides,
        }
        return make_settings(**values)

    return build


@pytest.fixture(scope="session")
async def app(service_settings: Callable[..., Settings]) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running (engine, clients, saga and reconciler)."""
    application = create_app(service_settings())
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client bound to the running app; each problem answer must have a type the
    operation documents for its status (``problem_type_hooks``)."""
    async with asgi_client(app) as http:
        yield http


@pytest.fixture
def reconciler(app: FastAPI) -> Reconciler:
    """The running app's reconciler, to run passes on demand."""
    running: Reconciler = app.state.reconciler
    return running


@pytest.fixture
def settlement(app: FastAPI) -> OrderSettlement:
    """The running app's order settlement, to wait for its background releases."""
    running: OrderSettlement = app.state.settlement
    return running


@pytest.fixture(autouse=True)
def _healthy_stubs(catalog: CatalogStub, users_stub: UsersStub) -> Iterator[None]:
    """Every test starts and ends with well-behaved stubs."""
    yield
    catalog.heal()
    users_stub.reset()


@pytest.fixture
def make_caller(issuer: TestTokenIssuer) -> Callable[..., Caller]:
    """A new caller (a fresh user id) with a signed token of ``role``."""

    def build(role: Role = "customer") -> Caller:
        subject = str(uuid.uuid4())
        return Caller(subject, issuer.headers(subject=subject, role=role))

    return build


@pytest.fixture
def customer(make_caller: Callable[..., Caller]) -> Caller:
    """A customer of their own for this test."""
    return make_caller("customer")


@pytest.fixture
def admin(make_caller: Callable[..., Caller]) -> Caller:
    """An admin."""
    return make_caller("admin")
