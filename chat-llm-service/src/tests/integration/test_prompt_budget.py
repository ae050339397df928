"""The history sent to the model is trimmed oldest first to the model's context budget."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import tiktoken
from common_libs.testing import LlmServer, Reply, TestTokenIssuer
from common_libs.testing.app_checks import asgi_client
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.integration.conftest import chat_settings, running_app
from tests.support.servers import CatalogStub

WINDOW = 1700  # the tools offered take about 400 of it
MAX_OUTPUT = 128


@pytest.fixture
async def small_window_client(
    database_url: str, fake_llm: LlmServer, catalog: CatalogStub, issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app configured with a small context window."""
    settings = chat_settings(
        database_url,
        fake_llm,
        catalog,
        context_window_tokens=WINDOW,
        max_output_tokens=MAX_OUTPUT,
    )
    async with running_app(settings, issuer) as application, asgi_client(application) as http:
        yield http


def _cost(encoding: tiktoken.Encoding, message: dict[str, Any]) -> int:
    """OpenAI's accounting for one chat message."""
    return 3 + len(encoding.encode(message["role"])) + len(encoding.encode(message["content"]))


def _long_text(label: str, words: int) -> str:
    return " ".join(f"{label}{number}" for number in range(words))


async def test_history_is_trimmed_oldest_first_to_fit_the_budget(
    small_window_client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer
) -> None:
    encoding = tiktoken.encoding_for_model("gpt-4o-mini")
    conversation_id = None
    for turn in range(5):
        fake_llm.enqueue(Reply(deltas=[_long_text(f"answer{turn}x", 40)]))
        body: dict[str, Any] = {"message": _long_text(f"question{turn}x", 40)}
        if conversation_id:
            body["conversation_id"] = conversation_id
        response = await small_window_client.post(
            "/chat/generate_response", json=body, headers=user
        )
        assert response.status_code == 200, response.text
        conversation_id = response.json()["conversation_id"]
    stored = (
        await small_window_client.get(f"/chat/conversations/{conversation_id}", headers=user)
    ).json()["messages"]
    fake_llm.reset()

    await small_window_client.post(
        "/chat/generate_response",
        json={"message": "And the last question?", "conversation_id": conversation_id},
        headers=user,
    )

    [sent] = fake_llm.chat_requests()
    history = sent["messages"][1:-2]
    assert 2 <= len(history) < len(stored)
    assert history == [
        {"role": m["role"], "content": m["content"]} for m in stored[-len(history) :]
    ]
    # The tools offered take their share of the window too.
    tools = len(encoding.encode(json.dumps(sent["tools"])))
    prompt_tokens = 3 + tools + sum(_cost(encoding, message) for message in sent["messages"])
    assert prompt_tokens <= WINDOW - MAX_OUTPUT
    next_older = stored[-len(history) - 1]
    assert prompt_tokens + _cost(encoding, next_older) > WINDOW - MAX_OUTPUT


async def test_message_that_cannot_fit_answers_413_without_calling_the_model(
    small_window_client: httpx.AsyncClient,
    fake_llm: LlmServer,
    database_url: str,
    issuer: TestTokenIssuer,
) -> None:
    subject = str(uuid.uuid4())
    user = issuer.headers(subject=subject)
    response = await small_window_client.post(
        "/chat/generate_response", json={"message": _long_text("word", 2000)}, headers=user
    )
    # A 413 is known before the quota is asked: nothing was ever held.
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            held = await connection.scalar(
                text("SELECT reserved_tokens FROM daily_usage WHERE user_id = :u"),
                {"u": subject},
            )
    finally:
        await engine.dispose()
    assert held is None

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:fleet:chat:message-too-large"
    assert response.json()["tokens"] > response.json()["budget"]
    assert fake_llm.chat_requests() == []
    usage = await small_window_client.get("/chat/usage", headers=user)
    assert usage.json()["total_tokens"] == 0
