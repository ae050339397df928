"""The outbox and its relay on a real PostgreSQL and a real nats-server."""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path
from types import SimpleNamespace

import asyncpg  # type: ignore[import-untyped]
import pytest
from nats.errors import ConnectionClosedError
from nats.js.errors import NoStreamResponseError
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from common_libs.db import create_engine
from common_libs.events import (
    Broker,
    OutboxRelay,
    StreamSpec,
    open_broker,
    start_relay,
    write_event,
    write_events,
)
from common_libs.events import relay as relay_module
from common_libs.events.metrics import event_metrics
from common_libs.events.schema import (
    create_inbox_tables,
    create_outbox_tables,
    drop_inbox_tables,
    drop_outbox_tables,
)
from common_libs.events.streams import ensure_stream
from common_libs.request_id import request_id_var, trace_headers_var
from common_libs.testing import (
    PostgresServer,
    ServerProcess,
    create_database,
    eventually,
    free_port,
)
from common_libs.testing.events import published_events, stream_events, wait_for_stream_events
from common_libs.testing.nats import NatsServer, start_nats

from .conftest import Domain, Thing, producer_spans, traceparent_of

SUPPORT = Path(__file__).parent.parent / "support"


async def outbox_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(text("SELECT count(*) FROM outbox")))


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def relay_refusing_removals(
    engine: AsyncEngine, broker: Broker, domain: Domain, registry: CollectorRegistry
) -> OutboxRelay:
    """A relay to a stream that captures only "changed": a "removed" event has nowhere to go."""
    narrow = StreamSpec(domain.stream.name, (domain.changed.name,))
    return OutboxRelay(engine=engine, broker=broker, stream=narrow, registry=registry)


def published(registry: CollectorRegistry, domain: Domain, outcome: str) -> float:
    return sample(registry, "events_published_total", type=domain.changed.name, outcome=outcome)


async def test_a_rolled_back_change_publishes_nothing_and_a_committed_one_once(
    engine: AsyncEngine, broker: Broker, domain: Domain, nats_server: NatsServer
) -> None:
    registry = CollectorRegistry()
    relay = OutboxRelay(engine=engine, broker=broker, stream=domain.stream, registry=registry)
    kept, dropped = uuid.uuid4(), uuid.uuid4()

    async def change_that_fails() -> None:
        async with engine.begin() as connection:
            await write_event(connection, domain.changed, dropped, Thing(id=dropped, count=1))
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError, match="the change failed"):
        await change_that_fails()
    async with engine.begin() as connection:
        event_id = await write_event(connection, domain.changed, kept, Thing(id=kept, count=1))

    assert await relay.relay_once() == 1
    assert await relay.relay_once() == 0

    events = await stream_events(nats_server.url, domain.name)
    assert [(e.envelope.id, e.envelope.subject) for e in events] == [(event_id, str(kept))]
    assert events[0].headers["Nats-Msg-Id"] == str(event_id)
    assert events[0].envelope.data == {"id": str(kept), "count": 1}
    assert events[0].envelope.source == "test-service"
    assert await outbox_rows(engine) == 0
    assert (
        sample(registry, "events_published_total", type=domain.changed.name, outcome="published")
        == 1
    )


async def test_the_envelope_carries_versions_per_subject_and_the_request_context(
    engine: AsyncEngine,
    broker: Broker,
    domain: Domain,
    nats_server: NatsServer,
    spans: InMemorySpanExporter,
) -> None:
    relay = OutboxRelay(
        engine=engine, broker=broker, stream=domain.stream, registry=CollectorRegistry()
    )
    first, second = uuid.uuid4(), uuid.uuid4()
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    request_id_var.set("req-123")
    trace_headers_var.set((("traceparent", traceparent),))
    try:
        async with engine.begin() as connection:
            await write_events(
                connection,
                domain.changed,
                {first: Thing(id=first, count=1), second: Thing(id=second, count=1)},
            )
            await write_event(connection, domain.removed, first, Thing(id=first, count=0))
        async with engine.begin() as connection:
            await write_event(connection, domain.changed, first, Thing(id=first, count=2))
    finally:
        request_id_var.set(None)
        trace_headers_var.set(())
    async with engine.begin() as connection:
        assert await write_events(connection, domain.changed, {}) == []

    await relay.relay_once()
    events = await stream_events(nats_server.url, domain.name)
    versions = [(e.envelope.subject, e.envelope.type, e.envelope.version) for e in events]
    assert sorted(v for v in versions if v[0] == str(first)) == [
        (str(first), domain.changed.name, 1),
        (str(first), domain.changed.name, 3),
        (str(first), domain.removed.name, 2),
    ]
    assert [v for v in versions if v[0] == str(second)] == [(str(second), domain.changed.name, 1)]
    assert all(e.envelope.request_id == "req-123" for e in events)
    assert all(e.headers["X-Request-ID"] == "req-123" for e in events)
    # Written where no span was current (a process that does not trace): the request's own
    # trace context is the producer spans' parent, and each message carries its producer's.
    producers = producer_spans(spans)
    for event in events:
        producer = producers[str(event.envelope.id)]
        assert event.headers["traceparent"] == traceparent_of(producer)
        assert producer.parent is not None
        assert (producer.parent.trace_id, producer.parent.span_id) == (
            0x0AF7651916CD43DD8448EB211C80319C,
            0xB7AD6B7169203331,
        )
    assert all(e.envelope.occurred_at.utcoffset() is not None for e in events)


async def test_an_event_occurs_when_it_is_written_not_when_its_transaction_began(
    engine: AsyncEngine, domain: Domain
) -> None:
    thing = uuid.uuid4()

    async def a_write_waits_for_a_lock() -> bool:
        async with engine.connect() as connection:
            waiting = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            return bool(waiting)

    async with engine.connect() as first, engine.connect() as second:
        await first.begin()
        # Holds the subject's version row until it commits: the second write waits for it, as
        # the orders for one product wait for each other.
        await write_event(first, domain.changed, thing, Thing(id=thing, count=1))
        await second.begin()
        began = await second.scalar(text("SELECT now()"))
        waiting = asyncio.create_task(
            write_event(second, domain.changed, thing, Thing(id=thing, count=2))
        )
        await eventually(a_write_waits_for_a_lock, message="the second write waits")
        released = await first.scalar(text("SELECT clock_timestamp()"))
        await first.commit()
        await waiting
        await second.commit()
    async with engine.connect() as connection:
        occurred = (
            (
                await connection.execute(
                    text("SELECT occurred_at FROM outbox WHERE subject = :s ORDER BY version"),
                    {"s": str(thing)},
                )
            )
            .scalars()
            .all()
        )

    assert len(occurred) == 2
    assert occurred[0] < began < released < occurred[1]


async def test_writing_data_of_another_model_is_refused(
    engine: AsyncEngine, domain: Domain
) -> None:

    class Other(BaseModel):
        id: uuid.UUID

    async with engine.begin() as connection:
        with pytest.raises(TypeError, match="carries Thing, not Other"):
            await write_event(connection, domain.changed, 1, Other(id=uuid.uuid4()))


async def test_the_running_relay_publishes_on_notify(
    engine: AsyncEngine, broker: Broker, domain: Domain, nats_server: NatsServer
) -> None:
    registry = CollectorRegistry()
    # A poll far longer than the test: only the NOTIFY of the commit can wake the relay.
    relay = OutboxRelay(
        engine=engine, broker=broker, stream=domain.stream, poll_seconds=600, registry=registry
    )
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: relay._listener is not None, message="the relay listens")
        await asyncio.sleep(0)  # let it reach its wait
        thing = uuid.uuid4()
        for count in (1, 2):  # the second pass comes too soon to refresh the gauges at once
            async with engine.begin() as connection:
                await write_event(connection, domain.changed, thing, Thing(id=thing, count=count))
            events = await wait_for_stream_events(
                nats_server.url, domain.name, lambda events, n=count: len(events) == n, within=5
            )
        assert [event.envelope.data["count"] for event in events] == [1, 2]
        assert sample(registry, "events_outbox_backlog") == 0
        assert sample(registry, "events_outbox_oldest_age_seconds") == 0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert relay._listener is None


async def test_the_listener_lost_wakes_the_relay_which_listens_again(
    engine: AsyncEngine, broker: Broker, domain: Domain, nats_server: NatsServer
) -> None:
    relay = OutboxRelay(
        engine=engine,
        broker=broker,
        stream=domain.stream,
        poll_seconds=600,
        registry=CollectorRegistry(),
    )
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: relay._listener is not None, message="the relay listens")
        first = relay._listener
        async with engine.begin() as connection:
            await connection.execute(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": first.get_server_pid()}
            )
        await eventually(
            lambda: relay._listener is not None and relay._listener is not first,
            message="a new listening connection",
        )
        thing = uuid.uuid4()
        async with engine.begin() as connection:
            await write_event(connection, domain.changed, thing, Thing(id=thing, count=1))
        await wait_for_stream_events(nats_server.url, domain.name, lambda e: len(e) == 1, within=5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_listener_lost_during_a_pass_is_replaced_before_the_relay_sleeps(
    engine: AsyncEngine,
    broker: Broker,
    domain: Domain,
    nats_server: NatsServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    relay = OutboxRelay(
        engine=engine,
        broker=broker,
        stream=domain.stream,
        poll_seconds=600,
        registry=CollectorRegistry(),
    )
    one_pass = relay.relay_once
    lost: list[object] = []

    async def pass_that_loses_the_listener() -> int:
        if not lost:  # the first pass: the listener dies before the pass clears its wake-up
            listener = relay._listener
            lost.append(listener)
            async with engine.begin() as connection:
                await connection.execute(
                    text("SELECT pg_terminate_backend(:pid)"), {"pid": listener.get_server_pid()}
                )
            await eventually(listener.is_closed, message="the listener closed")
        return await one_pass()

    monkeypatch.setattr(relay, "relay_once", pass_that_loses_the_listener)
    task = asyncio.create_task(relay.run())
    try:
        await eventually(
            lambda: bool(lost) and relay._listener not in (None, lost[0]),
            message="a new listening connection without waiting for the next poll",
        )
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("failure", [asyncio.CancelledError, OSError])
async def test_a_relay_stopped_or_failing_while_it_starts_listening_closes_that_connection(
    engine: AsyncEngine,
    broker: Broker,
    domain: Domain,
    monkeypatch: pytest.MonkeyPatch,
    failure: type[BaseException],
) -> None:
    opened: list[asyncpg.Connection] = []
    connect = asyncpg.connect

    async def connect_and_keep(*args: object, **kwargs: object) -> asyncpg.Connection:
        connection = await connect(*args, **kwargs)
        opened.append(connection)
        return connection

    async def add_listener(*_: object) -> None:
        raise failure

    monkeypatch.setattr(asyncpg, "connect", connect_and_keep)
    monkeypatch.setattr(asyncpg.Connection, "add_listener", add_listener)
    relay = OutboxRelay(
        engine=engine, broker=broker, stream=domain.stream, registry=CollectorRegistry()
    )
    with pytest.raises(failure):
        await relay._listen()
    assert len(opened) == 1
    assert opened[0].is_closed()
    assert relay._listener is None


async def test_while_the_broker_is_away_writes_go_on_and_the_backlog_says_so(
    engine: AsyncEngine, domain: Domain, tmp_path: Path
) -> None:
    registry = CollectorRegistry()
    port = free_port()
    store = tmp_path / "store"
    broker = Broker(f"nats://127.0.0.1:{port}", name="away", connect_timeout=0.5)
    relay = OutboxRelay(
        engine=engine,
        broker=broker,
        stream=domain.stream,
        poll_seconds=600,
        max_backoff_seconds=0.5,
        registry=registry,
    )
    task = asyncio.create_task(relay.run())
    things = [uuid.uuid4() for _ in range(3)]
    try:
        for thing in things:
            async with engine.begin() as connection:
                await write_event(connection, domain.changed, thing, Thing(id=thing, count=1))
        await eventually(
            lambda: (
                sample(registry, "events_outbox_backlog") == 3
                and sample(registry, "events_publish_failures_total") >= 2
            ),
            message="failed passes and a backlog of 3",
        )
        assert sample(registry, "events_outbox_oldest_age_seconds") > 0
        with start_nats(port=port, store_dir=store) as server:
            events = await wait_for_stream_events(
                server.url, domain.name, lambda e: len(e) == 3, within=10
            )
            assert sorted(e.envelope.subject for e in events) == sorted(map(str, things))
            await eventually(lambda: sample(registry, "events_outbox_backlog") == 0)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await broker.close()


async def test_a_relay_killed_between_publish_and_delete_publishes_again_and_the_broker_drops_it(
    engine: AsyncEngine,
    domain: Domain,
    nats_server: NatsServer,
    events_database: str,
    tmp_path: Path,
) -> None:
    # Every DELETE from the outbox waits for an advisory lock this test holds: the relay process
    # publishes, then blocks before it can remove the row; then it is killed.
    async with engine.begin() as connection:
        await connection.execute(
            text(
                """
            CREATE OR REPLACE FUNCTION hold_outbox_delete() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END $$
            """
            )
        )
        await connection.execute(
            text(
                "CREATE TRIGGER hold_outbox_delete BEFORE DELETE ON outbox "
                "FOR EACH STATEMENT EXECUTE FUNCTION hold_outbox_delete()"
            )
        )
    holder = await engine.connect()
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
    thing = uuid.uuid4()
    try:
        await holder.execute(text("SELECT pg_advisory_lock(4242)"))
        async with engine.begin() as connection:
            event_id = await write_event(
                connection, domain.changed, thing, Thing(id=thing, count=1)
            )
        with relay_process:
            await wait_for_stream_events(
                nats_server.url, domain.name, lambda e: len(e) == 1, within=10
            )
            relay_process.kill()
        await holder.execute(text("SELECT pg_advisory_unlock(4242)"))
    finally:
        await holder.close()
        async with engine.begin() as connection:
            await connection.execute(text("DROP TRIGGER hold_outbox_delete ON outbox"))
    await eventually(lambda: row_is_free(engine), message="the killed pass rolled back")
    assert await outbox_rows(engine) == 1

    registry = CollectorRegistry()
    broker = Broker(nats_server.url, name="after-the-crash")
    try:
        relay = OutboxRelay(engine=engine, broker=broker, stream=domain.stream, registry=registry)
        assert await relay.relay_once() == 1
    finally:
        await broker.close()
    assert (
        sample(registry, "events_published_total", type=domain.changed.name, outcome="duplicate")
        == 1
    )
    events = await stream_events(nats_server.url, domain.name)
    assert [e.envelope.id for e in events] == [event_id]
    assert await outbox_rows(engine) == 0


async def row_is_free(engine: AsyncEngine) -> bool:
    """The killed relay's transaction is over once nothing locks the outbox row any more."""
    try:
        async with engine.begin() as connection:
            locked = await connection.execute(text("SELECT id FROM outbox FOR UPDATE NOWAIT"))
            return len(locked.all()) == 1
    except DBAPIError:
        return False


async def test_two_relays_publish_every_event_once_in_order_per_subject(
    events_database: str, engine: AsyncEngine, domain: Domain, nats_server: NatsServer
) -> None:
    subjects = [uuid.uuid4() for _ in range(4)]
    relays, brokers, engines = [], [], []
    registries = [CollectorRegistry(), CollectorRegistry()]
    for name, registry in zip(("one", "two"), registries, strict=True):
        own_engine = create_engine(events_database)
        own_broker = Broker(nats_server.url, name=name)
        engines.append(own_engine)
        brokers.append(own_broker)
        relays.append(
            OutboxRelay(
                engine=own_engine,
                broker=own_broker,
                stream=domain.stream,
                batch_size=7,
                poll_seconds=0.05,
                registry=registry,
            )
        )
    tasks = [asyncio.create_task(relay.run()) for relay in relays]

    async def writer(subject: uuid.UUID) -> None:
        for count in range(40):
            async with engine.begin() as connection:
                await write_event(
                    connection, domain.changed, subject, Thing(id=subject, count=count)
                )

    try:
        await asyncio.gather(*(writer(subject) for subject in subjects))
        events = await wait_for_stream_events(
            nats_server.url, domain.name, lambda e: len(e) >= 160, within=20
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for own_broker in brokers:
            await own_broker.close()
        for own_engine in engines:
            await own_engine.dispose()
    assert len(events) == 160
    assert max(Counter(e.envelope.id for e in events).values()) == 1
    for subject in subjects:
        mine = [e.envelope for e in events if e.envelope.subject == str(subject)]
        assert [e.version for e in mine] == list(range(1, 41))
        assert [e.data["count"] for e in mine] == list(range(40))
    assert sum(published(registry, domain, "published") for registry in registries) == 160


def test_metrics_are_registered_once_per_registry() -> None:
    registry = CollectorRegistry()
    assert event_metrics(registry) is event_metrics(registry)
    assert event_metrics(registry) is not event_metrics(CollectorRegistry())


async def test_a_lifespan_starts_the_relay_and_stops_it_with_its_broker(
    engine: AsyncEngine, domain: Domain, nats_server: NatsServer
) -> None:
    thing = uuid.uuid4()
    async with AsyncExitStack() as stack:
        broker = open_broker(stack, nats_server.url, name="lifespan")
        relay = start_relay(
            stack, engine=engine, broker=broker, stream=domain.stream, registry=CollectorRegistry()
        )
        async with engine.begin() as connection:
            await write_event(connection, domain.changed, thing, Thing(id=thing, count=1))
        await wait_for_stream_events(nats_server.url, domain.name, lambda e: len(e) == 1)
        assert broker.connected
    assert relay._listener is None
    assert not broker.connected


async def test_what_the_broker_acknowledged_is_removed_even_when_the_rest_of_the_pass_fails(
    engine: AsyncEngine, broker: Broker, domain: Domain, nats_server: NatsServer
) -> None:
    registry = CollectorRegistry()
    relay = relay_refusing_removals(engine, broker, domain, registry)
    kept, lost = uuid.uuid4(), uuid.uuid4()
    async with engine.begin() as connection:
        await write_event(connection, domain.changed, kept, Thing(id=kept, count=1))
        await write_event(connection, domain.removed, lost, Thing(id=lost, count=0))
    with pytest.raises(NoStreamResponseError):
        await relay.relay_once()
    with pytest.raises(NoStreamResponseError):
        await relay.relay_once()  # nothing acknowledged this time
    async with engine.connect() as connection:
        left = (await connection.execute(text("SELECT subject FROM outbox"))).scalars().all()
    assert left == [str(lost)]
    assert sample(registry, "events_outbox_backlog") == 1
    events = await stream_events(nats_server.url, domain.name)
    assert [e.envelope.subject for e in events] == [str(kept)]


async def test_a_subjects_events_sent_after_one_the_broker_refused_stay_until_it_is_taken(
    engine: AsyncEngine, broker: Broker, domain: Domain, nats_server: NatsServer
) -> None:
    registry = CollectorRegistry()
    # The "removed" between two changes is refused.
    relay = relay_refusing_removals(engine, broker, domain, registry)
    thing = uuid.uuid4()
    async with engine.begin() as connection:
        first = await write_event(connection, domain.changed, thing, Thing(id=thing, count=1))
        await write_event(connection, domain.removed, thing, Thing(id=thing, count=0))
        third = await write_event(connection, domain.changed, thing, Thing(id=thing, count=2))
    with pytest.raises(NoStreamResponseError):
        await relay.relay_once()
    # The third was sent before the refusal came back, and the stream took it; it stays in the
    # outbox behind the refused one, so the next pass sends it again and the broker drops it.
    assert await outbox_rows(engine) == 2
    with pytest.raises(NoStreamResponseError):
        await relay.relay_once()
    assert await outbox_rows(engine) == 2
    events = await stream_events(nats_server.url, domain.name)
    assert [e.envelope.id for e in events] == [first, third]
    assert published(registry, domain, "published") == 2
    assert published(registry, domain, "duplicate") == 1


async def test_a_burst_of_one_subjects_changes_is_published_as_its_latest_event(
    engine: AsyncEngine,
    broker: Broker,
    domain: Domain,
    nats_server: NatsServer,
    spans: InMemorySpanExporter,
) -> None:
    registry = CollectorRegistry()
    relay = OutboxRelay(
        engine=engine,
        broker=broker,
        stream=domain.stream,
        coalesce={domain.changed.name},
        registry=registry,
    )
    burst, single, mixed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    written: dict[uuid.UUID, list[uuid.UUID]] = {burst: [], single: [], mixed: []}
    for thing, event_type, count in (
        (burst, domain.changed, 1),
        (mixed, domain.removed, 0),
        (burst, domain.changed, 2),
        (single, domain.changed, 1),
        (mixed, domain.changed, 5),
        (burst, domain.changed, 3),
    ):
        async with engine.begin() as connection:
            written[thing].append(
                await write_event(connection, event_type, thing, Thing(id=thing, count=count))
            )

    assert await relay.relay_once() == 6

    events = await stream_events(nats_server.url, domain.name)
    sent = {(e.envelope.subject, e.envelope.type, e.envelope.version) for e in events}
    # Only the burst's last change goes out; a type not coalesced ("removed") always does,
    # even with a later change of its subject behind it.
    assert sent == {
        (str(burst), domain.changed.name, 3),
        (str(single), domain.changed.name, 1),
        (str(mixed), domain.removed.name, 1),
        (str(mixed), domain.changed.name, 2),
    }
    assert [e.envelope.data for e in events if e.envelope.subject == str(burst)] == [
        {"id": str(burst), "count": 3}
    ]
    assert await outbox_rows(engine) == 0
    assert published(registry, domain, "coalesced") == 2
    assert published(registry, domain, "published") == 3
    # Each event left out shows in its own trace as a producer span that sent nothing.
    producers = producer_spans(spans)
    for event_id in written[burst][:2]:
        attributes = producers[str(event_id)].attributes or {}
        assert attributes["fleet.event.outcome"] == "coalesced"
        assert "messaging.message.body.size" not in attributes
    assert (producers[str(written[burst][2])].attributes or {})[
        "fleet.event.outcome"
    ] == "published"


async def test_events_left_out_stay_until_the_event_that_carries_their_state_is_taken(
    engine: AsyncEngine, broker: Broker, domain: Domain, nats_server: NatsServer
) -> None:
    registry = CollectorRegistry()
    narrow = StreamSpec(domain.stream.name, (domain.changed.name,))
    relay = OutboxRelay(
        engine=engine,
        broker=broker,
        stream=narrow,
        coalesce={domain.changed.name},
        registry=registry,
    )
    thing = uuid.uuid4()
    async with engine.begin() as connection:
        await write_event(connection, domain.changed, thing, Thing(id=thing, count=1))
        await write_event(connection, domain.changed, thing, Thing(id=thing, count=2))
        removed = await write_event(connection, domain.removed, thing, Thing(id=thing, count=0))

    # The "removed" that supersedes both changes is refused: the changes stay with it.
    with pytest.raises(NoStreamResponseError):
        await relay.relay_once()
    assert await outbox_rows(engine) == 3
    assert published(registry, domain, "coalesced") == 0
    assert await stream_events(nats_server.url, domain.name) == []

    # Once the stream takes it, the next pass sends the "removed" alone and drops all three rows.
    await ensure_stream(await broker.jetstream(), domain.stream, update=True)
    assert await relay.relay_once() == 3
    events = await stream_events(nats_server.url, domain.name)
    assert [(e.envelope.id, e.envelope.version) for e in events] == [(removed, 3)]
    assert await outbox_rows(engine) == 0
    assert published(registry, domain, "coalesced") == 2


async def test_a_pass_whose_connection_is_gone_publishes_nothing_and_keeps_every_row(
    engine: AsyncEngine, domain: Domain, nats_server: NatsServer, spans: InMemorySpanExporter
) -> None:
    broker = Broker(nats_server.url, name="loses-its-connection")
    relay = OutboxRelay(
        engine=engine, broker=broker, stream=domain.stream, registry=CollectorRegistry()
    )
    thing = uuid.uuid4()
    async with engine.begin() as connection:
        event_id = await write_event(connection, domain.changed, thing, Thing(id=thing, count=1))
    js = await broker.jetstream()
    await broker.close()  # lost between the pass's start and its first send
    async with engine.connect() as connection:
        rows = (await connection.execute(relay_module._CLAIM, {"limit": 10})).all()
        acknowledged, failure = await relay._publish(js, rows)

    assert acknowledged == []
    assert isinstance(failure, ConnectionClosedError)
    refused = producer_spans(spans)[str(event_id)]
    assert (refused.attributes or {})["error.type"] == "ConnectionClosedError"
    assert await outbox_rows(engine) == 1


async def test_an_acknowledgement_not_come_in_time_is_given_up_as_a_timeout() -> None:
    waiting: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    answered: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    answered.set_result(SimpleNamespace(duplicate=False))

    assert isinstance(relay_module._failure_of(waiting), TimeoutError)  # type: ignore[arg-type]
    assert waiting.cancelled()
    assert relay_module._failure_of(answered) is None  # type: ignore[arg-type]


async def test_with_the_database_away_the_relay_backs_off_and_says_the_backlog_is_unknown(
    domain: Domain, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    nowhere = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none")
    relay = OutboxRelay(
        engine=nowhere,
        broker=broker,
        stream=domain.stream,
        max_backoff_seconds=0.2,
        registry=registry,
    )
    with caplog.at_level(logging.WARNING, "common_libs.events"):
        task = asyncio.create_task(relay.run())
        try:
            await eventually(lambda: sample(registry, "events_publish_failures_total") >= 2)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await nowhere.dispose()
    assert "outbox relay pass failed (ConnectionRefusedError)" in caplog.text
    assert "outbox backlog unknown (ConnectionRefusedError)" in caplog.text


async def test_the_migration_helpers_drop_what_they_created(
    postgres_server: PostgresServer,
) -> None:
    url = create_database(postgres_server, "cl_events_drop")
    engine = create_engine(url)
    tables = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    try:
        async with engine.begin() as connection:
            await connection.run_sync(
                lambda sync: (
                    create_outbox_tables(SimpleNamespace(get_bind=lambda: sync)),
                    create_inbox_tables(SimpleNamespace(get_bind=lambda: sync)),
                )
            )
            assert (await connection.execute(text(tables))).scalars().all() == [
                "consumed_versions",
                "event_versions",
                "inbox",
                "outbox",
            ]
            await connection.run_sync(
                lambda sync: (
                    drop_outbox_tables(SimpleNamespace(get_bind=lambda: sync)),
                    drop_inbox_tables(SimpleNamespace(get_bind=lambda: sync)),
                )
            )
            assert (await connection.execute(text(tables))).scalars().all() == []
    finally:
        await engine.dispose()


async def test_the_events_about_a_subject_are_final_once_its_outbox_rows_are_gone(
    engine: AsyncEngine, broker: Broker, domain: Domain, nats_server: NatsServer
) -> None:
    relay = OutboxRelay(
        engine=engine, broker=broker, stream=domain.stream, registry=CollectorRegistry()
    )
    thing, other = uuid.uuid4(), uuid.uuid4()
    async with engine.begin() as connection:
        await write_event(connection, domain.changed, thing, Thing(id=thing, count=1))
        await write_event(connection, domain.changed, other, Thing(id=other, count=1))
        await write_event(connection, domain.removed, thing, Thing(id=thing, count=0))
    task = asyncio.create_task(relay.run())
    try:
        events = await published_events(engine, nats_server.url, domain.name, str(thing))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [(e.envelope.type, e.envelope.version) for e in events] == [
        (domain.changed.name, 1),
        (domain.removed.name, 2),
    ]
