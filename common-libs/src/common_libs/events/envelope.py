"""The event envelope every message carries (API.md, "Events"), and the declared event types.

A producing service declares its events once, with the pydantic model of their ``data``::

    CATALOG_EVENTS = EventSource("product-catalog-service", CATALOG)
    PRODUCT_UPDATED = CATALOG_EVENTS.event("catalog.product.updated", Product, "A product changed.")

and writes one in the transaction of the change (:func:`common_libs.events.outbox.write_events`).
The same declarations generate the service's AsyncAPI document
(:func:`common_libs.events.asyncapi.asyncapi_document`), so the document cannot drift from the code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from common_libs.events.streams import StreamSpec

__all__ = ["DeletedData", "EventEnvelope", "EventSource", "EventType"]

DataT = TypeVar("DataT")

_EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")


class EventEnvelope(BaseModel, Generic[DataT]):
    """One event: what happened (``type``) to which thing (``subject``), at which ``version``."""

    model_config = ConfigDict(frozen=True)

    id: UUID = Field(description="Unique per event; also the message's Nats-Msg-Id header.")
    type: str = Field(
        description="`<domain>.<entity>.<event>`, also the NATS subject it is published on.",
        examples=["catalog.product.updated"],
    )
    source: str = Field(description="The service that produced it.")
    subject: str = Field(description="The id of the product, order or user it is about.")
    version: int = Field(
        ge=1, description="Increases strictly per subject; ignore one not newer than applied."
    )
    occurred_at: AwareDatetime = Field(description="When the change committed (UTC).")
    request_id: str | None = Field(
        default=None, description="The X-Request-ID of the request that caused it, if any."
    )
    data: DataT = Field(description="The thing's current state, without personal data.")


class DeletedData(BaseModel):
    """The ``data`` of a ``*.deleted`` event: only the id."""

    id: UUID


@dataclass(frozen=True, slots=True)
class EventType:
    """A declared event: its type name, the model of its ``data``, and what it means."""

    name: str
    data: type[BaseModel]
    summary: str
    source: EventSource = field(repr=False, compare=False)

    @property
    def entity(self) -> str:
        """``catalog.product`` for ``catalog.product.updated``: versions count per entity."""
        return self.name.rsplit(".", 1)[0]


@dataclass(slots=True)
class EventSource:
    """A producing service: its name (the envelope's ``source``), its stream and its events."""

    name: str
    stream: StreamSpec
    events: list[EventType] = field(default_factory=list)

    def event(self, name: str, data: type[BaseModel], summary: str) -> EventType:
        """Declare an event type published by this service."""
        if not _EVENT_TYPE.fullmatch(name):
            raise ValueError(f"event type {name!r} is not <domain>.<entity>.<event>")
        if not any(_captures(pattern, name) for pattern in self.stream.subjects):
            raise ValueError(f"event type {name!r} is not a subject of stream {self.stream.name}")
        if any(existing.name == name for existing in self.events):
            raise ValueError(f"event type {name!r} is declared twice")
        event_type = EventType(name=name, data=data, summary=summary, source=self)
        self.events.append(event_type)
        return event_type


def _captures(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one token, a final ``>`` one or more."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for index, part in enumerate(wanted):
        if part == ">":
            return len(tokens) > index
        if index >= len(tokens) or part not in ("*", tokens[index]):
            return False
    return len(tokens) == len(wanted)


def envelope_json(
    *,
    event_id: UUID,
    type_: str,
    source: str,
    subject: str,
    version: int,
    occurred_at: datetime,
    request_id: str | None,
    data_json: str,
) -> bytes:
    """The envelope as published, with ``data`` spliced in as the JSON the database holds."""
    head: dict[str, Any] = {
        "id": str(event_id),
        "type": type_,
        "source": source,
        "subject": subject,
        "version": version,
        "occurred_at": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "request_id": request_id,
    }
    return (json.dumps(head, separators=(",", ":"))[:-1] + ',"data":' + data_json + "}").encode()
