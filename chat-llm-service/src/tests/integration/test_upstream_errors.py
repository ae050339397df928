"""Upstream failures map to answers a client can act on, never a 500."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from common_libs.testing import Failure, Hang, LlmServer, Reply, TestTokenIssuer, free_port
from common_libs.testing.app_checks import asgi_client

from tests.integration.conftest import chat_settings, running_app
from tests.support.servers import CatalogStub, failing

RATE_LIMITED = Failure(
    429,
    # The SDK waits retry-after-ms between its retries; retry-after is what we pass on.
    headers={"retry-after-ms": "20", "retry-after": "7"},
    body={"error": {"message": "Rate limit reached", "type": "requests", "code": None}},
)


async def test_upstream_429_twice_then_200_succeeds(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer
) -> None:
    fake_llm.enqueue(RATE_LIMITED, RATE_LIMITED, Reply(deltas=["Fine."]))

    response = await client.post("/chat/generate_response", json={"message": "Hi"}, headers=user)

    assert response.status_code == 200
    assert response.json()["message"]["content"] == "Fine."
    assert len(fake_llm.chat_requests()) == 3


async def test_upstream_always_429_answers_429_with_retry_after(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer
) -> None:
    fake_llm.enqueue(RATE_LIMITED, RATE_LIMITED, RATE_LIMITED)

    response = await client.post("/chat/generate_response", json={"message": "Hi"}, headers=user)

    assert response.status_code == 429
    assert response.json()["type"] == "urn:fleet:chat:upstream-rate-limited"
    assert response.headers["retry-after"] == "7"
    assert response.headers["content-type"] == "application/problem+json"
    assert len(fake_llm.chat_requests()) == 3  # the first try and two retries


async def test_upstream_5xx_answers_502(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer
) -> None:
    fake_llm.enqueue(*[failing(500)] * 3)

    response = await client.post("/chat/generate_response", json={"message": "Hi"}, headers=user)

    assert response.status_code == 502
    assert response.json()["type"] == "urn:fleet:common:upstream-failed"
    assert response.json()["detail"] == "The language model API answered 500."


async def test_upstream_context_length_exceeded_answers_413(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer
) -> None:
    fake_llm.enqueue(
        Failure(
            400,
            body={
                "error": {
                    "message": "This model's maximum context length is 8192 tokens.",
                    "type": "invalid_request_error",
                    "code": "context_length_exceeded",
                }
            },
        )
    )

    response = await client.post("/chat/generate_response", json={"message": "Hi"}, headers=user)

    assert response.status_code == 413
    assert response.json()["type"] == "urn:fleet:chat:upstream-context-exceeded"
    assert len(fake_llm.chat_requests()) == 1


@pytest.fixture
async def short_timeout_client(
    database_url: str, fake_llm: LlmServer, catalog: CatalogStub, issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app configured with a one-second upstream timeout."""
    settings = chat_settings(database_url, fake_llm, catalog, openai_timeout_seconds=1.0)
    async with running_app(settings, issuer) as application, asgi_client(application) as http:
        yield http


async def test_upstream_that_hangs_answers_504_within_the_timeout(
    short_timeout_client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer
) -> None:
    fake_llm.enqueue(*[Hang()] * 3)
    started = time.monotonic()

    response = await short_timeout_client.post(
        "/chat/generate_response", json={"message": "Hi"}, headers=user
    )

    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json()["type"] == "urn:fleet:common:upstream-timeout"
    # One second of configured timeout; the SDK's two retries would need three seconds or more.
    assert 1.0 <= elapsed < 2.5


async def test_unreachable_upstream_answers_502(
    database_url: str, fake_llm: LlmServer, catalog: CatalogStub, issuer: TestTokenIssuer
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    settings = chat_settings(
        database_url, fake_llm, catalog, openai_base_url=closed, openai_max_retries=0
    )
    headers = issuer.headers()
    async with running_app(settings, issuer) as application, asgi_client(application) as http:
        response = await http.post(
            "/chat/generate_response", json={"message": "Hi"}, headers=headers
        )

    assert response.status_code == 502
    assert response.json()["detail"] == "The language model API cannot be reached."
