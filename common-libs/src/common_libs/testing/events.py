"""Reading what reached the broker, for tests: every message of a stream, as envelopes.

    events = await stream_events(nats_server.url, "CATALOG", subject="catalog.product.>")
    assert [e.envelope.type for e in events] == ["catalog.product.created"]

:func:`wait_for_stream_events` waits (on the condition, bounded) until a predicate over the
stream's events holds, since the relay publishes after the commit, not before the response.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats
from nats.js.errors import NotFoundError

from common_libs.events.envelope import EventEnvelope

__all__ = ["StreamEvent", "stream_events", "wait_for_stream_events"]


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
    deadline = time.monotonic() + within
    while True:
        events = await stream_events(url, stream, subject=subject)
        if condition(events):
            return events
        if time.monotonic() > deadline:
            held = [(e.envelope.type, e.envelope.subject, e.envelope.version) for e in events]
            raise AssertionError(f"timed out waiting for {message}; the stream holds {held}")
        await asyncio.sleep(0.05)
