"""POST /auth/token with grant_type=client_credentials: service tokens for configured clients."""

from __future__ import annotations

import httpx
import jwt
from fastapi import FastAPI

from tests.integration.conftest import SERVICE_CLIENT_ID, SERVICE_CLIENT_SECRET
from tests.support.users import bearer


async def _service_token(client: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    return await client.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
        },
    )


async def test_client_credentials_answer_a_service_token_without_refresh_token(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await _service_token(client, SERVICE_CLIENT_ID, SERVICE_CLIENT_SECRET)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    claims = jwt.decode(
        body["access_token"],
        app.state.keys.private_key.public_key(),
        algorithms=["EdDSA"],
        audience="fleet",
    )
    assert claims["role"] == "service"
    assert claims["sub"] == SERVICE_CLIENT_ID


async def test_wrong_secret_and_unknown_client_answer_the_same_401(
    client: httpx.AsyncClient,
) -> None:
    wrong_secret = await _service_token(client, SERVICE_CLIENT_ID, "wrong-secret")
    unknown_client = await _service_token(client, "unknown-service", SERVICE_CLIENT_SECRET)

    assert wrong_secret.status_code == unknown_client.status_code == 401
    assert wrong_secret.json()["type"] == "urn:fleet:users:invalid-client-credentials"
    assert wrong_secret.headers["www-authenticate"] == "Bearer"
    bodies = [
        {k: v for k, v in r.json().items() if k != "request_id"}
        for r in (wrong_secret, unknown_client)
    ]
    assert bodies[0] == bodies[1]


async def test_service_token_is_no_user_for_users_me(client: httpx.AsyncClient) -> None:
    token = (await _service_token(client, SERVICE_CLIENT_ID, SERVICE_CLIENT_SECRET)).json()

    response = await client.get("/users/me", headers=bearer(token))

    assert response.status_code == 404
    assert response.json()["type"] == "urn:fleet:users:user-not-found"
