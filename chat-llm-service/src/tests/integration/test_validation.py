"""Bad input is a 4xx problem, never a 500; every chat route needs a valid token."""

from __future__ import annotations

import httpx
import pytest


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
