"""Streamed replies in process: failures before and after the stream started."""

from __future__ import annotations

import json

import httpx
from common_libs.testing import LlmServer, Reply

from tests.support.servers import failing, parse_events


async def test_failure_before_the_stream_starts_is_an_ordinary_problem(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer
) -> None:
    fake_llm.enqueue(*[failing(502)] * 3)

    response = await client.post(
        "/chat/generate_response", json={"message": "Hi", "stream": True}, headers=user
    )

    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"


async def test_upstream_dropping_mid_stream_sends_an_error_event_and_keeps_the_partial_reply(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer
) -> None:
    fake_llm.enqueue(Reply(deltas=["Half ", "of it", "lost"], abort_after=2))

    response = await client.post(
        "/chat/generate_response", json={"message": "Hi", "stream": True}, headers=user
    )

    events = parse_events(response.text)
    assert [name for name, _ in events] == ["message", "message", "error"]
    problem = json.loads(events[-1][1])
    assert problem["status"] == 502
    assert problem["title"] == "Bad Gateway"
    assert problem["type"] == "urn:fleet:common:upstream-failed"
    [conversation] = (await client.get("/chat/conversations", headers=user)).json()["items"]
    detail = (await client.get(f"/chat/conversations/{conversation['id']}", headers=user)).json()
    assert [(m["content"], m["is_complete"]) for m in detail["messages"]] == [
        ("Hi", True),
        ("Half of it", False),
    ]


async def test_streamed_reply_is_stored_before_done_is_sent(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer
) -> None:
    response = await client.post(
        "/chat/generate_response", json={"message": "Hi", "stream": True}, headers=user
    )

    name, data = parse_events(response.text)[-1]
    assert name == "done"
    conversation_id = json.loads(data)["conversation_id"]
    detail = (await client.get(f"/chat/conversations/{conversation_id}", headers=user)).json()
    assert detail["messages"][-1]["content"] == "Hello from the test server."
    assert detail["messages"][-1]["is_complete"] is True
    sent = fake_llm.chat_requests()[-1]
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    # Exactly the body the SDK's chat.completions.create would send with these arguments.
    assert sorted(sent) == [
        "max_tokens",
        "messages",
        "model",
        "stream",
        "stream_options",
        "tool_choice",
        "tools",
    ]
    assert sent["max_tokens"] == 256
