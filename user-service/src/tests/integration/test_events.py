"""Accounts created and deleted reach the USERS stream with the documented envelope, once, and
without personal data; a registration that fails publishes nothing.

The relay publishes committed rows only, so these tests commit for real (``committing_client``,
unique emails, removed afterwards) and read what reached the session's real NATS server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import nats
import pytest
from common_libs.events import USERS
from common_libs.testing import NatsServer
from common_libs.testing.events import published_events, stream_events
from fastapi import FastAPI
from sqlalchemy import delete, exists, select

from app.db.tables import Base, User
from app.main import create_app
from app.models.email_address import normalize_email
from tests.conftest import make_settings
from tests.integration.conftest import PASSWORD, unique_email
from tests.support.users import bearer, login

OUTBOX = Base.metadata.tables["outbox"]


@pytest.fixture
async def committed_emails(app: FastAPI) -> AsyncIterator[list[str]]:
    """Emails of the accounts a test commits; whatever is left of them is removed afterwards."""
    emails: list[str] = []
    yield emails
    async with app.state.engine.begin() as connection:
        await connection.execute(
            delete(User).where(User.email_normalized.in_([normalize_email(e) for e in emails]))
        )


async def _register(
    client: httpx.AsyncClient, email: str, *, request_id: str, full_name: str = "Event Tester"
) -> httpx.Response:
    return await client.post(
        "/users",
        json={"email": email, "password": PASSWORD, "full_name": full_name},
        headers={"X-Request-ID": request_id},
    )


async def _raw_messages(nats_url: str) -> list[tuple[dict[str, str], bytes]]:
    """Headers and body of every message in the USERS stream, as stored."""
    client = await nats.connect(nats_url, connect_timeout=2, allow_reconnect=False)
    try:
        js = client.jetstream()
        state = (await js.stream_info(USERS.name)).state
        messages = await asyncio.gather(
            *(js.get_msg(USERS.name, seq) for seq in range(state.first_seq, state.last_seq + 1))
        )
        return [(dict(message.headers or {}), message.data or b"") for message in messages]
    finally:
        await client.close()


async def test_registration_publishes_user_registered_with_id_and_role(
    app: FastAPI,
    committing_client: httpx.AsyncClient,
    nats_server: NatsServer,
    committed_emails: list[str],
) -> None:
    email, request_id = unique_email("event"), f"register-{uuid.uuid4().hex}"
    committed_emails.append(email)

    response = await _register(committing_client, email, request_id=request_id)
    user_id = response.json()["id"]
    [event] = await published_events(app.state.engine, nats_server.url, USERS.name, user_id)

    assert response.status_code == 201
    assert event.subject == "users.user.registered"
    envelope = event.envelope
    assert (envelope.type, envelope.source, envelope.subject, envelope.version) == (
        "users.user.registered",
        "user-service",
        user_id,
        1,
    )
    assert envelope.data == {"id": user_id, "role": "customer"}
    assert envelope.request_id == request_id
    assert event.headers["Nats-Msg-Id"] == str(envelope.id)
    assert event.headers["X-Request-ID"] == request_id


async def test_account_deletion_publishes_user_deleted_as_version_2(
    app: FastAPI,
    committing_client: httpx.AsyncClient,
    nats_server: NatsServer,
    committed_emails: list[str],
) -> None:
    email, request_id = unique_email("leaver"), f"delete-{uuid.uuid4().hex}"
    committed_emails.append(email)
    user_id = (await _register(committing_client, email, request_id="register")).json()["id"]
    tokens = await login(committing_client, email)

    response = await committing_client.delete(
        "/users/me", headers={**bearer(tokens), "X-Request-ID": request_id}
    )
    registered, deleted = await published_events(
        app.state.engine, nats_server.url, USERS.name, user_id
    )

    assert response.status_code == 204
    assert (registered.envelope.type, registered.envelope.version) == ("users.user.registered", 1)
    assert deleted.subject == "users.user.deleted"
    assert (deleted.envelope.type, deleted.envelope.source, deleted.envelope.version) == (
        "users.user.deleted",
        "user-service",
        2,
    )
    assert deleted.envelope.data == {"id": user_id}
    assert deleted.envelope.request_id == request_id
    assert deleted.headers["Nats-Msg-Id"] == str(deleted.envelope.id)


async def test_duplicate_registration_publishes_nothing(
    app: FastAPI,
    committing_client: httpx.AsyncClient,
    nats_server: NatsServer,
    committed_emails: list[str],
) -> None:
    email, request_id = unique_email("twice"), f"duplicate-{uuid.uuid4().hex}"
    committed_emails.append(email)
    first = await _register(committing_client, email, request_id="first")
    await published_events(app.state.engine, nats_server.url, USERS.name, first.json()["id"])

    duplicate = await _register(committing_client, email.upper(), request_id=request_id)
    # Its transaction ended before the answer: a row it wrote would be in the outbox, or (once
    # relayed) in the stream. Outbox first, so that a row moving to the stream is seen.
    async with app.state.engine.connect() as connection:
        in_outbox = await connection.scalar(
            select(exists().where(OUTBOX.c.request_id == request_id))
        )
    in_stream = [
        event
        for event in await stream_events(nats_server.url, USERS.name)
        if event.envelope.request_id == request_id
    ]

    assert duplicate.status_code == 409
    assert (in_outbox, in_stream) == (False, [])


async def test_no_message_in_the_stream_carries_the_email_or_the_name(
    app: FastAPI,
    committing_client: httpx.AsyncClient,
    nats_server: NatsServer,
    committed_emails: list[str],
) -> None:
    email, full_name = unique_email("private"), f"Private Person {uuid.uuid4().hex[:8]}"
    committed_emails.append(email)
    user = await _register(committing_client, email, request_id="private", full_name=full_name)
    tokens = await login(committing_client, email)
    await committing_client.delete("/users/me", headers=bearer(tokens))
    assert (
        len(
            await published_events(app.state.engine, nats_server.url, USERS.name, user.json()["id"])
        )
        == 2
    )

    messages = await _raw_messages(nats_server.url)

    carrying = [
        (headers, body)
        for headers, body in messages
        for text in (str(headers), body.decode())
        if email in text.lower() or full_name.lower() in text.lower()
    ]
    assert messages
    assert carrying == []


async def test_replicas_bootstrapping_the_admin_publish_one_registered_event(
    app: FastAPI, database_url: str, nats_server: NatsServer, committed_emails: list[str]
) -> None:
    email = unique_email("admin")
    committed_emails.append(email)
    replicas = [
        create_app(
            make_settings(database_url=database_url, admin_email=email, admin_password=PASSWORD)
        )
        for _ in range(3)
    ]

    async with AsyncExitStack() as stack:
        await asyncio.gather(
            *(stack.enter_async_context(r.router.lifespan_context(r)) for r in replicas)
        )
    async with app.state.engine.connect() as connection:
        admin_id = str(
            await connection.scalar(
                select(User.id).where(User.email_normalized == normalize_email(email))
            )
        )
    [event] = await published_events(app.state.engine, nats_server.url, USERS.name, admin_id)

    assert (event.envelope.type, event.envelope.version) == ("users.user.registered", 1)
    assert event.envelope.data == {"id": admin_id, "role": "admin"}
    assert event.envelope.request_id is None
