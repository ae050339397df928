"""A lost database answers 503 problem+json with Retry-After, never 500, and the service serves
again on its own once the database is back."""

from __future__ import annotations

import pytest
from common_libs.testing import PostgresServer
from common_libs.testing.app_checks import asgi_client
from common_libs.testing.db_checks import (
    Call,
    check_lost_database_answers_503,
    create_migrated_database,
)
from common_libs.testing.findings import async_findings

from app.main import create_app
from tests.conftest import SERVICE_ROOT, make_settings
from tests.integration.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, unique_email

CALLS: dict[str, Call] = {
    "register": lambda client: client.post(
        "/users", json={"email": unique_email(), "password": PASSWORD, "full_name": "Ann Lee"}
    ),
    "log in": lambda client: client.post(
        "/auth/token", data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    ),
}


@pytest.fixture
def outage_database_url(postgres_server: PostgresServer) -> str:
    """A database of its own: the outage must not reach the other tests' app."""
    return create_migrated_database(
        postgres_server, "user_service_outage", alembic_ini=SERVICE_ROOT / "alembic.ini"
    )


async def test_a_lost_database_answers_503_until_it_is_back(
    outage_database_url: str, service_settings: dict[str, object]
) -> None:
    url = outage_database_url
    app = create_app(make_settings(**{**service_settings, "database_url": url}))

    async with app.router.lifespan_context(app), asgi_client(app) as client:
        found = await async_findings(lambda: check_lost_database_answers_503(client, url, CALLS))

    assert found == []
