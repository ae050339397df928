"""What reached the broker about an order, read once nothing of it waits in the outbox."""

from __future__ import annotations

from common_libs.testing.events import StreamEvent
from common_libs.testing.events import published_events as _published_events
from sqlalchemy.ext.asyncio import AsyncEngine


async def published_events(engine: AsyncEngine, nats_url: str, order_id: str) -> list[StreamEvent]:
    """Every event published about the order, in stream order: final once none waits in the
    outbox, so "no second event" can be asserted without waiting (common-libs' helper)."""
    return await _published_events(engine, nats_url, "ORDERS", order_id)


def summary(events: list[StreamEvent]) -> list[tuple[str, int]]:
    """``(type, version)`` of each event."""
    return [(event.envelope.type, event.envelope.version) for event in events]
