"""A deleted user's conversations and messages are erased when ``users.user.deleted`` arrives;
their usage records stay, detached from them; other users' data is untouched; a second delivery
changes nothing.

The events are real envelopes published into the session broker's USERS stream; the app
(``app`` fixture) consumes them with its lifespan running. The consumer survives outages: the
broker stopped and started again as itself, and the database's connections terminated while a
deletion is delivered (those two tests run an app of their own on a database and a nats-server of
their own).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from common_libs.events import DEADLETTER, USERS, DeletedData, EventConsumer, EventEnvelope
from common_libs.events.streams import ensure_stream
from common_libs.testing import (
    LlmServer,
    NatsServer,
    PostgresServer,
    TestTokenIssuer,
    free_port,
    start_nats,
)
from common_libs.testing.app_checks import asgi_client
from common_libs.testing.db_checks import create_migrated_database
from common_libs.testing.events import publish_user_deleted, stream_events
from common_libs.testing.outages import ConsumerCounts, deliver_during_outages
from common_libs.testing.processes import eventually
from fastapi import FastAPI
from nats.js import JetStreamContext
from nats.js.api import PubAck
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.usage_repository import ERASED_USER_ID
from app.services.user_erasure import CONSUMER_NAME, erase_user
from tests.integration.conftest import SERVICE_ROOT, chat_settings, read_model_ready, running_app
from tests.support.servers import CatalogStub

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


# -- Outages: an app and a nats-server of each test's own, on a database of the module's own -----


@pytest.fixture(scope="module")
def own_database_url(postgres_server: PostgresServer) -> str:
    """A migrated database of these tests alone: terminating its connections concerns no other
    app of the session."""
    return create_migrated_database(
        postgres_server, "chat_service_erasure_outages", alembic_ini=SERVICE_ROOT / "alembic.ini"
    )


async def _inbox(engine: AsyncEngine) -> set[uuid.UUID]:
    """The ids of the events the erasure consumer recorded as handled."""
    async with engine.connect() as connection:
        rows = await connection.scalars(
            text("SELECT event_id FROM inbox WHERE consumer = :c"), {"c": CONSUMER_NAME}
        )
        return set(rows)


async def _anonymized(engine: AsyncEngine, before: UserData) -> list[tuple[Any, ...]]:
    """The usage records that were the user's (``before``), as they are now."""
    async with engine.connect() as connection:
        return await _records(connection, [row[0] for row in before["usage_records"]])


def _anonymous(before: UserData) -> list[tuple[Any, ...]]:
    """What the user's usage records (``before``) are once erased: detached, tokens kept."""
    return sorted(
        (record_id, ERASED_USER_ID, kind, model, tokens, None, None)
        for record_id, kind, model, tokens, _request, _conversation in before["usage_records"]
    )


async def test_the_consumer_comes_back_with_the_broker_and_erases_each_deletion_once(
    own_database_url: str,
    issuer: TestTokenIssuer,
    fake_llm: LlmServer,
    catalog: CatalogStub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A broker of this test's own, stopped and started again as itself: same port, same store.
    port, store = free_port(), tmp_path / "nats"
    broker = ExitStack()
    with broker:
        url = broker.enter_context(start_nats(port=port, store_dir=store)).url
        settings = chat_settings(own_database_url, fake_llm, catalog, nats_url=url)
        async with running_app(settings, issuer) as application, asgi_client(application) as http:
            engine: AsyncEngine = application.state.engine
            counts = ConsumerCounts(application.state.user_erasure, monkeypatch)
            first, second = await _chatting_user(http, issuer), await _chatting_user(http, issuer)
            first_before, second_before = await _read(engine, first), await _read(engine, second)
            inbox_before = await _inbox(engine)

            deleted_first = await publish_user_deleted(url, first)
            await eventually(lambda: _erased(engine, first), message="first user erased")
            first_erased = await _anonymized(engine, first_before)
            # Ready (the catalog's read model filled and caught up) before the broker goes.
            await eventually(lambda: read_model_ready(application), message="ready")

            broker.close()
            await eventually(
                lambda: not application.state.user_erasure.broker.connected,
                message="broker seen gone",
            )
            # Without the broker the app goes on answering, from its database.
            assert (await http.get("/health")).status_code == 200
            assert (await http.get("/ready")).status_code == 200
            listed = await http.get("/chat/conversations", headers=issuer.headers(subject=second))
            assert listed.status_code == 200
            assert len(listed.json()["items"]) == 2

            assert broker.enter_context(start_nats(port=port, store_dir=store)).url == url
            deleted_second = await publish_user_deleted(url, second)
            await eventually(
                lambda: _erased(engine, second),
                within=30,
                message="second user erased after the broker came back",
            )
            second_erased = await _anonymized(engine, second_before)
            first_after = await _anonymized(engine, first_before)
            inbox = await _inbox(engine) - inbox_before
            # The broker came back with its store: both deletions are in the stream.
            stored = [event.envelope.id for event in await stream_events(url, USERS.name)]

    assert stored == [deleted_first.id, deleted_second.id]
    # The second user's conversations are gone, their usage kept without them.
    assert second_erased == _anonymous(second_before)
    # Each deletion was handled exactly once: the first not again after the broker came back.
    assert first_erased == first_after == _anonymous(first_before)
    assert inbox == {deleted_first.id, deleted_second.id}
    assert counts.consumed("handled") == 2


async def test_a_deletion_delivered_while_the_database_is_away_waits_and_is_applied(
    own_database_url: str,
    issuer: TestTokenIssuer,
    fake_llm: LlmServer,
    catalog: CatalogStub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with start_nats(port=free_port(), store_dir=tmp_path / "nats") as server:
        settings = chat_settings(own_database_url, fake_llm, catalog, nats_url=server.url)
        async with running_app(settings, issuer) as application, asgi_client(application) as http:
            engine: AsyncEngine = application.state.engine
            consumer: EventConsumer = application.state.user_erasure
            # A message that fails for any reason but an outage would be dead-lettered at its
            # first delivery, and one that waits is delivered again at once (the app's backoff
            # starts at a second).
            monkeypatch.setattr(consumer, "max_deliveries", 1)
            monkeypatch.setattr(consumer, "backoff_seconds", (0.05,))
            counts = ConsumerCounts(consumer, monkeypatch)
            user = await _chatting_user(http, issuer)
            before = await _read(engine, user)
            inbox_before = await _inbox(engine)

            # The user's conversations held: the erasure, when it comes, waits mid-way; three
            # times the database goes away while it waits.
            deleted = await deliver_during_outages(
                own_database_url,
                hold=text("SELECT id FROM conversations WHERE owner_id = :u FOR UPDATE").bindparams(
                    u=user
                ),
                publish=lambda: publish_user_deleted(server.url, user),
                counts=counts,
            )

            # Applied, and the consumer's connection back in its pool: from now on the pool
            # hands out no connection the outages cut (the delivery that failed on the last cut
            # had the pool replace every older one). Polled through the pool before that, a read
            # could get one of them while the consumer held the live one (it failed under load).
            await eventually(lambda: counts.consumed("handled") == 1, message="deletion applied")
            assert await _erased(engine, user)
            anonymized = await _anonymized(engine, before)
            listed = await http.get("/chat/conversations", headers=issuer.headers(subject=user))
            assert listed.status_code == 200
            assert listed.json()["items"] == []
            # Back to ready once its connections are back (the read model caught up meanwhile).
            await eventually(lambda: read_model_ready(application), message="ready")
            assert (await http.get("/ready")).status_code == 200
            dead_letters = await stream_events(server.url, DEADLETTER.name)
            inbox = await _inbox(engine) - inbox_before

    assert len(before["conversations"]) == 2
    assert anonymized == _anonymous(before)
    assert inbox == {deleted.id}
    # Each outage failed a delivery; none counted towards dead-lettering it.
    assert counts.consumed("failed") >= 3
    assert counts.consumed("handled") == 1
    assert counts.dead_lettered() == 0
    assert dead_letters == []
