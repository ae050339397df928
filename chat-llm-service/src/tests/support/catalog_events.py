"""The catalog's events as its relay publishes them: real envelopes into a real broker's
``CATALOG`` stream (``Nats-Msg-Id`` = the envelope's id), and the consumer's progress on them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import nats
from common_libs.events import CATALOG, EventEnvelope
from common_libs.events.streams import ensure_stream
from common_libs.testing import eventually
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NoStreamResponseError, NotFoundError

from app.services.catalog_read_model import CONSUMER_NAME

__all__ = ["CatalogEvents", "catalog_events"]

Product = dict[str, Any]


class CatalogEvents:
    """Publish ``catalog.product.*`` events; versions count up per product unless given."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js
        self._versions: dict[str, int] = {}

    def envelope(
        self, kind: str, subject: str, data: dict[str, Any], *, version: int | None = None
    ) -> EventEnvelope[dict[str, Any]]:
        """The next event about ``subject`` (``kind``: created, updated or deleted)."""
        if version is None:
            version = self._versions.get(subject, 0) + 1
        self._versions[subject] = max(version, self._versions.get(subject, 0))
        return EventEnvelope[dict[str, Any]](
            id=uuid.uuid4(),
            type=f"catalog.product.{kind}",
            source="product-catalog-service",
            subject=subject,
            version=version,
            occurred_at=datetime.now(UTC),
            data=data,
        )

    async def publish(
        self, event: EventEnvelope[dict[str, Any]], *, message_id: str | None = None
    ) -> int:
        """Publish ``event``; its stream sequence (the broker's, also for a dropped duplicate)."""
        acks: list[PubAck] = []

        async def acknowledged() -> bool:
            # A stream created a moment ago may not answer its first publish yet; the message
            # id makes a second attempt safe (the broker keeps one copy), as for the relay.
            try:
                acks.append(
                    await self.js.publish(
                        event.type,
                        event.model_dump_json().encode(),
                        stream=CATALOG.name,
                        headers={"Nats-Msg-Id": message_id or str(event.id)},
                    )
                )
            except NoStreamResponseError:
                return False
            return True

        await eventually(acknowledged, within=5, message=f"{event.type} acknowledged")
        return acks[0].seq

    async def created(self, product: Product, *, version: int | None = None) -> int:
        """Publish ``catalog.product.created`` with the whole product."""
        return await self.publish(self.envelope("created", product["id"], product, version=version))

    async def updated(self, product: Product, *, version: int | None = None) -> int:
        """Publish ``catalog.product.updated`` with the whole product."""
        return await self.publish(self.envelope("updated", product["id"], product, version=version))

    async def deleted(self, product: Product, *, version: int | None = None) -> int:
        """Publish ``catalog.product.deleted`` with the product's id."""
        data = {"id": product["id"]}
        return await self.publish(self.envelope("deleted", product["id"], data, version=version))

    async def handled_up_to(self, sequence: int) -> bool:
        """The read model's consumer acknowledged every message up to ``sequence`` (after its
        commit)."""
        try:
            info = await self.js.consumer_info(CATALOG.name, CONSUMER_NAME)
        except NotFoundError:
            return False
        return info.ack_floor is not None and (info.ack_floor.stream_seq or 0) >= sequence

    async def wait_handled(self, sequence: int, *, within: float = 10.0) -> None:
        """Wait until the consumer handled every message up to ``sequence``."""
        await eventually(
            lambda: self.handled_up_to(sequence),
            within=within,
            interval=0.05,
            message=f"catalog events up to {sequence} handled",
        )


@asynccontextmanager
async def catalog_events(url: str) -> AsyncIterator[CatalogEvents]:
    """A publisher on the broker at ``url`` (the stream created if missing)."""
    client = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        js = client.jetstream()
        await ensure_stream(js, CATALOG)
        yield CatalogEvents(js)
    finally:
        await client.close()
