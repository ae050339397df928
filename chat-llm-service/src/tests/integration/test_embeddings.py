"""Embeddings go through the same client, in input order, within the caller's quota."""

from __future__ import annotations

import httpx
from common_libs.testing import Failure, LlmServer


async def test_embeddings_come_back_in_input_order_with_usage(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer
) -> None:
    response = await client.post(
        "/chat/get_embeddings", json={"input": ["red boots", "a kettle for tea"]}, headers=user
    )

    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "text-embedding-3-small"
    assert [(item["index"], item["embedding"][:2]) for item in body["data"]] == [
        (0, [9.0, 0.0]),
        (1, [16.0, 1.0]),
    ]
    assert body["usage"] == {"prompt_tokens": 6}
    [sent] = [r.body for r in fake_llm.requests("/v1/embeddings")]
    assert sent["model"] == "text-embedding-3-small"
    assert sent["input"] == ["red boots", "a kettle for tea"]
    usage = (await client.get("/chat/usage", headers=user)).json()
    assert usage["prompt_tokens"] == 6


async def test_more_than_64_inputs_answer_422(
    client: httpx.AsyncClient, user: dict[str, str]
) -> None:
    response = await client.post("/chat/get_embeddings", json={"input": ["x"] * 65}, headers=user)

    assert response.status_code == 422


async def test_input_longer_than_the_model_reads_answers_413(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer
) -> None:
    response = await client.post(
        "/chat/get_embeddings", json={"input": ["short", "word " * 9000]}, headers=user
    )

    assert response.status_code == 413
    assert response.json()["type"] == "urn:fleet:chat:embedding-input-too-large"
    assert response.json()["index"] == 1
    assert fake_llm.requests() == []


async def test_upstream_429_on_embeddings_answers_429(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer
) -> None:
    limited = Failure(429, headers={"retry-after-ms": "10"})
    fake_llm.enqueue(limited, limited, limited, endpoint="embeddings")

    response = await client.post("/chat/get_embeddings", json={"input": "boots"}, headers=user)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
