"""``common_libs.testing.outages``: an event delivered while the database goes away under its
handler, again and again, is applied once and never dead-lettered (a real PostgreSQL whose
connections are terminated, a real nats-server)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common_libs.db import create_engine
from common_libs.events import AnyEvent, Broker, EventConsumer
from common_libs.testing import PostgresServer, eventually
from common_libs.testing.nats import NatsServer
from common_libs.testing.outages import ConsumerCounts, deliver_during_outages

from .conftest import Domain, create_events_database
from .test_consumer import envelope, publish, running, stop


@pytest.fixture(scope="module")
def outage_database(postgres_server: PostgresServer) -> str:
    """A database of this module's own: its connections are terminated."""
    return create_events_database(
        postgres_server,
        "cl_event_outages",
        "CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL)",
        "INSERT INTO counter VALUES (1, 0)",
    )


async def _count(connection: AsyncConnection, event: AnyEvent) -> None:
    await connection.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))


async def test_an_event_delivered_during_outages_is_applied_once_and_never_dead_lettered(
    outage_database: str,
    domain: Domain,
    nats_server: NatsServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = create_engine(outage_database)
    broker = Broker(nats_server.url, name="outage-tests")
    consumer = EventConsumer(
        name=f"c{uuid.uuid4().hex[:8]}",
        stream=domain.stream,
        subject=domain.stream.subjects[0],
        engine=engine,
        broker=broker,
        handler=_count,
        max_deliveries=1,  # a failure that is not an outage would dead-letter it at once
        backoff_seconds=(0.05,),
        fetch_timeout=0.2,
    )
    counts = ConsumerCounts(consumer, monkeypatch)
    event = envelope(domain, str(uuid.uuid4()), 1)
    task = await running(consumer)
    try:
        async with engine.connect() as connection:  # the app holds a connection to cut
            await connection.execute(text("SELECT 1"))

        async def publish_it() -> str:
            await publish(broker, domain, event)
            return str(event["id"])

        published = await deliver_during_outages(
            outage_database,
            hold=text("SELECT n FROM counter WHERE id = 1 FOR UPDATE"),
            publish=publish_it,
            counts=counts,
        )
        await eventually(lambda: counts.consumed("handled") == 1, message="applied")
        async with engine.connect() as connection:
            applied = await connection.scalar(text("SELECT n FROM counter WHERE id = 1"))
    finally:
        await stop(task)
        await broker.close()
        await engine.dispose()

    assert published == event["id"]
    assert applied == 1
    # Each outage failed a delivery; none counted towards dead-lettering it.
    assert counts.consumed("failed") >= 3
    assert counts.dead_lettered() == 0
