"""The order tools: they read order-processing-service (its stub here; the pact keeps the two
honest) with the caller's own token, show the caller's own orders only, without the shipping
address, and turn every failure into a result the model can recover from."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from common_libs.testing import LlmServer, Reply, TestTokenIssuer, ToolCall, ToolCalls

from tests.support.servers import OrdersStub, order


def _results(llm: LlmServer) -> list[dict[str, Any]]:
    answering = llm.chat_requests()[-1]
    return [json.loads(m["content"]) for m in answering["messages"] if m["role"] == "tool"]


async def _turn(
    client: httpx.AsyncClient, headers: dict[str, str], llm: LlmServer, *calls: ToolCall
) -> list[dict[str, Any]]:
    llm.enqueue(ToolCalls(calls=list(calls)), Reply())
    response = await client.post(
        "/chat/generate_response", json={"message": "About my orders"}, headers=headers
    )
    assert response.status_code == 200, response.text
    return _results(llm)


async def test_my_orders_are_read_with_my_own_token_and_without_the_address(
    client: httpx.AsyncClient, issuer: TestTokenIssuer, fake_llm: LlmServer, orders: OrdersStub
) -> None:
    me, someone = str(uuid.uuid4()), str(uuid.uuid4())
    mine, theirs = order(me, status="shipped"), order(someone)
    await orders.set_orders([mine, theirs])
    headers = issuer.headers(subject=me)

    listed, read, other = await _turn(
        client,
        headers,
        fake_llm,
        ToolCall("list_my_orders", '{"limit": 3, "status": "shipped"}', id="call_1"),
        ToolCall("get_order", json.dumps({"order_id": mine["id"]}), id="call_2"),
        ToolCall("get_order", json.dumps({"order_id": theirs["id"]}), id="call_3"),
    )

    assert [(o["id"], o["status"]) for o in listed["orders"]] == [(mine["id"], "shipped")]
    assert read["order"]["total"] == mine["total"]
    assert read["order"]["items"][0]["name"] == "Trail shoe"
    assert other["error"]["code"] == "not_found"
    prompt = json.dumps(fake_llm.chat_requests()[-1]["messages"])
    assert "Analytical Row" not in prompt
    assert "Ada Lovelace" not in prompt
    # Of the other customer's order, the model learns nothing but "not found".
    assert theirs["id"] not in json.dumps([listed, read, other])
    received = await orders.requests()
    assert {r["authorization"] for r in received} == {headers["Authorization"]}
    assert sorted((r["path"], sorted(r["query"].items())) for r in received) == sorted(
        [
            ("/orders", [("limit", "3"), ("status", "shipped")]),
            (f"/orders/{mine['id']}", []),
            (f"/orders/{theirs['id']}", []),
        ]
    )


async def test_an_orders_service_that_fails_gives_the_model_an_error_to_recover_from(
    client: httpx.AsyncClient,
    user: dict[str, str],
    fake_llm: LlmServer,
    orders: OrdersStub,
) -> None:
    for mode in ("error", "bad_body"):
        await orders.set_mode(mode)

        [result] = await _turn(
            client, user, fake_llm, ToolCall("list_my_orders", "{}", id="call_1")
        )

        assert result["error"] == {
            "code": "failed",
            "message": "The orders cannot be read right now.",
        }
