"""Writing events: into the ``outbox`` table, in the caller's transaction.

An event commits or rolls back with the change it describes; the relay
(:mod:`common_libs.events.relay`) publishes it after the commit. Each write takes the subject's
next version from ``event_versions`` (locking that row until the commit, so versions and outbox
order agree per subject) and signals the relay with ``NOTIFY``, which PostgreSQL delivers only if
the transaction commits.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common_libs.events.envelope import EventType
from common_libs.events.schema import OUTBOX_CHANNEL
from common_libs.events.tracing import trace_headers_now
from common_libs.request_id import get_request_id

__all__ = ["write_event", "write_events"]

# One round trip for any number of events of one type: versions first (in subject order, so
# that two transactions lock the same subjects in the same order), then the rows, then NOTIFY.
# An event occurs when it is written (clock_timestamp(), once its subject's version is taken),
# not when its transaction began (now(), the column's default): a transaction that waited for a
# row lock, as every order for one product does for that product, began long before its change
# and its commit, and occurred_at is where the delay to a consumer is measured from. So a
# subject's events occur in the order of their versions too.
_WRITE = text(
    """
    WITH events AS (
        SELECT * FROM unnest(
            CAST(:event_ids AS uuid[]), CAST(:subjects AS text[]), CAST(:datas AS text[])
        ) WITH ORDINALITY AS e(event_id, subject, data, position)
    ),
    versions AS (
        INSERT INTO event_versions (entity, subject, version)
        SELECT :entity, subject, 1 FROM events ORDER BY position
        ON CONFLICT (entity, subject)
        DO UPDATE SET version = event_versions.version + 1
        RETURNING subject, version
    ),
    signal AS (SELECT pg_notify(:channel, '') AS sent)
    INSERT INTO outbox (
        event_id, type, source, subject, version, request_id, headers, data, occurred_at
    )
    SELECT e.event_id, :type, :source, e.subject, v.version, :request_id,
           CAST(:headers AS jsonb), CAST(e.data AS jsonb), clock_timestamp()
    FROM events AS e JOIN versions AS v USING (subject) CROSS JOIN signal
    ORDER BY e.position
    """
)


async def write_events(
    connection: AsyncConnection, event_type: EventType, states: Mapping[Any, BaseModel]
) -> list[UUID]:
    """Write one ``event_type`` event per subject (``{subject id: data}``); return their ids.

    Call it inside the transaction that makes the change. ``data`` must be an instance of the
    event type's model. The request id of the request being handled, if any, travels with the
    event, and so does the trace context of the current span (without one, the request's own
    ``traceparent``/``tracestate``): the relay's producer span becomes its child.
    """
    if not states:
        return []
    ordered = sorted((str(subject), data) for subject, data in states.items())
    for _, data in ordered:
        if not isinstance(data, event_type.data):
            raise TypeError(
                f"{event_type.name} carries {event_type.data.__name__}, not {type(data).__name__}"
            )
    event_ids = [uuid.uuid4() for _ in ordered]
    request_id = get_request_id()
    headers = trace_headers_now()
    await connection.execute(
        _WRITE,
        {
            "event_ids": event_ids,
            "subjects": [subject for subject, _ in ordered],
            "datas": [data.model_dump_json() for _, data in ordered],
            "entity": event_type.entity,
            "type": event_type.name,
            "source": event_type.source.name,
            "request_id": request_id,
            "headers": json.dumps(headers),
            "channel": OUTBOX_CHANNEL,
        },
    )
    return event_ids


async def write_event(
    connection: AsyncConnection, event_type: EventType, subject: Any, data: BaseModel
) -> UUID:
    """Write one event (see :func:`write_events`); return its id."""
    (event_id,) = await write_events(connection, event_type, {subject: data})
    return event_id
