"""The shop assistant through the gateway, with the real catalog and the OpenAI-compatible test
server as its LLM (given to the fleet by OPENAI_BASE_URL and OPENAI_API_KEY)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from common_libs.testing import LlmServer, Reply

from tests.conftest import CHAT_MODEL, EMBEDDING_MODEL
from tests.support.assistant import chat_request_about
from tests.support.shop import Shop, bearer


def test_chat_answer_is_grounded_in_the_products_the_catalog_has(
    shop: Shop, fake_llm: LlmServer
) -> None:
    question = "Do you have running shoes?"
    reply = Reply(deltas=("We have", " two pairs", " of running shoes."))
    fake_llm.enqueue(reply)
    customer = shop.new_customer()

    answer = shop.client.post(
        f"{shop.endpoints.chat}/chat/generate_response",
        json={"message": question},
        headers=bearer(customer.access_token),
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == {"role": "assistant", "content": reply.content}
    assert answer.json()["model"] == CHAT_MODEL
    sent = chat_request_about(fake_llm, question)
    assert sent.body["model"] == CHAT_MODEL
    assert sent.headers["authorization"] == f"Bearer {fake_llm.api_key}"
    in_catalog = shop.client.get(
        f"{shop.endpoints.catalog}/products", params={"q": "running shoes"}
    ).json()["items"]
    assert len(in_catalog) >= 2
    prompt = "\n".join(sent.message_texts())
    for product in in_catalog:
        assert product["name"] in prompt
        assert f"{product['price']} {product['currency']}" in prompt


def _events(lines: Any) -> Any:
    """Server-sent events as (event name, data) pairs from an iterator of lines."""
    name, data = "message", []
    for line in lines:
        if line.startswith("event:"):
            name = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data.append(line.partition(":")[2].strip())
        elif not line and data:
            yield name, json.loads("\n".join(data))
            name, data = "message", []


def test_streamed_chat_reaches_the_client_through_nginx_before_the_llm_finishes(
    shop: Shop, fake_llm: LlmServer
) -> None:
    deltas = ("Trail", " Running", " Shoes", " are", " in stock.")
    # Slowly, as a model does, and the last chunk only once the client has the first delta.
    last = f"last-chunk-{uuid.uuid4().hex}"
    reply = Reply(deltas=deltas, delay_seconds=0.05, gate=last, gate_after=len(deltas) - 1)
    fake_llm.enqueue(reply)
    customer = shop.new_customer()
    received: list[str] = []
    llm_had_finished_at_first_delta: bool | None = None

    with shop.client.stream(
        "POST",
        f"{shop.endpoints.chat}/chat/generate_response",
        json={"message": "Any trail running shoes?", "stream": True},
        headers=bearer(customer.access_token),
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        done: dict[str, Any] = {}
        for name, data in _events(response.iter_lines()):
            if name == "message":
                if not received:
                    llm_had_finished_at_first_delta = fake_llm.streams()[-1].sent == len(deltas)
                    fake_llm.release(last)
                received.append(data["delta"])
            elif name == "done":
                done = data
            else:
                pytest.fail(f"unexpected event {name}: {data}")

    assert llm_had_finished_at_first_delta is False
    assert "".join(received) == reply.content
    assert done["model"] == CHAT_MODEL
    assert done["usage"]["completion_tokens"] == len(deltas)


def test_embeddings_use_the_configured_embedding_model(shop: Shop, fake_llm: LlmServer) -> None:
    customer = shop.new_customer()
    texts = ["waterproof hiking backpack", "espresso machine with grinder"]

    response = shop.client.post(
        f"{shop.endpoints.chat}/chat/get_embeddings",
        json={"input": texts},
        headers=bearer(customer.access_token),
    )

    assert response.status_code == 200, response.text
    assert response.json()["model"] == EMBEDDING_MODEL
    assert [item["index"] for item in response.json()["data"]] == [0, 1]
    sent = [r for r in fake_llm.requests("/v1/embeddings") if r.body.get("input") == texts]
    assert len(sent) == 1
    assert sent[0].body["model"] == EMBEDDING_MODEL
