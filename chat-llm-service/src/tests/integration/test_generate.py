"""What the model receives and what the caller gets back for a non-streamed reply; the grounding
it gets from the catalog's read model."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from common_libs.testing import (
    LlmServer,
    NatsServer,
    Reply,
    TestTokenIssuer,
    UvicornServer,
    eventually,
)
from common_libs.testing.app_checks import asgi_client
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.services.prompt_builder import SYSTEM_PROMPT
from tests.integration.conftest import chat_settings, read_model_ready, running_app
from tests.support.catalog_events import CatalogEvents
from tests.support.servers import SERVICE_ROOT, CatalogStub, product


def _shoes() -> list[dict[str, Any]]:
    """Two shoes, new products (ids) for each test: the read model keeps their versions."""
    return [
        product(
            "Trail Runner 2", sku="TR-2", price="89.90", description="Grippy trail running shoe"
        ),
        product(
            "Road Runner", sku="RR-1", price="119.00", description="Light running shoes for roads"
        ),
    ]


def _kettle() -> dict[str, Any]:
    return product("Steel Kettle", sku="KT-1", price="25.00", description="1.7 l water kettle")


@pytest.mark.usefixtures("empty_read_model")
async def test_upstream_receives_model_system_prompt_and_the_products_found(
    app: FastAPI,
    client: httpx.AsyncClient,
    user: dict[str, str],
    fake_llm: LlmServer,
    catalog: CatalogStub,
    catalog_feed: CatalogEvents,
) -> None:
    shoes = _shoes()
    await _publish(catalog_feed, *shoes, _kettle())
    asked_before = await catalog.requests()
    question = "Do you have running shoes for trails?"

    response = await client.post(
        "/chat/generate_response", json={"message": question}, headers=user
    )

    assert response.status_code == 200, response.text
    [sent] = fake_llm.chat_requests()
    assert sent["model"] == "gpt-4o-mini"
    canary = app.state.chat_services.canary
    assert sent["messages"][0] == {
        "role": "system",
        "content": f"{canary}\n{SYSTEM_PROMPT}",
    }
    assert sent["messages"][-1] == {"role": "user", "content": question}
    grounding = sent["messages"][-2]
    assert grounding["role"] == "system"
    trail_shoe, road_shoe = shoes
    # The shoe with every word of the question first, then the one with some of them.
    assert (
        f"1. {trail_shoe['name']} | {trail_shoe['sku']} | test | 89.90 USD" in grounding["content"]
    )
    assert f"2. {road_shoe['name']} |" in grounding["content"]
    assert "Kettle" not in grounding["content"]
    # Grounded from the read model: the turn asked the catalog nothing.
    assert await catalog.requests() == asked_before


@pytest.mark.usefixtures("empty_read_model")
async def test_question_whose_words_no_product_has_all_of_finds_products_with_any_of_them(
    client: httpx.AsyncClient,
    user: dict[str, str],
    fake_llm: LlmServer,
    catalog_feed: CatalogEvents,
) -> None:
    shoes = _shoes()
    await _publish(catalog_feed, *shoes, _kettle())

    response = await client.post(
        "/chat/generate_response", json={"message": "Any shoes for rainy days?"}, headers=user
    )

    assert response.status_code == 200, response.text
    [sent] = fake_llm.chat_requests()
    for shoe in shoes:
        assert shoe["name"] in sent["messages"][-2]["content"]
    assert "Kettle" not in sent["messages"][-2]["content"]


async def _publish(feed: CatalogEvents, *products: dict[str, Any]) -> None:
    for item in products:
        sequence = await feed.created(item)
    await feed.wait_handled(sequence)


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


async def test_a_read_model_that_cannot_be_searched_still_answers_and_tells_the_model(
    fresh_database: str, fake_llm: LlmServer, catalog: CatalogStub, issuer: TestTokenIssuer
) -> None:
    engine = create_async_engine(fresh_database, poolclass=NullPool)
    async with engine.begin() as connection:
        await connection.execute(text("ALTER TABLE catalog_products RENAME TO gone"))
    await engine.dispose()
    settings = chat_settings(fresh_database, fake_llm, catalog)

    async with running_app(settings, issuer) as application, asgi_client(application) as http:
        response = await http.post(
            "/chat/generate_response", json={"message": "Any shoes?"}, headers=issuer.headers()
        )

    assert response.status_code == 200
    [sent] = fake_llm.chat_requests()
    assert "cannot be searched" in sent["messages"][-2]["content"]


async def test_a_turn_is_grounded_while_the_catalog_is_down(
    fresh_database: str,
    own_nats: NatsServer,
    fake_llm: LlmServer,
    issuer: TestTokenIssuer,
    tmp_path: Path,
) -> None:
    kettle = _kettle()
    log = tmp_path / "catalog.log"
    server = UvicornServer("tests.support.catalog_stub:app", cwd=SERVICE_ROOT, log_path=log)
    try:
        stub = CatalogStub(server.start().url)
        await stub.set_products([kettle])
        settings = chat_settings(fresh_database, fake_llm, stub, nats_url=own_nats.url)
        async with running_app(settings, issuer) as application, asgi_client(application) as http:
            await eventually(lambda: read_model_ready(application), message="read model ready")
            await asyncio.to_thread(server.stop)
            response = await http.post(
                "/chat/generate_response",
                json={"message": "Do you sell a kettle?"},
                headers=issuer.headers(),
            )
    finally:
        await asyncio.to_thread(server.stop)

    assert response.status_code == 200, response.text
    [sent] = fake_llm.chat_requests()
    assert f"1. {kettle['name']} | {kettle['sku']} |" in sent["messages"][-2]["content"]


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
    assert sorted(received.body) == ["max_tokens", "messages", "model", "tool_choice", "tools"]


async def test_base_url_alone_is_enough_and_sends_a_placeholder_key(
    database_url: str, fake_llm: LlmServer, catalog: CatalogStub, issuer: TestTokenIssuer
) -> None:
    settings = chat_settings(database_url, fake_llm, catalog, openai_api_key=None)
    async with running_app(settings, issuer) as application, asgi_client(application) as http:
        response = await http.post(
            "/chat/generate_response", json={"message": "Hi"}, headers=issuer.headers()
        )

    assert response.status_code == 200
    [received] = fake_llm.requests()
    assert received.headers["authorization"] == "Bearer no-key-configured"
