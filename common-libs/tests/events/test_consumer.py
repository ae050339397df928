"""Idempotent consumers on a real PostgreSQL and a real nats-server: inbox, version guard,
redelivery with backoff, dead letters, outages."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.errors import NotFoundError
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common_libs.db import create_engine
from common_libs.events import AnyEvent, Broker, EventConsumer, is_newer_version
from common_libs.events.consumer import _is_outage
from common_libs.testing import eventually, free_port
from common_libs.testing.events import wait_for_stream_events
from common_libs.testing.nats import NatsServer, start_nats

from .conftest import Domain, quick_consumer


def envelope(domain: Domain, subject: str, version: int, **data: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": domain.changed.name,
        "source": "test-service",
        "subject": subject,
        "version": version,
        "occurred_at": datetime.now(UTC).isoformat(),
        "request_id": None,
        "data": {"id": subject, **data},
    }


async def publish(
    broker: Broker, domain: Domain, body: dict[str, Any] | bytes, msg_id: str | None = None
) -> None:
    from common_libs.events.streams import ensure_stream

    js = await broker.jetstream()
    await ensure_stream(js, domain.stream)
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    key = msg_id or (str(uuid.uuid4()) if isinstance(body, bytes) else body["id"])
    await js.publish(domain.changed.name, payload, headers={"Nats-Msg-Id": key})


@pytest.fixture
async def effects(engine: AsyncEngine) -> AsyncEngine:
    """A table the handlers write their effect to, in the consumer's transaction."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "CREATE TABLE IF NOT EXISTS effects (consumer text, subject text, version int, "
                "seen timestamptz DEFAULT clock_timestamp())"
            )
        )
        await connection.execute(text("TRUNCATE effects"))
    return engine


async def applied(engine: AsyncEngine, consumer: str) -> list[tuple[str, int]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT subject, version FROM effects WHERE consumer = :c ORDER BY seen"),
            {"c": consumer},
        )
        return [(row.subject, row.version) for row in rows]


def recording(
    name: str, *, fail_for: str | None = None, attempts: list[float] | None = None
) -> Any:
    async def handler(connection: AsyncConnection, event: AnyEvent) -> None:
        await connection.execute(
            text("INSERT INTO effects (consumer, subject, version) VALUES (:c, :s, :v)"),
            {"c": name, "s": event.subject, "v": event.version},
        )
        if event.subject == fail_for:
            if attempts is not None:
                attempts.append(time.monotonic())
            raise RuntimeError(f"cannot apply version {event.version}")

    return handler


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def running(consumer: EventConsumer) -> asyncio.Task[None]:
    return asyncio.create_task(consumer.run())


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_each_event_is_applied_once_and_stale_versions_change_nothing(
    effects: AsyncEngine, broker: Broker, domain: Domain
) -> None:
    registry = CollectorRegistry()
    name = f"c{uuid.uuid4().hex[:8]}"
    consumer = quick_consumer(
        effects, broker, domain, recording(name), name=name, registry=registry
    )
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    a1 = envelope(domain, a, 1)
    a1["occurred_at"] = (datetime.now(UTC) - timedelta(seconds=3)).isoformat()  # a late one
    await publish(broker, domain, a1)
    await publish(broker, domain, envelope(domain, a, 2))
    await publish(broker, domain, envelope(domain, b, 1))
    await publish(broker, domain, a1, msg_id="the same event, published again later")
    await publish(broker, domain, envelope(domain, a, 2))  # another event, not newer
    task = await running(consumer)
    try:
        await eventually(
            lambda: (
                sum(
                    sample(registry, "events_consumed_total", consumer=name, outcome=o)
                    for o in ("handled", "duplicate", "stale")
                )
                == 5
            ),
            message="five messages processed",
        )
    finally:
        await stop(task)
    assert await applied(effects, name) == [(a, 1), (a, 2), (b, 1)]
    assert sample(registry, "events_consumed_total", consumer=name, outcome="duplicate") == 1
    assert sample(registry, "events_consumed_total", consumer=name, outcome="stale") == 1
    assert sample(registry, "events_consumer_pending", consumer=name) == 0
    # How long after its commit each event was handled: the three handled only, a1 from its
    # occurred_at (3 s before it was published).
    delay = "events_handled_delay_seconds"
    assert sample(registry, f"{delay}_count", consumer=name) == 3
    assert sample(registry, f"{delay}_sum", consumer=name) >= 3.0
    assert sample(registry, f"{delay}_bucket", consumer=name, le="2.0") <= 2
    async with effects.begin() as connection:
        assert await is_newer_version(
            connection, consumer=name, event=AnyEvent.model_validate(envelope(domain, a, 3))
        )


async def test_a_failing_message_is_redelivered_with_backoff_then_dead_lettered_while_others_go_on(
    effects: AsyncEngine, broker: Broker, domain: Domain, nats_server: NatsServer
) -> None:
    registry = CollectorRegistry()
    name = f"c{uuid.uuid4().hex[:8]}"
    poison, after = str(uuid.uuid4()), str(uuid.uuid4())
    attempts: list[float] = []
    consumer = quick_consumer(
        effects,
        broker,
        domain,
        recording(name, fail_for=poison, attempts=attempts),
        name=name,
        max_deliveries=3,
        backoff_seconds=(0.3, 0.6),
        # A pull request lingers up to fetch_timeout, and each redelivery arrives in one. A short
        # one (0.2 s) expired about 10 times in this test, and on a busy machine a message
        # arriving as a request expired was now and then lost by the client (the broker counted
        # it delivered, so it came back only after ack_wait, 30 s, past this test's 10 s: 5 of
        # 50 runs beside a busy core). With 2 s, no request expires meanwhile (0 of 50).
        fetch_timeout=2.0,
        registry=registry,
    )
    await publish(broker, domain, envelope(domain, poison, 1))
    await publish(broker, domain, envelope(domain, after, 1))
    task = await running(consumer)
    try:
        dead = await wait_for_stream_events(
            nats_server.url,
            "DEADLETTER",
            lambda e: len(e) == 1,
            subject=f"deadletter.{name}.>",
            within=10,
        )
    finally:
        await stop(task)
    # The message after the poison one was handled long before the poison one gave up.
    assert await applied(effects, name) == [(after, 1)]
    assert len(attempts) == 3
    assert attempts[1] - attempts[0] >= 0.3
    assert attempts[2] - attempts[1] >= 0.6
    headers = dead[0].headers
    assert dead[0].envelope.subject == poison
    assert headers["Fleet-Dead-Letter-Reason"] == "RuntimeError: cannot apply version 1"
    assert headers["Fleet-Deliveries"] == "3"
    assert headers["Fleet-Consumer"] == name
    assert headers["Fleet-Original-Subject"] == domain.changed.name
    assert headers["Fleet-Original-Stream"] == domain.stream.name
    assert sample(registry, "events_redeliveries_total", consumer=name) == 2
    assert sample(registry, "events_dead_lettered_total", consumer=name) == 1
    assert sample(registry, "events_consumed_total", consumer=name, outcome="failed") == 2


async def test_a_message_that_is_no_envelope_is_dead_lettered_at_once(
    effects: AsyncEngine, broker: Broker, domain: Domain, nats_server: NatsServer
) -> None:
    name = f"c{uuid.uuid4().hex[:8]}"
    consumer = quick_consumer(effects, broker, domain, recording(name), name=name)
    await publish(broker, domain, b'{"not": "an envelope"}')
    task = await running(consumer)
    try:
        await eventually(lambda: has_dead_letters(nats_server, name), message="a dead letter")
    finally:
        await stop(task)
    assert await dead_letters_of(nats_server, name) == [("not an event envelope (7 errors)", "1")]


async def dead_letters_of(server: NatsServer, name: str) -> list[tuple[str, str]]:
    """(reason, deliveries) of every dead letter ``name`` left (any body, envelope or not)."""
    client = await nats.connect(server.url)
    try:
        js = client.jetstream()
        try:
            info = await js.stream_info("DEADLETTER")
        except NotFoundError:
            # Not created yet: the first consumer to subscribe on this server creates it.
            return []
        found = []
        # An empty stream reports first_seq 0, a sequence no message has: start at 1 at least.
        for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
            headers = (await js.get_msg("DEADLETTER", seq=seq)).headers or {}
            if headers.get("Fleet-Consumer") == name:
                found.append((headers["Fleet-Dead-Letter-Reason"], headers["Fleet-Deliveries"]))
        return found
    finally:
        await client.close()


async def has_dead_letters(server: NatsServer, name: str) -> bool:
    return bool(await dead_letters_of(server, name))


async def test_while_the_database_is_away_a_message_waits_and_is_never_dead_lettered(
    broker: Broker, domain: Domain, postgres_server: Any
) -> None:
    registry = CollectorRegistry()
    name = f"c{uuid.uuid4().hex[:8]}"
    nowhere = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none")
    consumer = quick_consumer(
        nowhere,
        broker,
        domain,
        recording(name),
        name=name,
        max_deliveries=1,
        backoff_seconds=(0.05,),
        registry=registry,
    )
    await publish(broker, domain, envelope(domain, str(uuid.uuid4()), 1))
    task = await running(consumer)
    try:
        await eventually(
            lambda: sample(registry, "events_redeliveries_total", consumer=name) >= 3,
            message="three redeliveries",
        )
    finally:
        await stop(task)
        await nowhere.dispose()
    assert sample(registry, "events_dead_lettered_total", consumer=name) == 0


async def test_the_consumer_comes_back_with_the_broker_and_prunes_its_inbox(
    effects: AsyncEngine, domain: Domain, tmp_path: Path
) -> None:
    name = f"c{uuid.uuid4().hex[:8]}"
    async with effects.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO inbox (consumer, event_id, handled_at) "
                "VALUES (:c, :e, now() - interval '9 days')"
            ),
            {"c": name, "e": uuid.uuid4()},
        )
    port = free_port()
    store = tmp_path / "store"
    broker = Broker(f"nats://127.0.0.1:{port}", name="comes-back", connect_timeout=0.5)
    consumer = quick_consumer(effects, broker, domain, recording(name), name=name)
    subject = str(uuid.uuid4())
    try:
        with start_nats(port=port, store_dir=store):
            task = await running(consumer)
            await publish(broker, domain, envelope(domain, subject, 1))
            await eventually(lambda: applied_is(effects, name, [(subject, 1)]))
        await eventually(lambda: not broker.connected, message="the consumer saw the broker go")
        with start_nats(port=port, store_dir=store):
            await publish(broker, domain, envelope(domain, subject, 2))
            await eventually(
                lambda: applied_is(effects, name, [(subject, 1), (subject, 2)]), within=15
            )
        await stop(task)
    finally:
        await broker.close()
    async with effects.connect() as connection:
        left = await connection.scalar(
            text(
                "SELECT count(*) FROM inbox "
                "WHERE consumer = :c AND handled_at < now() - interval '1 day'"
            ),
            {"c": name},
        )
    assert left == 0


async def applied_is(engine: AsyncEngine, name: str, expected: list[tuple[str, int]]) -> bool:
    return await applied(engine, name) == expected


def test_an_outage_is_told_from_a_failing_handler() -> None:
    assert _is_outage(ConnectionRefusedError())
    assert _is_outage(TimeoutError())
    assert _is_outage(OperationalError("SELECT 1", {}, Exception("gone")))
    assert _is_outage(InterfaceError("SELECT 1", {}, Exception("closed")))
    assert _is_outage(DBAPIError("SELECT 1", {}, Exception("x"), connection_invalidated=True))
    assert not _is_outage(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not _is_outage(RuntimeError("a bug"))


def test_a_consumer_needs_at_least_one_delivery(engine: AsyncEngine, domain: Domain) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        EventConsumer(
            name="x",
            stream=domain.stream,
            subject="x.>",
            engine=engine,
            broker=Broker("nats://127.0.0.1:1", name="x"),
            handler=recording("x"),
            max_deliveries=0,
        )


def held_back(name: str, started: asyncio.Event, release: asyncio.Event) -> Any:
    """A handler that writes its effect, then waits until ``release`` before it returns."""
    record = recording(name)

    async def handler(connection: AsyncConnection, event: AnyEvent) -> None:
        await record(connection, event)
        started.set()
        await release.wait()

    return handler


async def consumer_state(broker: Broker, domain: Domain, name: str) -> tuple[int, int]:
    """The broker's view of a durable consumer: (deliveries made, not yet acknowledged)."""
    js = await broker.jetstream()
    info = await js.consumer_info(domain.stream.name, name)
    return info.delivered.consumer_seq, info.num_ack_pending


async def test_a_consumer_stopped_while_handling_finishes_the_message_first(
    effects: AsyncEngine, broker: Broker, domain: Domain
) -> None:
    name = f"c{uuid.uuid4().hex[:8]}"
    started, release = asyncio.Event(), asyncio.Event()
    consumer = quick_consumer(effects, broker, domain, held_back(name, started, release), name=name)
    subject = str(uuid.uuid4())
    await publish(broker, domain, envelope(domain, subject, 1))
    task = await running(consumer)
    await asyncio.wait_for(started.wait(), 10)

    task.cancel()  # the service stops (SIGTERM) while the handler runs
    await asyncio.sleep(0)
    assert not task.done()  # it waits for the handler
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await applied(effects, name) == [(subject, 1)]

    async def acknowledged() -> bool:
        return await consumer_state(broker, domain, name) == (1, 0)

    # An acknowledgement is sent without waiting for the broker's answer.
    await eventually(acknowledged, message="the message acknowledged")


async def test_a_cancellation_lost_inside_a_fetch_still_stops_the_consumer(
    effects: AsyncEngine, broker: Broker, domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer = quick_consumer(effects, broker, domain, recording("lost"))
    subscribe = consumer._subscribe
    fetching = asyncio.Event()

    async def subscribe_losing_cancellations() -> Any:
        subscription = await subscribe()

        async def fetch(batch: int, **wait: float) -> list[Any]:
            # As nats-py's wait on Python 3.11 (asyncio.wait_for) does when its answer comes
            # with the cancellation: the answer (here none) is returned, the cancellation lost.
            fetching.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(wait["timeout"])
            return []

        monkeypatch.setattr(subscription, "fetch", fetch)
        return subscription

    monkeypatch.setattr(consumer, "_subscribe", subscribe_losing_cancellations)
    task = await running(consumer)
    await asyncio.wait_for(fetching.wait(), 10)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)


async def test_a_handler_that_does_not_finish_in_time_is_rolled_back_and_left_for_redelivery(
    effects: AsyncEngine, broker: Broker, domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("common_libs.events.consumer.DRAIN_SECONDS", 0.2)
    name = f"c{uuid.uuid4().hex[:8]}"
    started = asyncio.Event()
    never = asyncio.Event()
    consumer = quick_consumer(effects, broker, domain, held_back(name, started, never), name=name)
    await publish(broker, domain, envelope(domain, str(uuid.uuid4()), 1))
    task = await running(consumer)
    await asyncio.wait_for(started.wait(), 10)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)

    assert await applied(effects, name) == []
    assert (await consumer_state(broker, domain, name))[1] == 1
