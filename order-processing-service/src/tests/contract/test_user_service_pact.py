"""The contract with user-service: this service's own token (the client-credentials grant).

``ServiceTokenProvider`` driven for real against Pact's mock server. The secret in the pact is
a test value: user-service's verification registers the client with it (the provider state's
parameters), as an operator would with ``USERS_SERVICE_CLIENTS``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlencode

import pytest
from common_libs.http_client import create_http_client
from common_libs.testing.pact import Contract
from pact import Pact, match
from pydantic import SecretStr

from app.clients.resilience import Deadline
from app.clients.service_token import ServiceCredentialsRefused, ServiceTokenProvider

CLIENT_ID = "order-processing-service"
CLIENT_SECRET = "contract-test-secret"
WRONG_SECRET = "not-the-secret"
JWT_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
ACCESS_TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJyb2xlIjoic2VydmljZSJ9.c2lnbmF0dXJl"
FORM = "application/x-www-form-urlencoded"


def _grant(secret: str) -> str:
    return urlencode(
        {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": secret}
    )


def token_is_granted(pact: Pact) -> None:
    """The right secret: 200 with a bearer access token and its lifetime."""
    (
        pact.upon_receiving("a client-credentials grant with the right secret")
        .given("a service client is registered", client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        .with_request("POST", "/auth/token")
        .with_body(_grant(CLIENT_SECRET), content_type=FORM)
        .will_respond_with(200)
        .with_body(
            {
                "access_token": match.regex(ACCESS_TOKEN, regex=JWT_PATTERN),
                "token_type": match.str("bearer"),
                "expires_in": match.int(900),
            },
            content_type="application/json",
        )
    )


def wrong_secret_is_refused(pact: Pact) -> None:
    """A wrong secret: 401."""
    (
        pact.upon_receiving("a client-credentials grant with a wrong secret")
        .given("a service client is registered", client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        .with_request("POST", "/auth/token")
        .with_body(_grant(WRONG_SECRET), content_type=FORM)
        .will_respond_with(401)
        .with_header("Content-Type", "application/problem+json")
    )


CONTRACT = Contract(
    "order-processing-service", "user-service", [token_is_granted, wrong_secret_is_refused]
)


@asynccontextmanager
async def token_provider(url: str, secret: str) -> AsyncIterator[ServiceTokenProvider]:
    """The real provider, over the HTTP client the lifespan makes, pointed at ``url``."""
    http = create_http_client(base_url=url, timeout=2.0)
    try:
        yield ServiceTokenProvider(http=http, client_id=CLIENT_ID, client_secret=SecretStr(secret))
    finally:
        await http.aclose()


async def test_service_token_is_granted_for_the_registered_secret() -> None:
    with CONTRACT.serve(token_is_granted) as url:
        async with token_provider(url, CLIENT_SECRET) as tokens:
            token = await tokens.get(deadline=Deadline.within(5))

    assert token == ACCESS_TOKEN


async def test_wrong_secret_is_refused() -> None:
    with CONTRACT.serve(wrong_secret_is_refused) as url:
        async with token_provider(url, WRONG_SECRET) as tokens:
            with pytest.raises(ServiceCredentialsRefused):
                await tokens.get(deadline=Deadline.within(5))
