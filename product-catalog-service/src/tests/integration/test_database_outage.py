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
