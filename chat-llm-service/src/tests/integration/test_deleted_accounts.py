"""A deleted account's access token is refused within a second of users.user.deleted reaching
the USERS stream, though it has not expired.

The app runs with its own lifespan and the verifier it builds for production (keys from the
issuer stub's JWKS; the deny list following the session's NATS), not the session app's verifier
that trusts the test issuer directly.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from common_libs.problems import PROBLEM_CONTENT_TYPE
from common_libs.testing import LlmServer, NatsServer, TestTokenIssuer, eventually
from common_libs.testing.app_checks import asgi_client
from common_libs.testing.events import publish_user_deleted

from app.main import create_app
from tests.integration.conftest import chat_settings
from tests.support.servers import CatalogStub


@pytest.fixture
async def production_client(
    database_url: str,
    fake_llm: LlmServer,
    catalog: CatalogStub,
    nats_server: NatsServer,
    jwks_url: str,
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose token verifier is the one its lifespan made."""
    settings = chat_settings(
        database_url, fake_llm, catalog, nats_url=nats_server.url, jwks_url=jwks_url
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application), asgi_client(application) as http:
        yield http


async def test_a_deleted_accounts_token_is_refused_within_a_second(
    production_client: httpx.AsyncClient, nats_server: NatsServer, issuer: TestTokenIssuer
) -> None:
    user_id = str(uuid.uuid4())
    headers = issuer.headers(subject=user_id, ttl_seconds=900)
    assert (await production_client.get("/chat/usage", headers=headers)).status_code == 200

    await publish_user_deleted(nats_server.url, user_id)
    responses: list[httpx.Response] = []

    async def refused() -> bool:
        responses.append(await production_client.get("/chat/usage", headers=headers))
        return responses[-1].status_code == 401

    await eventually(refused, within=1.0, message="the deleted account's token refused")

    response = responses[-1]
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="The account no longer exists."'
    )
    assert response.json()["type"] == "urn:fleet:common:invalid-token"
    assert response.json()["detail"] == "The account no longer exists."
    other = issuer.headers(subject=str(uuid.uuid4()))
    assert (await production_client.get("/chat/usage", headers=other)).status_code == 200
