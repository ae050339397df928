"""Small HTTP helpers the integration tests share (they go through the API like a client)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.conftest import PASSWORD, unique_email


async def register(
    client: httpx.AsyncClient, *, email: str | None = None, password: str = PASSWORD
) -> dict[str, Any]:
    """Register a customer and return its user JSON."""
    response = await client.post(
        "/users",
        json={"email": email or unique_email(), "password": password, "full_name": "Test User"},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    """Log in with the password grant and return the token pair."""
    response = await client.post("/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def new_customer(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """Register and log in a fresh customer: (user, token pair)."""
    user = await register(client)
    return user, await login(client, user["email"])


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    """The Authorization header for a token pair (or a service token)."""
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def service_token(client: httpx.AsyncClient) -> dict[str, Any]:
    """A ``service`` token of the client the suite registers (the client-credentials grant)."""
    from tests.integration.conftest import SERVICE_CLIENT_ID, SERVICE_CLIENT_SECRET

    response = await client.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": SERVICE_CLIENT_ID,
            "client_secret": SERVICE_CLIENT_SECRET,
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    """Headers of the admin bootstrapped at start-up."""
    from tests.integration.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

    return bearer(await login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
