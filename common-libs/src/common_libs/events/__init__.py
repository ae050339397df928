"""Events between services (API.md, "Events"): the envelope, the transactional outbox and its
relay, and idempotent consumers with an inbox and a dead-letter stream, on NATS JetStream.

- :mod:`~common_libs.events.envelope`: ``EventEnvelope``, ``EventSource`` and ``EventType``
- :mod:`~common_libs.events.outbox`: ``write_event``/``write_events`` in the caller's transaction
- :mod:`~common_libs.events.relay`: ``OutboxRelay``, the background task that publishes the outbox
- :mod:`~common_libs.events.consumer`: ``EventConsumer`` and the version guard
- :mod:`~common_libs.events.deny_list`: ``DeletedUsers``, the deny list of deleted accounts
- :mod:`~common_libs.events.tracing`: the producer and consumer spans, and the trace context
  that travels with each event
- :mod:`~common_libs.events.schema`: the tables, for a service's models and its migration
- :mod:`~common_libs.events.streams`: the fleet's streams
- :mod:`~common_libs.events.asyncapi`: a producer's AsyncAPI document from its declarations
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from common_libs.events.broker import Broker, open_broker
    from common_libs.events.consumer import AnyEvent, EventConsumer, EventHandler, is_newer_version
    from common_libs.events.deny_list import DeletedUsers, start_deny_list
    from common_libs.events.envelope import DeletedData, EventEnvelope, EventSource, EventType
    from common_libs.events.outbox import write_event, write_events
    from common_libs.events.relay import OutboxRelay, start_relay
    from common_libs.events.streams import CATALOG, DEADLETTER, ORDERS, USERS, StreamSpec

# Imported when first used: the envelope alone (``common_libs.testing.events`` reads the broker
# with it) needs neither SQLAlchemy nor the ``db`` extra.
_HOMES = {
    "Broker": "broker",
    "open_broker": "broker",
    "AnyEvent": "consumer",
    "EventConsumer": "consumer",
    "EventHandler": "consumer",
    "is_newer_version": "consumer",
    "DeletedUsers": "deny_list",
    "start_deny_list": "deny_list",
    "DeletedData": "envelope",
    "EventEnvelope": "envelope",
    "EventSource": "envelope",
    "EventType": "envelope",
    "write_event": "outbox",
    "write_events": "outbox",
    "OutboxRelay": "relay",
    "start_relay": "relay",
    "CATALOG": "streams",
    "DEADLETTER": "streams",
    "ORDERS": "streams",
    "USERS": "streams",
    "StreamSpec": "streams",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)


__all__ = [
    "CATALOG",
    "DEADLETTER",
    "ORDERS",
    "USERS",
    "AnyEvent",
    "Broker",
    "DeletedData",
    "DeletedUsers",
    "EventConsumer",
    "EventEnvelope",
    "EventHandler",
    "EventSource",
    "EventType",
    "OutboxRelay",
    "StreamSpec",
    "is_newer_version",
    "open_broker",
    "start_deny_list",
    "start_relay",
    "write_event",
    "write_events",
]
