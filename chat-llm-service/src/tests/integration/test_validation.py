"""Bad input is a 4xx problem, never a 500; every chat route needs a valid token, and says per
RFC 6750 what was wrong with it."""

from __future__ import annotations

import httpx
import pytest
from common_libs.testing import TestTokenIssuer


@pytest.mark.parametrize(
    "body",
    [
        {"message": "Hi", "role": "system"},
        {"message": ""},
        {"message": "nul \u0000 byte"},
        {"message": "Hi", "conversation_id": "not-a-uuid"},
    ],
    ids=["unknown-field", "empty", "nul", "bad-id"],
)
async def test_invalid_generate_body_answers_422(
    client: httpx.AsyncClient, user: dict[str, str], body: dict[str, object]
) -> None:
    response = await client.post("/chat/generate_response", json=body, headers=user)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:fleet:common:validation-failed"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/chat/generate_response"),
        ("POST", "/chat/get_embeddings"),
        ("POST", "/chat/count_tokens"),
        ("GET", "/chat/conversations"),
        ("GET", "/chat/usage"),
    ],
)
async def test_chat_routes_answer_401_without_a_token(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path, json={"message": "Hi"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == "urn:fleet:common:authentication-required"


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/chat/generate_response"), ("GET", "/chat/conversations")]
)
async def test_an_expired_token_answers_401_token_expired_saying_so(
    client: httpx.AsyncClient, issuer: TestTokenIssuer, method: str, path: str
) -> None:
    expired = issuer.headers(ttl_seconds=-60)

    response = await client.request(method, path, json={"message": "Hi"}, headers=expired)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token expired"'
    )
    assert response.json()["type"] == "urn:fleet:common:token-expired"
    assert response.json()["title"] == "Token Expired"


async def test_a_token_of_another_issuer_answers_401_invalid_token(
    client: httpx.AsyncClient,
) -> None:
    stranger = TestTokenIssuer()

    response = await client.get("/chat/usage", headers=stranger.headers())

    assert response.status_code == 401
    assert response.json()["type"] == "urn:fleet:common:invalid-token"
    assert response.headers["www-authenticate"] == (
        f'Bearer error="invalid_token", error_description="{response.json()["detail"]}"'
    )
    assert "expired" not in response.headers["www-authenticate"]
