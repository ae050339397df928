"""What the model receives and what the caller gets back for a non-streamed reply."""

from __future__ import annotations

import httpx
from common_libs.testing import LlmServer, Reply, TestTokenIssuer

from app.services.prompt_builder import SYSTEM_PROMPT
from tests.integration.conftest import chat_settings, http_client, running_app
from tests.support.servers import CatalogStub, product

SHOES = [
    product("Trail Runner 2", sku="TR-2", price="89.90", description="Grippy trail running shoe"),
    product("Road Runner", sku="RR-1", price="119.00", description="Light running shoes for roads"),
]
KETTLE = product("Steel Kettle", sku="KT-1", price="25.00", description="1.7 l water kettle")


async def test_upstream_receives_model_system_prompt_and_the_products_found(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer, catalog: CatalogStub
) -> None:
    await catalog.set_products([*SHOES, KETTLE])
    question = "Do you have running shoes for trails?"

    response = await client.post(
        "/chat/generate_response", json={"message": question}, headers=user
    )

    assert response.status_code == 200, response.text
    [sent] = fake_llm.chat_requests()
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert sent["messages"][-1] == {"role": "user", "content": question}
    grounding = sent["messages"][-2]
    assert grounding["role"] == "system"
    trail_shoe, road_shoe = SHOES
    assert trail_shoe["name"] in grounding["content"]
    assert f"{trail_shoe['price']} USD" in grounding["content"]
    # The catalog wants every word: the road shoe is not for trails.
    assert road_shoe["name"] not in grounding["content"]
    assert "Kettle" not in grounding["content"]
    assert await catalog.queries() == [{"q": "running shoes trails", "limit": 3}]


async def test_question_whose_words_no_product_has_all_of_falls_back_to_any_word(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer, catalog: CatalogStub
) -> None:
    await catalog.set_products([*SHOES, KETTLE])

    response = await client.post(
        "/chat/generate_response", json={"message": "Any shoes for rainy days?"}, headers=user
    )

    assert response.status_code == 200, response.text
    [sent] = fake_llm.chat_requests()
    for shoe in SHOES:
        assert shoe["name"] in sent["messages"][-2]["content"]
    assert "Kettle" not in sent["messages"][-2]["content"]
    assert await catalog.queries() == [
        {"q": "shoes rainy days", "limit": 3},
        {"q": "shoes or rainy or days", "limit": 3},
    ]


async def test_reply_carries_conversation_content_usage_and_model(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer, catalog: CatalogStub
) -> None:
    fake_llm.enqueue(
        Reply(deltas=["Yes, ", "we do."], usage={"prompt_tokens": 50, "completion_tokens": 4})
    )

    response = await client.post(
        "/chat/generate_response", json={"message": "Any shoes?"}, headers=user
    )

    body = response.json()
    assert body["message"] == {"role": "assistant", "content": "Yes, we do."}
    assert body["usage"] == {"prompt_tokens": 50, "completion_tokens": 4, "total_tokens": 54}
    assert body["model"] == "gpt-4o-mini"
    stored = await client.get(f"/chat/conversations/{body['conversation_id']}", headers=user)
    assert [(m["role"], m["content"]) for m in stored.json()["messages"]] == [
        ("user", "Any shoes?"),
        ("assistant", "Yes, we do."),
    ]


async def test_catalog_failure_still_answers_and_tells_the_model(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer, catalog: CatalogStub
) -> None:
    await catalog.set_mode("error")

    response = await client.post(
        "/chat/generate_response", json={"message": "Any shoes?"}, headers=user
    )

    assert response.status_code == 200
    [sent] = fake_llm.chat_requests()
    assert "cannot be searched" in sent["messages"][-2]["content"]


async def test_slow_catalog_is_given_up_after_its_deadline(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer, catalog: CatalogStub
) -> None:
    await catalog.set_mode("slow")

    response = await client.post(
        "/chat/generate_response", json={"message": "Any shoes?"}, headers=user
    )

    assert response.status_code == 200
    [sent] = fake_llm.chat_requests()
    assert "cannot be searched" in sent["messages"][-2]["content"]


async def test_configured_key_and_request_id_reach_the_upstream(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer
) -> None:
    await client.post(
        "/chat/generate_response",
        json={"message": "Hi"},
        headers={**user, "X-Request-ID": "trace-me-42"},
    )

    [received] = fake_llm.requests()
    assert received.headers["authorization"] == "Bearer sk-test-key"
    assert received.headers["x-request-id"] == "trace-me-42"
    # Exactly the body the SDK's chat.completions.create would send with these arguments.
    assert received.path == "/v1/chat/completions"
    assert sorted(received.body) == ["max_tokens", "messages", "model"]


async def test_base_url_alone_is_enough_and_sends_a_placeholder_key(
    database_url: str, fake_llm: LlmServer, catalog: CatalogStub, issuer: TestTokenIssuer
) -> None:
    settings = chat_settings(database_url, fake_llm, catalog, openai_api_key=None)
    async with running_app(settings, issuer) as application, http_client(application) as http:
        response = await http.post(
            "/chat/generate_response", json={"message": "Hi"}, headers=issuer.headers()
        )

    assert response.status_code == 200
    [received] = fake_llm.requests()
    assert received.headers["authorization"] == "Bearer no-key-configured"
