"""A lost database answers 503 problem+json with Retry-After, never 500, and the service serves
again on its own once the database is back."""

from __future__ import annotations

import uuid

import pytest
from common_libs.testing import NatsServer, PostgresServer, TestTokenIssuer
from common_libs.testing.app_checks import asgi_client
from common_libs.testing.db_checks import (
    Call,
    check_lost_database_answers_503,
    create_migrated_database,
)
from common_libs.testing.findings import async_findings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.main import create_app
from tests.integration.conftest import SERVICE_ROOT, integration_settings, trust_issuer
from tests.support.products import product_payload


@pytest.fixture
def outage_database_url(postgres_server: PostgresServer) -> str:
    """A database of its own: the outage must not reach the other tests' app."""
    return create_migrated_database(
        postgres_server, "catalog_service_outage", alembic_ini=SERVICE_ROOT / "alembic.ini"
    )


async def test_a_lost_database_answers_503_until_it_is_back(
    outage_database_url: str,
    nats_server: NatsServer,
    issuer: TestTokenIssuer,
    admin_headers: dict[str, str],
) -> None:
    url = outage_database_url
    calls: dict[str, Call] = {
        "search": lambda client: client.get("/products", params={"q": "shoe"}),
        "read": lambda client: client.get(f"/products/{uuid.uuid4()}"),
        "categories": lambda client: client.get("/categories"),
        "create": lambda client: client.post(
            "/products", json=product_payload(), headers=admin_headers
        ),
    }
    app = create_app(integration_settings(url, nats_server.url))

    async with app.router.lifespan_context(app), asgi_client(app) as client:
        trust_issuer(app, issuer)
        found = await async_findings(lambda: check_lost_database_answers_503(client, url, calls))

    assert found == []


async def test_a_read_whose_connection_the_server_ended_gives_that_connection_up(
    outage_database_url: str,
    nats_server: NatsServer,
    issuer: TestTokenIssuer,
    admin_headers: dict[str, str],
) -> None:
    """``GET /products/{id}`` runs its statement on asyncpg itself: a connection that failed under
    it leaves the pool. Put back, it failed the next request too, and one left in the middle of
    an operation answered 500 (``InternalClientError``) in the chaos suite's PostgreSQL stop.

    The server ends only the pool's one connection (not the relay's LISTEN connection, whose
    loss would wake the relay). The relay shares the pool: should it still take the ended
    connection first (its 5 s poll, right then), it is the one that fails and SQLAlchemy gives
    the connection up, so the first read may answer 200; the read after it never meets it."""
    settings = integration_settings(
        outage_database_url, nats_server.url, database_pool_size=1, database_max_overflow=0
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), asgi_client(app) as client:
        trust_issuer(app, issuer)
        created = await client.post("/products", json=product_payload(), headers=admin_headers)
        assert created.status_code == 201, created.text
        path = f"/products/{created.json()['id']}"
        assert (await client.get(path)).status_code == 200
        async with app.state.engine.connect() as connection:
            pid = await connection.scalar(text("SELECT pg_backend_pid()"))
        await _end_session(outage_database_url, pid)

        lost = await client.get(path)
        again = await client.get(path)

    assert lost.status_code in (503, 200), lost.text
    assert again.status_code == 200, again.text


async def _end_session(database_url: str, pid: int) -> None:
    """The server ends the session of backend ``pid`` (as a fast shutdown ends them all)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            ended = await connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await engine.dispose()
    assert ended
