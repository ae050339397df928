"""Conversations are the owner's alone: paginated lists, details, deletion; others get 404."""

from __future__ import annotations

import uuid

import httpx
from common_libs.testing import LlmServer, TestTokenIssuer


async def _start_conversation(client: httpx.AsyncClient, headers: dict[str, str], text: str) -> str:
    response = await client.post("/chat/generate_response", json={"message": text}, headers=headers)
    assert response.status_code == 200, response.text
    conversation_id: str = response.json()["conversation_id"]
    return conversation_id


async def test_list_is_paginated_newest_first(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer
) -> None:
    ids = [await _start_conversation(client, user, f"Question {n}") for n in range(3)]

    first = (await client.get("/chat/conversations?limit=2", headers=user)).json()
    second = (
        await client.get(f"/chat/conversations?limit=2&cursor={first['next_cursor']}", headers=user)
    ).json()

    assert [item["id"] for item in first["items"]] == [ids[2], ids[1]]
    assert [item["id"] for item in second["items"]] == [ids[0]]
    assert second["next_cursor"] is None
    assert first["items"][0]["title"] == "Question 2"


async def test_continuing_a_conversation_appends_to_it(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer
) -> None:
    conversation_id = await _start_conversation(client, user, "First")

    response = await client.post(
        "/chat/generate_response",
        json={"message": "Second", "conversation_id": conversation_id},
        headers=user,
    )

    assert response.json()["conversation_id"] == conversation_id
    detail = (await client.get(f"/chat/conversations/{conversation_id}", headers=user)).json()
    assert [m["content"] for m in detail["messages"] if m["role"] == "user"] == ["First", "Second"]
    [sent] = fake_llm.chat_requests()[-1:]
    assert {"role": "user", "content": "First"} in sent["messages"]


async def test_someone_elses_conversation_is_not_found_for_every_operation(
    client: httpx.AsyncClient, user: dict[str, str], issuer: TestTokenIssuer, fake_llm: LlmServer
) -> None:
    conversation_id = await _start_conversation(client, user, "Mine")
    stranger = issuer.headers()
    path = f"/chat/conversations/{conversation_id}"

    read = await client.get(path, headers=stranger)
    deleted = await client.delete(path, headers=stranger)
    continued = await client.post(
        "/chat/generate_response",
        json={"message": "Hijack", "conversation_id": conversation_id},
        headers=stranger,
    )
    listed = (await client.get("/chat/conversations", headers=stranger)).json()

    assert (read.status_code, deleted.status_code, continued.status_code) == (404, 404, 404)
    assert listed["items"] == []
    assert (await client.get(path, headers=user)).status_code == 200


async def test_deleted_conversation_is_gone(
    client: httpx.AsyncClient, user: dict[str, str], fake_llm: LlmServer
) -> None:
    conversation_id = await _start_conversation(client, user, "Bye")

    deleted = await client.delete(f"/chat/conversations/{conversation_id}", headers=user)

    assert deleted.status_code == 204
    assert (
        await client.get(f"/chat/conversations/{conversation_id}", headers=user)
    ).status_code == 404


async def test_unknown_conversation_id_answers_404(
    client: httpx.AsyncClient, user: dict[str, str]
) -> None:
    response = await client.get(f"/chat/conversations/{uuid.uuid4()}", headers=user)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:fleet:chat:conversation-not-found"


async def test_tampered_cursor_answers_422(client: httpx.AsyncClient, user: dict[str, str]) -> None:
    response = await client.get("/chat/conversations?cursor=eyJjIjoxfQ", headers=user)

    assert response.status_code == 422
    assert response.json()["type"] == "urn:fleet:common:invalid-cursor"
