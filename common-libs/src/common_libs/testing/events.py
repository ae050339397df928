"""Reading what reached the broker, for tests: every message of a stream, as envelopes.

    events = await stream_events(nats_server.url, "CATALOG", subject="catalog.product.>")
    assert [e.envelope.type for e in events] == ["catalog.product.created"]

:func:`wait_for_stream_events` waits (on the condition, bounded) until a predicate over the
stream's events holds, since the relay publishes after the commit, not before the response;
:func:`published_events` gives every event about one subject once its producer's outbox holds
none of it (with a producer's engine: the ``db`` extra). :func:`publish_user_deleted` publishes
what user-service publishes when an account is deleted, for the suites of the other services.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import nats
from nats.js.errors import NotFoundError

from common_libs.events.envelope import DeletedData, EventEnvelope
from common_libs.events.streams import USERS, ensure_stream
from common_libs.testing.processes import eventually

if TYPE_CHECKING:  # SQLAlchemy is the db extra's: reading the broker does without it
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "StreamEvent",
    "publish_user_deleted",
    "published_events",
    "stream_events",
    "wait_for_stream_events",
]


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One stored message: its stream sequence, subject, headers and parsed envelope."""

    sequence: int
    subject: str
    headers: dict[str, str]
    envelope: EventEnvelope[dict[str, Any]]


async def stream_events(url: str, stream: str, *, subject: str = ">") -> list[StreamEvent]:
    """Every message stored in ``stream`` whose subject matches ``subject``, in stream order."""
    client = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        js = client.jetstream()
        try:
            info = await js.stream_info(stream)
        except NotFoundError:
            return []
        found: list[StreamEvent] = []
        sequence = info.state.first_seq
        while sequence <= info.state.last_seq:
            try:
                message = await js.get_msg(stream, seq=sequence, next=True, subject=subject)
            except NotFoundError:
                break
            assert message.seq is not None
            found.append(
                StreamEvent(
                    sequence=message.seq,
                    subject=message.subject or "",
                    headers=dict(message.headers or {}),
                    envelope=EventEnvelope[dict[str, Any]].model_validate_json(message.data or b""),
                )
            )
            sequence = message.seq + 1
        return found
    finally:
        await client.close()


async def wait_for_stream_events(
    url: str,
    stream: str,
    condition: Callable[[list[StreamEvent]], bool],
    *,
    subject: str = ">",
    within: float = 10.0,
    message: str = "the expected events in the stream",
) -> list[StreamEvent]:
    """Poll ``stream`` until ``condition(events)`` holds; return the events. Raises after
    ``within`` seconds with ``message`` and what the stream held."""
    events: list[StreamEvent] = []

    async def holds() -> bool:
        events[:] = await stream_events(url, stream, subject=subject)
        return condition(events)

    try:
        await eventually(holds, within=within, interval=0.05, message=message)
    except TimeoutError:
        held = [(e.envelope.type, e.envelope.subject, e.envelope.version) for e in events]
        raise AssertionError(f"timed out waiting for {message}; the stream holds {held}") from None
    return events


async def published_events(
    engine: AsyncEngine, url: str, stream: str, subject: str, *, within: float = 10.0
) -> list[StreamEvent]:
    """Every event about ``subject`` (an envelope's subject: a product's, order's or user's id),
    in stream order, once none of it waits in the producer's outbox.

    The relay removes a row only after the broker acknowledged it, so everything committed
    before this call is in the stream by then: the list is final, and "no second event" can be
    asserted without waiting any longer.
    """
    from sqlalchemy import text

    async def drained() -> bool:
        async with engine.connect() as connection:
            waiting = await connection.scalar(
                text("SELECT EXISTS (SELECT 1 FROM outbox WHERE subject = :subject)"),
                {"subject": subject},
            )
        return not waiting

    await eventually(drained, within=within, message=f"the outbox rows about {subject} published")
    events = await stream_events(url, stream)
    return [event for event in events if event.envelope.subject == subject]


async def publish_user_deleted(
    url: str, user_id: str, *, occurred_at: datetime | None = None, version: int = 2
) -> EventEnvelope[DeletedData]:
    """Publish ``users.user.deleted`` about ``user_id`` to the ``USERS`` stream (created if
    missing) as user-service's relay does: the envelope, ``Nats-Msg-Id`` its id. Returns it."""
    event = EventEnvelope[DeletedData](
        id=uuid.uuid4(),
        type="users.user.deleted",
        source="user-service",
        subject=user_id,
        version=version,
        occurred_at=occurred_at or datetime.now(UTC),
        data=DeletedData(id=uuid.UUID(user_id)),
    )
    client = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        js = client.jetstream()
        await ensure_stream(js, USERS)
        await js.publish(
            event.type,
            event.model_dump_json().encode(),
            stream=USERS.name,
            headers={"Nats-Msg-Id": str(event.id)},
        )
    finally:
        await client.close()
    return event
