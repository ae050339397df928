"""The events' spans (API.md, "Telemetry"): one trace from the change to every reaction to it.

An event stores the trace context of the span that wrote it (:func:`trace_headers_now`, in its
outbox row's ``headers``). The relay publishes it in a PRODUCER span ``publish <type>``, a child
of that context (a root span when the row has none), and the message carries that span's
``traceparent``/``tracestate`` (:func:`start_publishing`). A consumer handles the message in a
CONSUMER span ``process <subject>``, a child of the producer span (:func:`consuming`), so the
handler's database work and log lines belong to the trace of the change.

Names and attributes follow OpenTelemetry's messaging conventions, plus the envelope's
``cloudevents.*`` and the fleet's own ``fleet.event.*``. An error is recorded as its class only
(``error.type`` and the status), never its text, as in the logs. With only the API installed (no
SDK, as in a process that does not trace), no span is recorded and a stored trace context
travels as it is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from nats.aio.msg import Msg
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from common_libs import __version__
from common_libs.events.envelope import EventEnvelope
from common_libs.request_id import TRACE_HEADERS, get_trace_headers

__all__ = [
    "OUTCOME",
    "consuming",
    "describe_event",
    "mark_failed",
    "start_publishing",
    "trace_headers_now",
]

# A proxy until a tracer provider is set, then that provider's tracer: safe at import time.
_tracer = trace.get_tracer("common_libs.events", __version__)

OUTCOME = "fleet.event.outcome"
"""What became of the event: the ``outcome`` label of ``events_published_total`` (producer) or
``events_consumed_total`` (consumer)."""

_PUBLISH: dict[str, AttributeValue] = {
    "messaging.system": "nats",
    "messaging.operation.name": "publish",
    "messaging.operation.type": "send",
}
_PROCESS: dict[str, AttributeValue] = {
    "messaging.system": "nats",
    "messaging.operation.name": "process",
    "messaging.operation.type": "process",
}


def trace_headers_now() -> dict[str, str]:
    """The trace context an event written now carries: the current span's; without one (a
    process that does not trace), the ``traceparent``/``tracestate`` of the request."""
    if not trace.get_current_span().get_span_context().is_valid:
        return dict(get_trace_headers())
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def start_publishing(
    *,
    event_type: str,
    event_id: str,
    source: str,
    subject: str,
    version: int,
    stored_headers: Mapping[str, Any],
    body_size: int | None,
) -> tuple[Span, dict[str, str]]:
    """Start the producer span of one event, a child of the context its row stored; return it
    and the headers the message carries (the stored ones, with this span's trace context).

    The caller ends it (``with span:`` around the publish). It is not made current: nothing but
    the publish happens in it, and the relay's pass is the hot path of every event. An event
    that is not sent (coalesced into a later one) has no body size."""
    headers = {str(name): str(value) for name, value in stored_headers.items()}
    parent = propagate.extract(headers, context=Context())
    attributes: dict[str, AttributeValue] = {
        **_PUBLISH,
        "messaging.destination.name": event_type,
        "messaging.message.id": event_id,
        "cloudevents.event_type": event_type,
        "cloudevents.event_source": source,
        "cloudevents.event_subject": subject,
        "fleet.event.version": version,
    }
    if body_size is not None:
        attributes["messaging.message.body.size"] = body_size
    span = _tracer.start_span(
        f"publish {event_type}",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    )
    # Replaced whole, not updated: a tracestate stored beside a traceparent that did not parse
    # must not travel with the new one. Without an SDK the span is the stored parent itself (or
    # an invalid one), so a valid stored context travels unchanged.
    for name in TRACE_HEADERS:
        headers.pop(name, None)
    propagate.inject(headers, context=trace.set_span_in_context(span, parent))
    return span, headers


@contextmanager
def consuming(message: Msg, *, consumer: str | None) -> Iterator[Span]:
    """A consumer span for handling one message, child of the producer span its headers name.

    An error escaping it is recorded by its class."""
    headers = message.headers or {}
    attributes: dict[str, AttributeValue] = {
        **_PROCESS,
        "messaging.destination.name": message.subject,
        "messaging.message.body.size": len(message.data),
    }
    if "Nats-Msg-Id" in headers:
        attributes["messaging.message.id"] = headers["Nats-Msg-Id"]
    if consumer is not None:
        attributes["messaging.consumer.group.name"] = consumer
    with _tracer.start_as_current_span(
        f"process {message.subject}",
        context=propagate.extract(headers, context=Context()),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except Exception as exc:
            mark_failed(span, type(exc).__name__)
            raise


def describe_event(span: Span, event: EventEnvelope[Any]) -> None:
    """Name the envelope's event on a consumer span (once the message parsed as one)."""
    span.set_attributes(
        {
            "cloudevents.event_id": str(event.id),
            "cloudevents.event_type": event.type,
            "cloudevents.event_source": event.source,
            "cloudevents.event_subject": event.subject,
            "fleet.event.version": event.version,
        }
    )


def mark_failed(span: Span, kind: str) -> None:
    """Set a span's status to error, naming the error's class (never its text)."""
    span.set_attribute("error.type", kind)
    span.set_status(Status(StatusCode.ERROR, kind))
