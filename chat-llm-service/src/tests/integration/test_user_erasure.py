"""A deleted user's conversations and messages are erased when ``users.user.deleted`` arrives;
their usage records stay, detached from them; other users' data is untouched; a second delivery
changes nothing.

The events are real envelopes published into the session broker's USERS stream; the app
(``app`` fixture) consumes them with its lifespan running.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import nats
from common_libs.events import USERS, DeletedData, EventEnvelope
from common_libs.events.streams import ensure_stream
from common_libs.testing import LlmServer, NatsServer, TestTokenIssuer
from common_libs.testing.processes import eventually
from fastapi import FastAPI
from nats.js import JetStreamContext
from nats.js.api import PubAck
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.usage_repository import ERASED_USER_ID
from app.services.user_erasure import CONSUMER_NAME, erase_user

UserData = dict[str, Any]


@asynccontextmanager
async def _jetstream(nats_server: NatsServer) -> AsyncIterator[JetStreamContext]:
    client = await nats.connect(nats_server.url, connect_timeout=2, allow_reconnect=False)
    try:
        js = client.jetstream()
        await ensure_stream(js, USERS)
        yield js
    finally:
        await client.close()


def _user_deleted(user_id: str) -> EventEnvelope[DeletedData]:
    return EventEnvelope[DeletedData](
        id=uuid.uuid4(),
        type="users.user.deleted",
        source="user-service",
        subject=user_id,
        version=2,
        occurred_at=datetime.now(UTC),
        data=DeletedData(id=uuid.UUID(user_id)),
    )


async def _publish(
    js: JetStreamContext, event: EventEnvelope[DeletedData], *, message_id: str | None = None
) -> PubAck:
    return await js.publish(
        event.type,
        event.model_dump_json().encode(),
        stream=USERS.name,
        headers={"Nats-Msg-Id": message_id or str(event.id)},
    )


async def _handled_up_to(js: JetStreamContext, sequence: int) -> bool:
    """The consumer acknowledged every message up to ``sequence`` (after its commit)."""
    info = await js.consumer_info(USERS.name, CONSUMER_NAME)
    return info.ack_floor is not None and (info.ack_floor.stream_seq or 0) >= sequence


async def _chatting_user(client: httpx.AsyncClient, issuer: TestTokenIssuer) -> str:
    """A new user with two conversations (messages, usage records and a quota row)."""
    user_id = str(uuid.uuid4())
    headers = issuer.headers(subject=user_id)
    for text_ in ("My address is 1 Elm Street", "Which laptop should I buy?"):
        response = await client.post(
            "/chat/generate_response", json={"message": text_}, headers=headers
        )
        assert response.status_code == 200, response.text
    return user_id


async def _data_of(connection: AsyncConnection, user_id: str) -> UserData:
    """Everything stored about ``user_id``, including usage records once theirs."""

    async def rows(sql: str, **parameters: object) -> list[tuple[Any, ...]]:
        result = await connection.execute(text(sql), parameters)
        return sorted(tuple(row) for row in result.all())

    return {
        "conversations": await rows(
            "SELECT id, title FROM conversations WHERE owner_id = :u", u=user_id
        ),
        "messages": await rows(
            "SELECT m.id, m.content FROM messages m "
            "JOIN conversations c ON c.id = m.conversation_id WHERE c.owner_id = :u",
            u=user_id,
        ),
        "usage_records": await rows(
            "SELECT id, kind, model, total_tokens, request_id, conversation_id "
            "FROM usage_records WHERE user_id = :u",
            u=user_id,
        ),
        "daily_usage": await rows(
            "SELECT day, total_tokens FROM daily_usage WHERE user_id = :u", u=user_id
        ),
    }


async def _records(connection: AsyncConnection, ids: list[uuid.UUID]) -> list[tuple[Any, ...]]:
    result = await connection.execute(
        text(
            "SELECT id, user_id, kind, model, total_tokens, request_id, conversation_id "
            "FROM usage_records WHERE id = ANY(:ids)"
        ),
        {"ids": ids},
    )
    return sorted(tuple(row) for row in result.all())


async def _read(engine: AsyncEngine, user_id: str) -> UserData:
    async with engine.connect() as connection:
        return await _data_of(connection, user_id)


async def _erased(engine: AsyncEngine, user_id: str) -> bool:
    return await _read(engine, user_id) == {
        "conversations": [],
        "messages": [],
        "usage_records": [],
        "daily_usage": [],
    }


async def test_deleted_user_is_erased_keeping_anonymous_usage_and_others_data(
    app: FastAPI,
    client: httpx.AsyncClient,
    issuer: TestTokenIssuer,
    fake_llm: LlmServer,
    nats_server: NatsServer,
) -> None:
    engine: AsyncEngine = app.state.engine
    deleted, other = (await _chatting_user(client, issuer), await _chatting_user(client, issuer))
    before = await _read(engine, deleted)
    others_before = await _read(engine, other)
    assert len(before["messages"]) == 4
    assert len(before["usage_records"]) == 2

    async with _jetstream(nats_server) as js:
        await _publish(js, _user_deleted(deleted))
        await eventually(lambda: _erased(engine, deleted), message="user erased")

    async with engine.connect() as connection:
        kept = await _records(connection, [row[0] for row in before["usage_records"]])
    # The tokens stay for accounting; the user, the request and the conversation do not.
    assert kept == sorted(
        (record_id, ERASED_USER_ID, kind, model, tokens, None, None)
        for record_id, kind, model, tokens, _request, _conversation in before["usage_records"]
    )
    assert await _read(engine, other) == others_before


async def test_the_same_event_again_changes_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    issuer: TestTokenIssuer,
    fake_llm: LlmServer,
    nats_server: NatsServer,
) -> None:
    engine: AsyncEngine = app.state.engine
    deleted, other = (await _chatting_user(client, issuer), await _chatting_user(client, issuer))
    record_ids = [row[0] for row in (await _read(engine, deleted))["usage_records"]]
    event = _user_deleted(deleted)

    async with _jetstream(nats_server) as js:
        await _publish(js, event)
        await eventually(lambda: _erased(engine, deleted), message="user erased")
        async with engine.connect() as connection:
            kept = await _records(connection, record_ids)
        others_before = await _read(engine, other)

        # The broker drops a second publish of the same id; under another message id (as after
        # the duplicate window) it is delivered, and the consumer's inbox recognises the event.
        again = await _publish(js, event)
        redelivered = await _publish(js, event, message_id=f"{event.id}-again")
        await eventually(
            lambda: _handled_up_to(js, redelivered.seq), message="second delivery handled"
        )

    assert again.duplicate
    async with engine.connect() as connection:
        assert await _records(connection, record_ids) == kept
    assert await _erased(engine, deleted)
    assert await _read(engine, other) == others_before


async def test_erasing_twice_in_the_handler_changes_nothing_more(
    app: FastAPI, client: httpx.AsyncClient, issuer: TestTokenIssuer, fake_llm: LlmServer
) -> None:
    engine: AsyncEngine = app.state.engine
    deleted, other = (await _chatting_user(client, issuer), await _chatting_user(client, issuer))
    record_ids = [row[0] for row in (await _read(engine, deleted))["usage_records"]]
    event = EventEnvelope[dict[str, Any]].model_validate(
        _user_deleted(deleted).model_dump(mode="json")
    )

    async with engine.connect() as connection:
        transaction = await connection.begin()
        others_before = await _data_of(connection, other)
        await erase_user(connection, event)
        once = (await _data_of(connection, deleted), await _records(connection, record_ids))
        await erase_user(connection, event)
        twice = (await _data_of(connection, deleted), await _records(connection, record_ids))
        others_after = await _data_of(connection, other)
        await transaction.rollback()

    assert once[0]["messages"] == []
    assert twice == once
    assert others_after == others_before
