"""Streaming over real HTTP, with the service running as a uvicorn process."""

from __future__ import annotations

import json

import httpx
from common_libs.testing import LlmServer, Reply, eventually

from tests.support.servers import CatalogStub, next_event


async def test_first_delta_reaches_the_client_before_upstream_sends_the_last(
    service_url: str, user: dict[str, str], fake_llm: LlmServer, catalog: CatalogStub
) -> None:
    fake_llm.enqueue(Reply(deltas=["Hel", "lo ", "there"], gate_after=1, gate="rest"))
    body = {"message": "Hi", "stream": True}

    async with (
        httpx.AsyncClient(base_url=service_url, timeout=10) as http,
        http.stream("POST", "/chat/generate_response", json=body, headers=user) as response,
    ):
        lines = response.aiter_lines()
        first = await next_event(lines)
        upstream = fake_llm.streams()[-1]
        fake_llm.release("rest")
        rest = [await next_event(lines) for _ in range(3)]

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert first == ("message", json.dumps({"delta": "Hel"}, separators=(",", ":")))
    assert (upstream.sent, upstream.finished, upstream.closed_by_client) == (1, False, False)
    assert [json.loads(data) for _, data in rest[:2]] == [{"delta": "lo "}, {"delta": "there"}]
    name, data = rest[2]
    done = json.loads(data)
    assert name == "done"
    assert done["model"] == "gpt-4o-mini"
    assert done["usage"] == {"prompt_tokens": 42, "completion_tokens": 3, "total_tokens": 45}


async def test_client_disconnect_closes_upstream_within_a_second_and_keeps_the_partial_reply(
    service_url: str, user: dict[str, str], fake_llm: LlmServer, catalog: CatalogStub
) -> None:
    fake_llm.enqueue(Reply(deltas=["Partial ", "answer", "never"], gate_after=2, gate="x"))
    body = {"message": "Tell me everything", "stream": True}

    async with httpx.AsyncClient(base_url=service_url, timeout=10) as http:
        async with http.stream("POST", "/chat/generate_response", json=body, headers=user) as r:
            lines = r.aiter_lines()
            await next_event(lines)
            await next_event(lines)
        # Leaving the block hung up mid-stream.

        async def upstream_closed() -> bool:
            return fake_llm.streams()[-1].closed_by_client

        seconds = await eventually(upstream_closed, within=5, message="upstream closed")

        async def stored() -> bool:
            page = (await http.get("/chat/conversations", headers=user)).json()
            return len(page["items"]) == 1

        await eventually(stored, within=5, message="partial reply stored")
        [conversation] = (await http.get("/chat/conversations", headers=user)).json()["items"]
        detail = await http.get(f"/chat/conversations/{conversation['id']}", headers=user)
        usage = (await http.get("/chat/usage", headers=user)).json()

    assert seconds < 1.0
    messages = [(m["role"], m["content"], m["is_complete"]) for m in detail.json()["messages"]]
    assert messages == [
        ("user", "Tell me everything", True),
        ("assistant", "Partial answer", False),
    ]
    assert usage["completion_tokens"] == 2  # counted with tiktoken: "Partial answer"
    assert usage["prompt_tokens"] > 0
