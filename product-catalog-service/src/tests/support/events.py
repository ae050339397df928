"""Reading the catalog's events back from the broker."""

from __future__ import annotations

from collections.abc import Collection

from common_libs.testing.events import StreamEvent, stream_events, wait_for_stream_events

PRODUCT_EVENTS = "catalog.product.>"


async def created_events(nats_url: str) -> list[StreamEvent]:
    """Every catalog.product.created event in the stream (what a rejected create would have
    published, under an id nobody knows)."""
    return await stream_events(nats_url, "CATALOG", subject="catalog.product.created")


async def wait_for_events(
    nats_url: str, subjects: Collection[str], count: int, *, within: float = 10.0
) -> list[StreamEvent]:
    """Wait until the stream holds ``count`` events about these products; return them in stream
    order (an extra event published by then shows up, and fails the caller's comparison)."""
    wanted = set(subjects)

    def mine(events: list[StreamEvent]) -> list[StreamEvent]:
        return [event for event in events if event.envelope.subject in wanted]

    events = await wait_for_stream_events(
        nats_url,
        "CATALOG",
        lambda events: len(mine(events)) >= count,
        subject=PRODUCT_EVENTS,
        within=within,
        message=f"{count} events about {sorted(wanted)}",
    )
    return mine(events)
