"""Text PostgreSQL cannot store (U+0000) or UTF-8 cannot encode (an unpaired surrogate) is a 422
validation problem, never a 500 with a traceback in the log."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from common_libs.testing.input_checks import assert_unstorable_text_refused

BAD_TEXT = pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"], ids=["nul", "lone-surrogate"])


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> bool:
    return all(record.exc_info is None for record in caplog.records)


async def post_json(
    client: httpx.AsyncClient, path: str, body: object, headers: dict[str, str]
) -> httpx.Response:
    # json.dumps writes "\u0000" and "\ud800" as the escapes a client sends.
    headers = {**headers, "Content-Type": "application/json"}
    return await client.post(path, content=json.dumps(body), headers=headers)


@BAD_TEXT
@pytest.mark.parametrize("stream", [False, True])
async def test_unstorable_text_in_a_chat_message_is_a_422(
    client: httpx.AsyncClient,
    user: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    bad: str,
    stream: bool,
) -> None:
    with caplog.at_level(logging.INFO):
        response = await post_json(
            client, "/chat/generate_response", {"message": bad, "stream": stream}, user
        )

    assert_unstorable_text_refused(response, what="chat message")
    assert response.json()["errors"][0]["loc"] == ["body", "message"]
    assert no_tracebacks(caplog)


@BAD_TEXT
async def test_unstorable_text_in_embedding_inputs_and_counted_text_is_a_422(
    client: httpx.AsyncClient, user: dict[str, str], bad: str
) -> None:
    embeddings = await post_json(client, "/chat/get_embeddings", {"input": ["ok", bad]}, user)
    counted = await post_json(client, "/chat/count_tokens", {"text": bad}, user)

    assert_unstorable_text_refused(embeddings, what="embedding input")
    assert embeddings.json()["errors"][0]["loc"] == ["body", "input", 1]
    assert_unstorable_text_refused(counted, what="counted text")


async def test_a_nul_in_a_conversation_path_is_a_422(
    client: httpx.AsyncClient, user: dict[str, str]
) -> None:
    response = await client.get("/chat/conversations/a%00b", headers=user)

    assert_unstorable_text_refused(response, what="conversation id")
