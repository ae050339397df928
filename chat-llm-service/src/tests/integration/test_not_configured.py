"""Without an LLM configured, generation and embeddings answer 503 with guidance; counting works."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import tiktoken
from common_libs.testing import TestTokenIssuer
from common_libs.testing.app_checks import asgi_client

from tests.conftest import make_settings
from tests.integration.conftest import running_app

TEXT = "Do you sell waterproof hiking boots in size 44? ¿Y en español? 日本語も。"


@pytest.fixture
async def unconfigured_client(
    database_url: str, issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app with no OPENAI_API_KEY and no OPENAI_BASE_URL."""
    settings = make_settings(database_url=database_url)
    assert not settings.is_llm_configured
    async with running_app(settings, issuer) as application, asgi_client(application) as http:
        yield http


async def test_generate_answers_503_that_says_how_to_configure(
    unconfigured_client: httpx.AsyncClient, user: dict[str, str]
) -> None:
    response = await unconfigured_client.post(
        "/chat/generate_response", json={"message": "Hi"}, headers=user
    )

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:fleet:chat:model-not-configured"
    detail = response.json()["detail"]
    assert "OPENAI_API_KEY" in detail
    assert "OPENAI_BASE_URL" in detail
    assert "Ollama" in detail


async def test_embeddings_answer_503(
    unconfigured_client: httpx.AsyncClient, user: dict[str, str]
) -> None:
    response = await unconfigured_client.post(
        "/chat/get_embeddings", json={"input": "boots"}, headers=user
    )

    assert response.status_code == 503
    assert "OPENAI_BASE_URL" in response.json()["detail"]


@pytest.mark.parametrize(
    ("model", "encoding"), [("gpt-4o-mini", "o200k_base"), ("gpt-4", "cl100k_base")]
)
async def test_count_tokens_still_works_and_matches_tiktoken(
    unconfigured_client: httpx.AsyncClient, user: dict[str, str], model: str, encoding: str
) -> None:
    response = await unconfigured_client.post(
        "/chat/count_tokens", json={"text": TEXT, "model": model}, headers=user
    )

    assert response.status_code == 200
    assert response.json() == {
        "model": model,
        "encoding": encoding,
        "tokens": len(tiktoken.get_encoding(encoding).encode(TEXT)),
    }
