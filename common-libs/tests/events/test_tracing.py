"""Traces across the broker, on a real PostgreSQL and a real nats-server with the OpenTelemetry
SDK: the change's span, the relay's producer span and the consumer's span make one trace."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from nats.errors import ConnectionClosedError
from nats.js.errors import NoStreamResponseError
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, StatusCode
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common_libs.events import (
    AnyEvent,
    Broker,
    EventConsumer,
    OutboxRelay,
    StreamSpec,
    write_event,
)
from common_libs.events.streams import ensure_stream
from common_libs.request_id import trace_headers_var
from common_libs.testing import ServerProcess, eventually
from common_libs.testing.events import stream_events, wait_for_stream_events
from common_libs.testing.nats import NatsServer

from .conftest import (
    Domain,
    Thing,
    consumer_spans,
    producer_spans,
    quick_consumer,
    traceparent_of,
)

SUPPORT = Path(__file__).parent.parent / "support"
# A request that arrived with a trace context of its caller's.
INCOMING_TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACESTATE = "fleet=abc"

tracer = trace.get_tracer("tests.events")


def relay_for(engine: AsyncEngine, broker: Broker, domain: Domain) -> OutboxRelay:
    return OutboxRelay(
        engine=engine, broker=broker, stream=domain.stream, registry=CollectorRegistry()
    )


async def does_nothing(connection: AsyncConnection, event: AnyEvent) -> None:
    await connection.execute(text("SELECT 1"))


async def consume_until(consumer: EventConsumer, condition: Any, message: str) -> None:
    """Run ``consumer`` until ``condition()`` holds, then stop it."""
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(condition, message=message)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def envelope(domain: Domain, subject: str, version: int) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": domain.changed.name,
        "source": "test-service",
        "subject": subject,
        "version": version,
        "occurred_at": datetime.now(UTC).isoformat(),
        "request_id": None,
        "data": {"id": subject, "count": version},
    }


async def publish(broker: Broker, domain: Domain, body: dict[str, Any], **headers: str) -> None:
    """Publish ``body`` as another producer would, with exactly ``headers`` (none if empty)."""
    js = await broker.jetstream()
    await ensure_stream(js, domain.stream)
    await js.publish(domain.changed.name, json.dumps(body).encode(), headers=headers or None)


def outcomes(spans: list[ReadableSpan]) -> list[Any]:
    return [(span.attributes or {}).get("fleet.event.outcome") for span in spans]


def parent_of(span: ReadableSpan) -> tuple[int, int] | None:
    return None if span.parent is None else (span.parent.trace_id, span.parent.span_id)


def context_of(span: ReadableSpan) -> tuple[int, int]:
    context = span.get_span_context()
    assert context is not None
    return context.trace_id, context.span_id


async def test_an_event_carries_the_trace_of_its_change_through_the_broker_to_its_consumer(
    engine: AsyncEngine,
    broker: Broker,
    domain: Domain,
    nats_server: NatsServer,
    spans: InMemorySpanExporter,
) -> None:
    thing = uuid.uuid4()
    incoming = propagate.extract({"traceparent": INCOMING, "tracestate": TRACESTATE})
    with tracer.start_as_current_span("POST /things", context=incoming, kind=SpanKind.SERVER):
        server = trace.get_current_span().get_span_context()
        async with engine.begin() as connection:
            event_id = await write_event(
                connection, domain.changed, thing, Thing(id=thing, count=1)
            )
    assert await relay_for(engine, broker, domain).relay_once() == 1

    (message,) = await stream_events(nats_server.url, domain.name)
    producer = producer_spans(spans)[str(event_id)]
    assert producer.name == f"publish {domain.changed.name}"
    assert parent_of(producer) == (INCOMING_TRACE_ID, server.span_id)
    assert message.headers["traceparent"] == traceparent_of(producer)
    assert message.headers["tracestate"] == TRACESTATE
    attributes = dict(producer.attributes or {})
    assert attributes.pop("messaging.message.body.size") > 0
    assert attributes == {
        "messaging.system": "nats",
        "messaging.operation.name": "publish",
        "messaging.operation.type": "send",
        "messaging.destination.name": domain.changed.name,
        "messaging.message.id": str(event_id),
        "cloudevents.event_type": domain.changed.name,
        "cloudevents.event_source": "test-service",
        "cloudevents.event_subject": str(thing),
        "fleet.event.version": 1,
        "fleet.event.outcome": "published",
    }

    current: list[SpanContext] = []

    async def handler(connection: AsyncConnection, event: AnyEvent) -> None:
        await connection.execute(text("SELECT 1"))
        current.append(trace.get_current_span().get_span_context())

    consumer = quick_consumer(engine, broker, domain, handler)
    await consume_until(
        consumer,
        lambda: consumer_spans(spans, domain.changed.name),
        message="a consumer span",
    )
    (process,) = consumer_spans(spans, domain.changed.name)
    assert process.name == f"process {domain.changed.name}"
    assert process.kind is SpanKind.CONSUMER
    assert parent_of(process) == context_of(producer)
    assert context_of(process)[0] == INCOMING_TRACE_ID
    assert [(c.trace_id, c.span_id) for c in current] == [context_of(process)]
    assert process.status.status_code is StatusCode.UNSET
    attributes = dict(process.attributes or {})
    assert attributes.pop("messaging.message.body.size") > 0
    assert attributes == {
        "messaging.system": "nats",
        "messaging.operation.name": "process",
        "messaging.operation.type": "process",
        "messaging.destination.name": domain.changed.name,
        "messaging.message.id": str(event_id),
        "messaging.consumer.group.name": consumer.name,
        "cloudevents.event_id": str(event_id),
        "cloudevents.event_type": domain.changed.name,
        "cloudevents.event_source": "test-service",
        "cloudevents.event_subject": str(thing),
        "fleet.event.version": 1,
        "fleet.event.deliveries": 1,
        "fleet.event.outcome": "handled",
    }


async def test_each_consumer_span_records_whether_the_event_was_handled_duplicate_or_stale(
    engine: AsyncEngine, broker: Broker, domain: Domain, spans: InMemorySpanExporter
) -> None:
    subject = str(uuid.uuid4())
    first = envelope(domain, subject, 1)
    await publish(broker, domain, first, **{"Nats-Msg-Id": first["id"], "traceparent": INCOMING})
    await publish(broker, domain, first, **{"Nats-Msg-Id": "published again, later"})
    await publish(broker, domain, envelope(domain, subject, 1))  # no headers at all
    consumer = quick_consumer(engine, broker, domain, does_nothing)
    await consume_until(
        consumer,
        lambda: len(consumer_spans(spans, domain.changed.name)) == 3,
        message="three consumer spans",
    )
    handled, duplicate, stale = consumer_spans(spans, domain.changed.name)
    assert outcomes([handled, duplicate, stale]) == ["handled", "duplicate", "stale"]
    assert all(s.status.status_code is StatusCode.UNSET for s in (handled, duplicate, stale))
    assert parent_of(handled) == (INCOMING_TRACE_ID, 0x00F067AA0BA902B7)
    # Without trace headers the handling starts a trace of its own.
    assert duplicate.parent is None
    assert stale.parent is None
    assert "messaging.message.id" not in (stale.attributes or {})


async def test_a_message_redelivered_after_its_effect_committed_is_a_duplicate_in_its_span(
    engine: AsyncEngine, domain: Domain, nats_server: NatsServer, spans: InMemorySpanExporter
) -> None:
    broker = Broker(nats_server.url, name="loses-the-ack")
    consumer = quick_consumer(engine, broker, domain, does_nothing, ack_wait_seconds=0.5)
    event = envelope(domain, str(uuid.uuid4()), 1)
    try:
        await publish(
            broker, domain, event, **{"Nats-Msg-Id": event["id"], "traceparent": INCOMING}
        )
        subscription = await consumer._subscribe()
        (message,) = await subscription.fetch(1, timeout=5)
        await broker.close()  # the broker is lost between the commit and the acknowledgement
        with pytest.raises(ConnectionClosedError):
            await consumer.handle(message)
        await consume_until(
            consumer,
            lambda: len(consumer_spans(spans, domain.changed.name)) == 2,
            message="the redelivery's span",
        )
    finally:
        await broker.close()
    lost, redelivered = consumer_spans(spans, domain.changed.name)
    assert lost.status.status_code is StatusCode.ERROR
    assert (lost.attributes or {})["error.type"] == "ConnectionClosedError"
    assert "fleet.event.outcome" not in (lost.attributes or {})
    assert outcomes([redelivered]) == ["duplicate"]
    assert (redelivered.attributes or {})["fleet.event.deliveries"] == 2
    assert parent_of(redelivered) == parent_of(lost) == (INCOMING_TRACE_ID, 0x00F067AA0BA902B7)


class SpanOfEachRecord(logging.Handler):
    """Remembers the span that was current when each record was written."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, tuple[int, int]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        context = trace.get_current_span().get_span_context()
        self.records.append((record.getMessage(), (context.trace_id, context.span_id)))


@pytest.fixture
def span_of_each_record() -> Iterator[SpanOfEachRecord]:
    handler = SpanOfEachRecord()
    logger = logging.getLogger("common_libs.events")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


async def test_a_failing_handler_fails_its_span_and_its_log_lines_and_dead_letter_keep_the_trace(
    engine: AsyncEngine,
    broker: Broker,
    domain: Domain,
    nats_server: NatsServer,
    spans: InMemorySpanExporter,
    span_of_each_record: SpanOfEachRecord,
) -> None:
    async def handler(connection: AsyncConnection, event: AnyEvent) -> None:
        raise RuntimeError("the text of this error stays out of the span")

    consumer = quick_consumer(
        engine, broker, domain, handler, max_deliveries=2, backoff_seconds=(0.05,)
    )
    event = envelope(domain, str(uuid.uuid4()), 1)
    sent = {"Nats-Msg-Id": event["id"], "traceparent": INCOMING, "tracestate": TRACESTATE}
    await publish(broker, domain, event, **sent)
    await consume_until(
        consumer,
        lambda: len(consumer_spans(spans, domain.changed.name)) == 2,
        message="two consumer spans",
    )
    failed, dead = consumer_spans(spans, domain.changed.name)
    assert outcomes([failed, dead]) == ["failed", "dead_lettered"]
    for span in (failed, dead):
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "RuntimeError"
        assert (span.attributes or {})["error.type"] == "RuntimeError"
        assert span.events == ()  # no exception event: its text might hold data
    (letter,) = await wait_for_stream_events(
        nats_server.url,
        "DEADLETTER",
        lambda e: len(e) == 1,
        subject=f"deadletter.{consumer.name}.>",
    )
    assert (letter.headers["traceparent"], letter.headers["tracestate"]) == (INCOMING, TRACESTATE)
    lines = [
        (span_context, line)
        for line, span_context in span_of_each_record.records
        if line.startswith(f"consumer {consumer.name}:")
    ]
    assert [span_context for span_context, _ in lines] == [context_of(failed), context_of(dead)]
    assert "failed (delivery 1 of 2, RuntimeError)" in lines[0][1]
    assert "dead-lettered after 2 deliveries" in lines[1][1]


async def test_an_event_the_broker_refuses_fails_its_producer_span(
    engine: AsyncEngine, broker: Broker, domain: Domain, spans: InMemorySpanExporter
) -> None:
    # A stream that captures only "changed": "removed" has nowhere to go.
    narrow = StreamSpec(domain.stream.name, (domain.changed.name,))
    relay = OutboxRelay(engine=engine, broker=broker, stream=narrow, registry=CollectorRegistry())
    kept, lost = uuid.uuid4(), uuid.uuid4()
    async with engine.begin() as connection:
        kept_id = await write_event(connection, domain.changed, kept, Thing(id=kept, count=1))
        lost_id = await write_event(connection, domain.removed, lost, Thing(id=lost, count=0))
    with pytest.raises(NoStreamResponseError):
        await relay.relay_once()
    producers = producer_spans(spans)
    assert producers[str(kept_id)].status.status_code is StatusCode.UNSET
    assert outcomes([producers[str(kept_id)]]) == ["published"]
    refused = producers[str(lost_id)]
    assert refused.name == f"publish {domain.removed.name}"
    assert refused.status.status_code is StatusCode.ERROR
    assert (refused.attributes or {})["error.type"] == "NoStreamResponseError"
    assert outcomes([refused]) == [None]


@pytest.mark.parametrize(
    "stored",
    [(), (("traceparent", "00-not-a-trace-context"), ("tracestate", "left=over"))],
    ids=["none", "unreadable"],
)
async def test_an_event_without_a_usable_trace_context_is_published_in_a_root_producer_span(
    engine: AsyncEngine,
    broker: Broker,
    domain: Domain,
    nats_server: NatsServer,
    spans: InMemorySpanExporter,
    stored: tuple[tuple[str, str], ...],
) -> None:
    thing = uuid.uuid4()
    trace_headers_var.set(stored)  # a request of a process that does not trace, or none
    try:
        async with engine.begin() as connection:
            event_id = await write_event(
                connection, domain.changed, thing, Thing(id=thing, count=1)
            )
    finally:
        trace_headers_var.set(())
    assert await relay_for(engine, broker, domain).relay_once() == 1
    (message,) = await stream_events(nats_server.url, domain.name)
    producer = producer_spans(spans)[str(event_id)]
    assert producer.parent is None
    assert message.headers["traceparent"] == traceparent_of(producer)
    assert "tracestate" not in message.headers


async def test_a_relay_without_the_sdk_passes_the_stored_trace_context_on_unchanged(
    engine: AsyncEngine,
    domain: Domain,
    nats_server: NatsServer,
    events_database: str,
    tmp_path: Path,
) -> None:
    thing = uuid.uuid4()
    trace_headers_var.set((("traceparent", INCOMING), ("tracestate", TRACESTATE)))
    try:
        async with engine.begin() as connection:
            await write_event(connection, domain.changed, thing, Thing(id=thing, count=1))
    finally:
        trace_headers_var.set(())
    # A process of its own: this one has the SDK's tracer provider, that one only the API.
    relay_process = ServerProcess(
        [
            sys.executable,
            str(SUPPORT / "relay_process.py"),
            events_database,
            nats_server.url,
            domain.stream.name,
            ",".join(domain.stream.subjects),
        ],
        log_path=tmp_path / "relay.log",
    )
    with relay_process:
        (message,) = await wait_for_stream_events(
            nats_server.url, domain.name, lambda e: len(e) == 1
        )
    assert (message.headers["traceparent"], message.headers["tracestate"]) == (
        INCOMING,
        TRACESTATE,
    )
