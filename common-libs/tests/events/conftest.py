"""What the events tests share: a database with the events' tables, a stream of each test's own,
helpers to read the broker, and the spans the events' code ends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id
from prometheus_client import CollectorRegistry
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common_libs.db import create_engine
from common_libs.events import Broker, EventConsumer, EventSource, EventType, StreamSpec
from common_libs.events.schema import create_inbox_tables, create_outbox_tables
from common_libs.testing import PostgresServer, create_database
from common_libs.testing.nats import NatsServer


class Thing(BaseModel):
    """The data of the test events."""

    id: uuid.UUID
    count: int


@dataclass(frozen=True)
class Domain:
    """A stream and event types of one test's own (streams outlive tests within a session)."""

    stream: StreamSpec
    source: EventSource
    changed: EventType
    removed: EventType

    @property
    def name(self) -> str:
        return self.stream.name


def create_events_database(postgres_server: PostgresServer, name: str, *statements: str) -> str:
    """A database with ``outbox``/``event_versions`` and ``inbox``/``consumed_versions``, made by
    the migration helpers a service's migration calls, then ``statements``; its URL."""
    url = create_database(postgres_server, name)

    async def migrate() -> None:
        engine = create_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(
                lambda sync: (
                    create_outbox_tables(SimpleNamespace(get_bind=lambda: sync)),
                    create_inbox_tables(SimpleNamespace(get_bind=lambda: sync)),
                )
            )
            for statement in statements:
                await connection.execute(text(statement))
        await engine.dispose()

    asyncio.run(migrate())
    return url


def quick_consumer(
    engine: AsyncEngine,
    broker: Broker,
    domain: Domain,
    handler: Any,
    *,
    name: str | None = None,
    **options: Any,
) -> EventConsumer:
    """A consumer of ``domain``'s stream (a name of its own unless given) that asks for a message
    every 0.2 s and counts into a registry of its own; ``options`` are the consumer's others."""
    return EventConsumer(
        name=name or f"c{uuid.uuid4().hex[:8]}",
        stream=domain.stream,
        subject=domain.stream.subjects[0],
        engine=engine,
        broker=broker,
        handler=handler,
        **{"fetch_timeout": 0.2, "registry": CollectorRegistry(), **options},
    )


@pytest.fixture(scope="session")
def events_database(postgres_server: PostgresServer) -> str:
    """The events tests' database (see :func:`create_events_database`)."""
    return create_events_database(postgres_server, "cl_events")


@pytest.fixture
async def engine(events_database: str) -> AsyncIterator[AsyncEngine]:
    """A pool on the events database; the outbox starts empty for every test."""
    engine = create_engine(events_database)
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE outbox, event_versions, inbox, consumed_versions"))
    yield engine
    await engine.dispose()


@pytest.fixture
def domain() -> Domain:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    stream = StreamSpec(prefix.upper(), (f"{prefix}.>",))
    source = EventSource("test-service", stream)
    return Domain(
        stream=stream,
        source=source,
        changed=source.event(f"{prefix}.thing.changed", Thing, "A thing changed."),
        removed=source.event(f"{prefix}.thing.removed", Thing, "A thing went."),
    )


@pytest.fixture
async def broker(nats_server: NatsServer) -> AsyncIterator[Broker]:
    broker = Broker(nats_server.url, name="events-tests")
    yield broker
    await broker.close()


@pytest.fixture(scope="session", autouse=True)
def span_exporter(tracing: TracerProvider) -> InMemorySpanExporter:
    """Every span ended in this process from the first events test on, in memory.

    The global tracer provider can be set once per process: the session's (``tracing``, the
    provider ``configure_tracing`` installs) gets this exporter too. Every events test runs with
    it, as a service that traces does."""
    exporter = InMemorySpanExporter()
    tracing.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def spans(span_exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    """The session's span exporter, emptied before and after the test."""
    span_exporter.clear()
    yield span_exporter
    span_exporter.clear()


def traceparent_of(span: ReadableSpan) -> str:
    """The ``traceparent`` header that names ``span`` as the parent."""
    context = span.get_span_context()
    assert context is not None
    ids = f"{format_trace_id(context.trace_id)}-{format_span_id(context.span_id)}"
    return f"00-{ids}-{context.trace_flags:02x}"


def producer_spans(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    """The relay's producer spans ended so far, by event id."""
    return {
        str((span.attributes or {})["messaging.message.id"]): span
        for span in exporter.get_finished_spans()
        if span.kind is SpanKind.PRODUCER
    }


def consumer_spans(exporter: InMemorySpanExporter, destination: str) -> list[ReadableSpan]:
    """The consumer spans ended so far of messages on ``destination``, in the order they ended."""
    return [
        span
        for span in exporter.get_finished_spans()
        if span.kind is SpanKind.CONSUMER
        and (span.attributes or {}).get("messaging.destination.name") == destination
    ]
