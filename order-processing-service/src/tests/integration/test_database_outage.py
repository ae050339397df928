"""A lost database answers 503 problem+json with Retry-After, never 500, and the service serves
again on its own once the database is back."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from common_libs.testing import PostgresServer
from common_libs.testing.app_checks import asgi_client
from common_libs.testing.db_checks import (
    Call,
    check_lost_database_answers_503,
    create_migrated_database,
)
from common_libs.testing.findings import async_findings

from app.config import Settings
from app.main import create_app
from tests.integration.conftest import SERVICE_ROOT
from tests.support.orders import Caller, order_body


@pytest.fixture
def outage_database_url(postgres_server: PostgresServer) -> str:
    """A database of its own: the outage must not reach the other tests' app."""
    return create_migrated_database(
        postgres_server, "orders_service_outage", alembic_ini=SERVICE_ROOT / "alembic.ini"
    )


async def test_a_lost_database_answers_503_until_it_is_back(
    outage_database_url: str, service_settings: Callable[..., Settings], customer: Caller
) -> None:
    url = outage_database_url
    headers = customer.headers
    calls: dict[str, Call] = {
        "list": lambda client: client.get("/orders", headers=headers),
        "read": lambda client: client.get(f"/orders/{uuid.uuid4()}", headers=headers),
        "cancel": lambda client: client.post(f"/orders/{uuid.uuid4()}/cancel", headers=headers),
        "place": lambda client: client.post(
            "/orders",
            json=order_body((uuid.uuid4(), 1)),
            headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
        ),
    }
    app = create_app(service_settings(database_url=url))

    async with app.router.lifespan_context(app), asgi_client(app) as client:
        found = await async_findings(lambda: check_lost_database_answers_503(client, url, calls))

    assert found == []
