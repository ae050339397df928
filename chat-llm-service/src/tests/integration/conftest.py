"""Integration fixtures: a migrated database, the service as a process, the broker's catalog
events, and the app with its lifespan (the test servers are ``tests/conftest.py``'s)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from alembic.config import Config
from common_libs import migrations
from common_libs.auth import TokenVerifier
from common_libs.testing import (
    LlmServer,
    NatsServer,
    PostgresServer,
    TestTokenIssuer,
    UvicornServer,
    eventually,
    start_nats,
)
from common_libs.testing.app_checks import asgi_client
from common_libs.testing.db_checks import create_migrated_database
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.main import create_app
from app.services.errors import StartingUp
from tests.conftest import make_settings
from tests.support.catalog_events import CatalogEvents, catalog_events
from tests.support.servers import SERVICE_ROOT, CatalogStub, OrdersStub

__all__ = [
    "SERVICE_ROOT",
    "alembic_config",
    "as_stored",
    "chat_settings",
    "read_model_ready",
    "running_app",
    "stored_product",
    "stored_products",
]


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration, pointed at ``database_url``."""
    return migrations.alembic_config(SERVICE_ROOT / "alembic.ini", database_url)


@pytest.fixture(scope="session")
def database_url(postgres_server: PostgresServer) -> str:
    """A fresh database for this session, migrated to the newest revision."""
    return create_migrated_database(
        postgres_server, "chat_service_test", alembic_ini=SERVICE_ROOT / "alembic.ini"
    )


@pytest.fixture
def fresh_database(postgres_server: PostgresServer) -> str:
    """A database of this test alone, migrated to the newest revision: no read model yet."""
    return create_migrated_database(
        postgres_server, "chat_service_fresh", alembic_ini=SERVICE_ROOT / "alembic.ini"
    )


@pytest.fixture
def own_nats() -> Iterator[NatsServer]:
    """A broker of this test alone: an empty stream, and no other app consuming from it (the
    read model's durable consumer is one per broker, whichever database its app writes to)."""
    with start_nats(prefer_docker=False) as server:
        yield server


@dataclass(frozen=True)
class RunningService:
    """The service as a uvicorn process: where it listens and where it logs."""

    url: str
    log_path: Path

    def output(self) -> str:
        """Everything the process has logged so far."""
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def service(
    database_url: str,
    fake_llm_server: LlmServer,
    catalog_server: CatalogStub,
    orders_server: OrdersStub,
    jwks_url: str,
    nats_server: NatsServer,
    tiktoken_cache_dir: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningService]:
    """The service as a real uvicorn process, configured through its environment only."""
    env = {
        "CHAT_ENVIRONMENT": "test",
        "CHAT_DATABASE_URL": database_url,
        "CHAT_JWKS_URL": jwks_url,
        "NATS_URL": nats_server.url,
        "OPENAI_BASE_URL": fake_llm_server.base_url,
        "OPENAI_API_KEY": "sk-process-key",
        "CHAT_CATALOG_URL": catalog_server.base_url,
        "CHAT_CATALOG_TIMEOUT_SECONDS": "0.5",
        "CHAT_ORDERS_URL": orders_server.base_url,
        "CHAT_DAILY_TOKEN_QUOTA": "1000000000",
        "TIKTOKEN_CACHE_DIR": tiktoken_cache_dir,
    }
    log = tmp_path_factory.mktemp("service") / "service.log"
    # The service is up once /ready answers 200 (its background start-up work is done); it
    # configures its own logs.
    process = UvicornServer(
        "app.main:create_app",
        factory=True,
        cwd=SERVICE_ROOT,
        env=env,
        log_path=log,
        ready_path="/ready",
        log_level=None,
    )
    with process:
        yield RunningService(url=process.url, log_path=log)


@pytest.fixture(scope="session")
def service_url(service: RunningService) -> str:
    """The base URL of the service process."""
    return service.url


@pytest.fixture
def fake_llm(fake_llm_server: LlmServer) -> LlmServer:
    """The test server, with no script and no recordings."""
    fake_llm_server.reset()
    return fake_llm_server


@pytest.fixture
async def catalog(catalog_server: CatalogStub) -> CatalogStub:
    """The stub catalog, empty and answering."""
    await catalog_server.reset()
    return catalog_server


@pytest.fixture
async def orders(orders_server: OrdersStub) -> AsyncIterator[OrdersStub]:
    """The stub orders service, without orders and answering (and so again after the test)."""
    await orders_server.reset()
    yield orders_server
    await orders_server.reset()


def chat_settings(
    database_url: str, fake_llm: LlmServer, catalog: CatalogStub, **overrides: object
) -> Settings:
    """Settings that point the service at the test servers."""
    values: dict[str, object] = {
        "database_url": database_url,
        "openai_base_url": fake_llm.base_url,
        "openai_api_key": "sk-test-key",
        "chat_model": "gpt-4o-mini",
        "context_window_tokens": 8192,
        "max_output_tokens": 256,
        "openai_timeout_seconds": 5.0,
        "openai_max_retries": 2,
        "daily_token_quota": 10_000_000,
        "catalog_url": catalog.base_url,
        "catalog_timeout_seconds": 0.5,
        "grounding_products": 3,
        **overrides,
    }
    return make_settings(**values)


@asynccontextmanager
async def running_app(settings: Settings, issuer: TestTokenIssuer) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running, trusting the test issuer's tokens."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        application.state.token_verifier = TokenVerifier(
            issuer.key_source(), issuer=issuer.issuer, audience=issuer.audience
        )
        yield application


@pytest.fixture(scope="session")
async def app(
    database_url: str,
    fake_llm_server: LlmServer,
    catalog_server: CatalogStub,
    orders_server: OrdersStub,
    nats_server: NatsServer,
    issuer: TestTokenIssuer,
) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running, talking to the test servers and the session's broker."""
    settings = chat_settings(
        database_url,
        fake_llm_server,
        catalog_server,
        nats_url=nats_server.url,
        orders_url=orders_server.base_url,
    )
    async with running_app(settings, issuer) as application:
        # Filled (from the stub catalog, whatever it holds now) and caught up with the broker.
        await eventually(lambda: read_model_ready(application), message="read model ready")
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client bound to the running app."""
    async with asgi_client(app) as http:
        yield http


@pytest.fixture
def user(issuer: TestTokenIssuer) -> dict[str, str]:
    """Authorization headers of a customer of this test alone."""
    return issuer.headers(subject=str(uuid.uuid4()))


async def read_model_ready(application: FastAPI) -> bool:
    """Whether the app's catalog read model passes its readiness check."""
    try:
        await application.state.catalog_read_model.ready()
    except StartingUp:
        return False
    return True


@pytest.fixture
async def catalog_feed(nats_server: NatsServer) -> AsyncIterator[CatalogEvents]:
    """Publishes catalog events into the session broker (the session app consumes them)."""
    async with catalog_events(nats_server.url) as events:
        yield events


@pytest.fixture
async def empty_read_model(app: FastAPI) -> None:
    """The session database's read model without the products earlier tests left in it."""
    async with app.state.engine.begin() as connection:
        await connection.execute(text("DELETE FROM catalog_products"))


_SELECT_PRODUCTS = (
    "SELECT CAST(id AS text) AS id, sku, name, description, category, "
    "CAST(price AS text) AS price, currency, stock_available FROM catalog_products"
)


async def stored_product(engine: AsyncEngine, product_id: str) -> dict[str, object] | None:
    """The read model's row of a product (API field names, price as text), or None."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(text(_SELECT_PRODUCTS + " WHERE id = :id"), {"id": product_id})
        ).first()
    return None if row is None else dict(row._mapping)


async def stored_products(engine: AsyncEngine) -> dict[str, dict[str, object]]:
    """Every product of the read model, by id."""
    async with engine.connect() as connection:
        rows = await connection.execute(text(_SELECT_PRODUCTS))
        return {row.id: dict(row._mapping) for row in rows}


def as_stored(product: dict[str, object]) -> dict[str, object]:
    """What the read model keeps of a product as the catalog renders it."""
    kept = ("id", "sku", "name", "description", "category", "price", "currency", "stock_available")
    return {key: product[key] for key in kept}
