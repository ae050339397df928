"""Database outages in the middle of a consumer's work, for the tests that show it waits them out
(needs ``common-libs[db]``); and a database that refuses connections for a while
(:func:`database_refusing_connections`), for the tests of what a service answers meanwhile.

:func:`deliver_during_outages` cuts a running app's database connections while an event is being
applied, as often as asked; :class:`ConsumerCounts` reads the consumer's outcomes meanwhile::

    counts = ConsumerCounts(consumer, monkeypatch)
    deleted = await deliver_during_outages(
        database_url,
        hold=text("SELECT id FROM orders WHERE user_id = :u FOR UPDATE").bindparams(u=user),
        publish=lambda: publish_user_deleted(nats_url, user),
        counts=counts,
    )

Terminating connections concerns every app on the database: give such a test a database of its
own (:func:`common_libs.testing.db_checks.create_migrated_database`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Executable, make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from common_libs.events.consumer import EventConsumer
from common_libs.events.metrics import event_metrics
from common_libs.testing.processes import eventually

__all__ = [
    "ConsumerCounts",
    "connections_waiting_on_a_lock",
    "database_refusing_connections",
    "deliver_during_outages",
    "terminate_other_connections",
]

T = TypeVar("T")

_OTHER_BACKENDS = text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)
_WAITING_ON_A_LOCK = text(
    "SELECT pid FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
)
# Within a transaction pg_stat_activity is a snapshot taken at its first use: read it afresh.
_FRESH_ACTIVITY = text("SELECT pg_stat_clear_snapshot()")


class ConsumerCounts:
    """A running consumer's outcome counters, moved to a registry of the test's own (in the
    process-wide one, another app of the session may count under the same consumer name)."""

    def __init__(self, consumer: EventConsumer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.name = consumer.name
        self.registry = CollectorRegistry()
        monkeypatch.setattr(consumer, "metrics", event_metrics(self.registry))

    def consumed(self, outcome: str) -> float:
        """``events_consumed_total`` for ``outcome`` (handled, duplicate, stale, failed)."""
        labels = {"consumer": self.name, "outcome": outcome}
        return self.registry.get_sample_value("events_consumed_total", labels) or 0.0

    def dead_lettered(self) -> float:
        """``events_dead_lettered_total``."""
        labels = {"consumer": self.name}
        return self.registry.get_sample_value("events_dead_lettered_total", labels) or 0.0


async def terminate_other_connections(connection: AsyncConnection) -> int:
    """Terminate every other connection to ``connection``'s database; how many there were."""
    await connection.execute(_FRESH_ACTIVITY)
    return len((await connection.execute(_OTHER_BACKENDS)).all())


async def connections_waiting_on_a_lock(connection: AsyncConnection) -> set[int]:
    """The backend ids of the other connections to the database that wait for a lock."""
    await connection.execute(_FRESH_ACTIVITY)
    return set((await connection.scalars(_WAITING_ON_A_LOCK)).all())


async def deliver_during_outages(
    database_url: str,
    *,
    hold: Executable,
    publish: Callable[[], Awaitable[T]],
    counts: ConsumerCounts,
    outages: int = 3,
) -> T:
    """Publish an event while the database goes away again and again under its handler.

    In a transaction of its own, ``hold`` locks rows the handler needs (a ``SELECT ... FOR
    UPDATE``); every other connection is cut, then ``publish`` runs. ``outages`` times, once a
    delivery waits on the held rows, its connection is cut. Then the rows are released, and what
    ``publish`` returned is returned. Fails as soon as the event is dead-lettered: an outage must
    never count towards that. The consumer should redeliver quickly (a short backoff).
    """
    saboteur = create_async_engine(database_url, poolclass=NullPool)
    try:
        # The transaction ends with the block: the held rows are released (it wrote nothing).
        async with saboteur.begin() as connection:
            await connection.execute(hold)
            assert await terminate_other_connections(connection) > 0, "the app had no connection"
            published = await publish()
            cut: set[int] = set()

            async def waiting_again() -> bool:
                assert not counts.dead_lettered(), "the event was dead-lettered"
                return bool(await connections_waiting_on_a_lock(connection) - cut)

            for _ in range(outages):
                await eventually(waiting_again, message="the event delivered again")
                cut.update(await connections_waiting_on_a_lock(connection))
                assert await terminate_other_connections(connection) > 0
    finally:
        await saboteur.dispose()
    return published


@asynccontextmanager
async def database_refusing_connections(database_url: str) -> AsyncIterator[None]:
    """While the block runs, the database of ``database_url`` refuses new connections
    (``ALLOW_CONNECTIONS false``: PostgreSQL answers "not currently accepting connections") and
    every connection it had is terminated (a statement in flight fails with "terminating
    connection due to administrator command"); afterwards it accepts them again.

    Acts from the server's ``postgres`` database; give the test a database of its own."""
    url = make_url(database_url)
    name = url.database
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name: {name!r}")
    admin = create_async_engine(
        url.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
        try:
            yield
        finally:
            async with admin.connect() as connection:
                await connection.execute(
                    text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
                )
    finally:
        await admin.dispose()
