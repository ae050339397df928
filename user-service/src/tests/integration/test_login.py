"""POST /auth/token: the password grant, its one 401 answer, and hash upgrades on login."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jwt
import pytest
from common_libs.testing.app_checks import asgi_client
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import User
from app.main import create_app
from tests.conftest import make_settings
from tests.integration.conftest import PASSWORD, bind_to_connection, unique_email
from tests.support.users import login, register


def _claims(app: FastAPI, token: str) -> dict[str, Any]:
    key = app.state.keys.private_key.public_key()
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=["EdDSA"], audience="fleet", issuer="fleet-user-service"
    )
    return claims


async def test_password_grant_answers_a_token_pair(client: httpx.AsyncClient) -> None:
    user = await register(client)

    response = await client.post(
        "/auth/token",
        data={"username": user["email"], "password": PASSWORD, "grant_type": "password"},
    )

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert response.headers["cache-control"] == "no-store"


async def test_access_token_carries_the_fleet_claims_and_a_kid(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user = await register(client)

    token = (await login(client, user["email"]))["access_token"]

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"] == app.state.keys.kid
    claims = _claims(app, token)
    assert claims["sub"] == user["id"]
    assert claims["role"] == "customer"
    assert claims["exp"] - claims["iat"] == 900
    uuid.UUID(claims["jti"])


async def test_login_email_is_case_insensitive(client: httpx.AsyncClient) -> None:
    user = await register(client, email=unique_email("Case"))

    response = await client.post(
        "/auth/token", data={"username": f"  {user['email'].upper()} ", "password": PASSWORD}
    )

    assert response.status_code == 200


async def test_unknown_email_and_wrong_password_answer_the_same_401(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)

    wrong_password = await client.post(
        "/auth/token", data={"username": user["email"], "password": "not the password"}
    )
    unknown_email = await client.post(
        "/auth/token", data={"username": unique_email("nobody"), "password": "not the password"}
    )

    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.headers["www-authenticate"] == "Bearer"
    assert unknown_email.headers["www-authenticate"] == "Bearer"
    assert wrong_password.json()["type"] == "urn:fleet:users:invalid-credentials"
    assert wrong_password.json()["title"] == "Invalid Credentials"
    without_ids = [
        {k: v for k, v in r.json().items() if k != "request_id"}
        for r in (wrong_password, unknown_email)
    ]
    assert without_ids[0] == without_ids[1]


@pytest.mark.parametrize(
    "form",
    [
        {"username": "someone@example.com"},
        {"password": "whatever1"},
        {"grant_type": "authorization_code", "username": "a@example.com", "password": "x"},
        {"grant_type": "client_credentials", "client_id": "only-the-id"},
        {"username": "a@example.com", "password": "whatever1", "client_id": "mixed"},
        {"username": "a@example.com", "password": "whatever1", "extra": "field"},
    ],
)
async def test_incomplete_or_unknown_token_form_answers_422(
    client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    response = await client.post("/auth/token", data=form)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_token_request_as_json_answers_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/token", json={"username": "a@example.com", "password": "whatever1"}
    )

    assert response.status_code == 422


async def test_login_upgrades_a_hash_made_with_older_parameters(
    client: httpx.AsyncClient, connection: AsyncConnection, service_settings: dict[str, object]
) -> None:
    user = await register(client)
    user_id = uuid.UUID(user["id"])
    old_hash = await connection.scalar(select(User.password_hash).where(User.id == user_id))
    stronger = create_app(make_settings(**service_settings, argon2_time_cost=2))

    async with stronger.router.lifespan_context(stronger):
        bind_to_connection(stronger, connection)
        async with asgi_client(stronger) as upgraded:
            await login(upgraded, user["email"])
            new_hash = await connection.scalar(select(User.password_hash).where(User.id == user_id))
            second_login = await upgraded.post(
                "/auth/token", data={"username": user["email"], "password": PASSWORD}
            )

    assert old_hash is not None
    assert ",t=1," in old_hash
    assert new_hash is not None
    assert new_hash.startswith("$argon2id$")
    assert ",t=2," in new_hash
    assert second_login.status_code == 200
