"""A deleted account's access token is refused within a second of users.user.deleted reaching
the USERS stream, though it has not expired.

The app runs with its own lifespan and the verifier it builds for production (keys from a JWKS
URL, here a stub serving the test issuer's key; the deny list following the session's NATS).
The catalog has no route for customers: the account is an admin's.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from common_libs.problems import PROBLEM_CONTENT_TYPE
from common_libs.testing import NatsServer, TestTokenIssuer, eventually
from common_libs.testing.app_checks import asgi_client
from common_libs.testing.events import publish_user_deleted
from fastapi import FastAPI

from app.main import create_app
from tests.integration.conftest import integration_settings
from tests.support.products import create_product, serve_jwks


@pytest.fixture
async def production_client(
    database_url: str, nats_server: NatsServer, issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose token verifier is the one its lifespan made."""
    with serve_jwks(issuer.jwks()) as jwks_url:
        app: FastAPI = create_app(
            integration_settings(database_url, nats_server.url, jwks_url=jwks_url)
        )
        async with app.router.lifespan_context(app), asgi_client(app) as client:
            yield client


async def test_a_deleted_accounts_token_is_refused_within_a_second(
    production_client: httpx.AsyncClient, nats_server: NatsServer, issuer: TestTokenIssuer
) -> None:
    user_id = str(uuid.uuid4())
    headers = issuer.headers(subject=user_id, role="admin", ttl_seconds=900)
    product = await create_product(production_client, headers)
    rename = {"name": "Renamed shoe"}
    path = f"/products/{product['id']}"
    assert (await production_client.patch(path, json=rename, headers=headers)).status_code == 200

    await publish_user_deleted(nats_server.url, user_id)
    responses: list[httpx.Response] = []

    async def refused() -> bool:
        responses.append(await production_client.patch(path, json=rename, headers=headers))
        return responses[-1].status_code == 401

    await eventually(refused, within=1.0, message="the deleted account's token refused")

    response = responses[-1]
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="The account no longer exists."'
    )
    assert response.json()["type"] == "urn:fleet:common:invalid-token"
    assert response.json()["detail"] == "The account no longer exists."
    other = issuer.headers(subject=str(uuid.uuid4()), role="admin")
    assert (await production_client.patch(path, json=rename, headers=other)).status_code == 200
