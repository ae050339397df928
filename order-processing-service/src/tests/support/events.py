"""What reached the broker about an order, read once nothing of it waits in the outbox."""

from __future__ import annotations

from common_libs.testing import eventually
from common_libs.testing.events import StreamEvent, stream_events
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import Base

_OUTBOX = Base.metadata.tables["outbox"]


async def _waiting(engine: AsyncEngine, subject: str) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(
            select(func.count()).select_from(_OUTBOX).where(_OUTBOX.c.subject == subject)
        )
    return int(count or 0)


async def published_events(engine: AsyncEngine, nats_url: str, order_id: str) -> list[StreamEvent]:
    """Every event published about the order, in stream order, once none waits in the outbox.

    The relay deletes a row only after the broker acknowledged it, so everything written about
    the order before this call (all of it committed before the answers the test got) is in the
    stream by then: the list is final, and "no second event" can be asserted without waiting.
    """

    async def drained() -> bool:
        return await _waiting(engine, order_id) == 0

    await eventually(drained, message=f"the outbox rows of order {order_id} published")
    events = await stream_events(nats_url, "ORDERS", subject="orders.order.>")
    return [event for event in events if event.envelope.subject == order_id]


def summary(events: list[StreamEvent]) -> list[tuple[str, int]]:
    """``(type, version)`` of each event."""
    return [(event.envelope.type, event.envelope.version) for event in events]
