"""/users/me: read, update (name, password with the current one) and delete your account."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import PASSWORD
from tests.support.users import bearer, new_customer

NEW_PASSWORD = "a brand new passphrase"


async def test_read_me_answers_your_account(client: httpx.AsyncClient) -> None:
    user, tokens = await new_customer(client)

    response = await client.get("/users/me", headers=bearer(tokens))

    assert response.status_code == 200
    assert response.json() == user


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_users_me_without_token_answers_401_with_bearer_challenge(
    client: httpx.AsyncClient, method: str
) -> None:
    response = await client.request(method, "/users/me", json={} if method == "PATCH" else None)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:fleet:common:authentication-required"


async def test_update_me_changes_the_full_name(client: httpx.AsyncClient) -> None:
    _, tokens = await new_customer(client)

    response = await client.patch(
        "/users/me", json={"full_name": "Grace Hopper"}, headers=bearer(tokens)
    )

    assert response.status_code == 200
    assert response.json()["full_name"] == "Grace Hopper"
    assert (await client.get("/users/me", headers=bearer(tokens))).json()["full_name"] == (
        "Grace Hopper"
    )


async def test_password_change_with_current_password_replaces_the_password(
    client: httpx.AsyncClient,
) -> None:
    user, tokens = await new_customer(client)

    response = await client.patch(
        "/users/me",
        json={"password": NEW_PASSWORD, "current_password": PASSWORD},
        headers=bearer(tokens),
    )
    old = await client.post("/auth/token", data={"username": user["email"], "password": PASSWORD})
    new = await client.post(
        "/auth/token", data={"username": user["email"], "password": NEW_PASSWORD}
    )

    assert response.status_code == 200
    assert (old.status_code, new.status_code) == (401, 200)


async def test_password_change_revokes_existing_refresh_tokens(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await new_customer(client)

    await client.patch(
        "/users/me",
        json={"password": NEW_PASSWORD, "current_password": PASSWORD},
        headers=bearer(tokens),
    )
    response = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})

    assert response.status_code == 401


async def test_password_change_with_wrong_current_password_answers_403(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await new_customer(client)

    response = await client.patch(
        "/users/me",
        json={"password": NEW_PASSWORD, "current_password": "not my password"},
        headers=bearer(tokens),
    )

    assert response.status_code == 403
    assert response.json()["type"] == "urn:fleet:users:wrong-current-password"
    # The access token is fine: no challenge (RFC 6750's insufficient_scope is about roles).
    assert "www-authenticate" not in response.headers


@pytest.mark.parametrize(
    "body",
    [
        {"password": NEW_PASSWORD},
        {"full_name": None},
        {"role": "admin"},
        {"email": "new@example.com"},
    ],
)
async def test_invalid_update_answers_422(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    _, tokens = await new_customer(client)

    response = await client.patch("/users/me", json=body, headers=bearer(tokens))

    assert response.status_code == 422


async def test_delete_me_answers_204_and_the_account_is_gone(client: httpx.AsyncClient) -> None:
    user, tokens = await new_customer(client)

    response = await client.delete("/users/me", headers=bearer(tokens))

    assert response.status_code == 204
    assert (await client.get("/users/me", headers=bearer(tokens))).status_code == 404
    login = await client.post("/auth/token", data={"username": user["email"], "password": PASSWORD})
    assert login.status_code == 401


async def test_delete_me_revokes_the_refresh_tokens(client: httpx.AsyncClient) -> None:
    _, tokens = await new_customer(client)

    await client.delete("/users/me", headers=bearer(tokens))
    response = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})

    assert response.status_code == 401


async def test_delete_me_twice_answers_404_the_second_time(client: httpx.AsyncClient) -> None:
    _, tokens = await new_customer(client)
    await client.delete("/users/me", headers=bearer(tokens))

    response = await client.delete("/users/me", headers=bearer(tokens))

    assert response.status_code == 404
    assert response.json()["type"] == "urn:fleet:users:user-not-found"
