"""A producing service's AsyncAPI 3.0 document, generated from its event declarations.

The envelope and each event's ``data`` schema come from the same pydantic models the service
writes events with, so a test comparing the committed document with :func:`asyncapi_json` fails
as soon as the code and the document disagree::

    python -c "from app.events import asyncapi; print(asyncapi(), end='')" > asyncapi.json
"""

from __future__ import annotations

import json
from typing import Any

from pydantic.json_schema import models_json_schema

from common_libs.events.envelope import EventEnvelope, EventSource

__all__ = ["asyncapi_document", "asyncapi_json"]

_REF = "#/components/schemas/{model}"
_HEADERS = {
    "type": "object",
    "properties": {
        "Nats-Msg-Id": {
            "type": "string",
            "format": "uuid",
            "description": "The envelope's id; the broker drops a second publish of it.",
        },
        "X-Request-ID": {
            "type": "string",
            "description": "The request that caused the event, when there was one.",
        },
        "traceparent": {"type": "string", "description": "W3C Trace Context of that request."},
        "tracestate": {"type": "string", "description": "W3C Trace Context of that request."},
    },
    "required": ["Nats-Msg-Id"],
}


def asyncapi_document(
    source: EventSource, *, title: str, version: str, description: str
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every event ``source`` declares."""
    envelopes = [EventEnvelope[event.data] for event in source.events]  # type: ignore[name-defined]
    refs, schemas = models_json_schema(
        [(envelope, "serialization") for envelope in envelopes], ref_template=_REF
    )
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event, envelope in zip(source.events, envelopes, strict=True):
        messages[event.name] = {
            "name": event.name,
            "title": event.name,
            "summary": event.summary,
            "contentType": "application/json",
            "headers": _HEADERS,
            "payload": refs[(envelope, "serialization")],
        }
        channels[event.name] = {
            "address": event.name,
            "description": f"Stream {source.stream.name}.",
            "messages": {event.name: {"$ref": f"#/components/messages/{event.name}"}},
        }
        operations[f"send.{event.name}"] = {
            "action": "send",
            "summary": event.summary,
            "channel": {"$ref": f"#/channels/{event.name}"},
            "messages": [{"$ref": f"#/channels/{event.name}/messages/{event.name}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": version, "description": description},
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:4222",
                "protocol": "nats",
                "description": "The broker `make up` runs (NATS with JetStream).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas.get("$defs", {})},
    }


def asyncapi_json(source: EventSource, *, title: str, version: str, description: str) -> str:
    """:func:`asyncapi_document` as the committed file holds it (indented, sorted keys)."""
    document = asyncapi_document(source, title=title, version=version, description=description)
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
