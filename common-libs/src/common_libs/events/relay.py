"""The outbox relay: publishes committed events to JetStream, then removes them from the outbox.

It runs as a background task in each producing service's process (``run_in_background(stack,
relay.run(), name="outbox-relay")``). One pass:

1. claims the oldest rows with ``FOR UPDATE SKIP LOCKED`` (another replica's relay skips them),
   keeping back a row while an earlier row of the same subject is pending outside its claim, so
   that each subject's events reach the broker in version order whatever the number of relays;
2. publishes them with ``Nats-Msg-Id`` = event id (subjects concurrently, each subject's events
   sent one after another on the one connection, which keeps their order, and their
   acknowledgements awaited together), each in a producer span
   ``publish <type>`` whose parent is the trace context the row stored (a root span when it
   stored none) and whose own context the message carries (:mod:`common_libs.events.tracing`);
   an event of a type the service lets coalesce (``coalesce``) is left out when a later event
   of its subject is in the same pass, which carries the newer state;
3. deletes the acknowledged rows and commits. A relay that dies between 2 and 3 leaves the rows,
   the next pass publishes them again, and the broker drops the duplicate (its window is longer
   than a restart); consumers' inboxes catch any that get through later.

Between passes it sleeps until a write's ``NOTIFY`` (or a slow poll, if the listening connection
is gone) and, while the broker or the database is away, backs off exponentially. The outbox's
backlog and the age of its oldest row are gauges, measured by every pass that publishes and
every pass that fails, so they stay current while the broker is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Collection, Sequence
from contextlib import AsyncExitStack
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from nats.js import JetStreamContext
from nats.js.api import PubAck
from opentelemetry.trace import Span
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncEngine

from common_libs.events.broker import Broker, raise_if_cancelled, retry_delay
from common_libs.events.envelope import envelope_json
from common_libs.events.metrics import event_metrics
from common_libs.events.schema import OUTBOX_CHANNEL
from common_libs.events.streams import StreamSpec, ensure_stream
from common_libs.events.tracing import OUTCOME, mark_failed, start_publishing

__all__ = ["OutboxRelay", "start_relay"]

_logger = logging.getLogger("common_libs.events")

# The outcome of an event left unsent because a later one of its subject superseded it.
COALESCED = "coalesced"

_CLAIM = text(
    """
    WITH claimed AS (
        SELECT id, subject FROM outbox ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED
    )
    SELECT o.id, o.event_id, o.type, o.source, o.subject, o.version, o.occurred_at,
           o.request_id, o.headers, CAST(o.data AS text) AS data
    FROM outbox AS o JOIN claimed AS c ON c.id = o.id
    WHERE NOT EXISTS (
        SELECT 1 FROM outbox AS earlier
        WHERE earlier.subject = c.subject AND earlier.id < c.id
          AND earlier.id NOT IN (SELECT id FROM claimed)
    )
    ORDER BY o.id
    """
)
# Remove what the broker acknowledged and measure what is left (count, age of the oldest), in
# one round trip: the deleted rows are still visible to the outer query's snapshot, hence NOT IN.
# With no ids it only measures (after a failed pass).
_DELETE_AND_MEASURE = text(
    """
    WITH sent AS (DELETE FROM outbox WHERE id = ANY(CAST(:ids AS bigint[])) RETURNING id)
    SELECT count(*), coalesce(extract(epoch FROM now() - min(occurred_at)), 0)
    FROM outbox WHERE id NOT IN (SELECT id FROM sent)
    """
)


class OutboxRelay:
    """Publishes one service's outbox to its stream; safe to run in every replica.

    ``coalesce`` names the event types of which only the latest of a subject in a pass is sent
    (a burst of one product's stock changes becomes one event); every other event is sent.
    """

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        broker: Broker,
        stream: StreamSpec,
        batch_size: int = 200,
        publish_timeout: float = 2.0,
        poll_seconds: float = 5.0,
        linger_seconds: float = 0.003,
        max_backoff_seconds: float = 10.0,
        coalesce: Collection[str] = (),
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.stream = stream
        self.batch_size = batch_size
        self.publish_timeout = publish_timeout
        self.poll_seconds = poll_seconds
        self.linger_seconds = linger_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.coalesce = frozenset(coalesce)
        self.metrics = event_metrics(registry)
        self._wake = asyncio.Event()
        self._listener: Any = None
        self._stream_ready = False

    async def run(self) -> None:
        """Relay until cancelled."""
        failures = 0
        try:
            while True:
                raise_if_cancelled()  # one lost inside nats-py (see the consumer's loop)
                try:
                    await self._listen()
                    published = await self.relay_once()
                except Exception as exc:
                    raise_if_cancelled()
                    failures += 1
                    self.metrics.publish_failures.inc()
                    delay = retry_delay(failures, self.max_backoff_seconds)
                    _logger.warning(
                        "outbox relay pass failed (%s); retrying in %.1f s",
                        type(exc).__name__,
                        delay,
                    )
                    await self._update_gauges()
                    await self._sleep(delay, wake_early=False)
                    continue
                failures = 0
                if self._listener is None or self._listener.is_closed():
                    # Lost during the pass, after its wake-up was cleared: listen again first, or
                    # nothing would wake the relay before the next poll.
                    continue
                if published < self.batch_size and await self._sleep(
                    self.poll_seconds, wake_early=True
                ):
                    # Woken by a commit: let the commits right behind it join the same pass (a
                    # pass costs about as much for one event as for ten).
                    await asyncio.sleep(self.linger_seconds)
        finally:
            await self._unlisten()

    async def relay_once(self) -> int:
        """One pass: publish what can be published now; return how many events it published."""
        js = await self.broker.jetstream()
        if not self._stream_ready:
            await ensure_stream(js, self.stream)
            self._stream_ready = True
        self._wake.clear()
        failure: BaseException | None = None
        async with self.engine.begin() as connection:
            rows = (await connection.execute(_CLAIM, {"limit": self.batch_size})).all()
            if rows:  # an empty pass changes nothing, not even the gauges
                acknowledged, failure = await self._publish(js, rows)
                measured = await connection.execute(_DELETE_AND_MEASURE, {"ids": acknowledged})
                self._set_gauges(*measured.one())
        if failure is not None:
            self._stream_ready = False  # the stream may be what is missing
            raise failure
        return len(rows)

    async def _publish(
        self, js: JetStreamContext, rows: Sequence[Row[Any]]
    ) -> tuple[list[int], BaseException | None]:
        by_subject: defaultdict[str, list[Row[Any]]] = defaultdict(list)
        for row in rows:
            by_subject[row.subject].append(row)
        results = await asyncio.gather(
            *(self._publish_chain(js, chain) for chain in by_subject.values())
        )
        acknowledged = [row_id for ids, _ in results for row_id in ids]
        failure = next((error for _, error in results if error is not None), None)
        return acknowledged, failure

    async def _publish_chain(
        self, js: JetStreamContext, chain: list[Row[Any]]
    ) -> tuple[list[int], BaseException | None]:
        """Publish one subject's events of this pass, but those a later one supersedes.

        An event whose type is in ``coalesce`` and that has a later event of its subject in the
        same pass is not sent: every event carries the whole current state under a newer
        version, so the later one says all it said (API.md lets a producer coalesce a burst of
        changes to one thing). Its row goes once every event sent for the subject is
        acknowledged (until then it stays, and the next pass weighs it again), with a producer
        span of outcome ``coalesced`` in its trace and the same outcome counted."""
        superseded = [row for row in chain[:-1] if row.type in self.coalesce]
        if not superseded:
            return await self._publish_in_order(js, chain)
        left_out = {row.id for row in superseded}
        acknowledged, failure = await self._publish_in_order(
            js, [row for row in chain if row.id not in left_out]
        )
        if failure is None:
            for row in superseded:
                span, _ = self._start_span(row, body_size=None)
                span.set_attribute(OUTCOME, COALESCED)
                span.end()
                self.metrics.published.labels(type=row.type, outcome=COALESCED).inc()
                acknowledged.append(row.id)
        return acknowledged, failure

    async def _publish_in_order(
        self, js: JetStreamContext, chain: list[Row[Any]]
    ) -> tuple[list[int], BaseException | None]:
        """Publish one subject's events in order; return the rows acknowledged before the first
        that failed, and that failure.

        Each message is sent right after the one before it, without waiting for its
        acknowledgement (one connection keeps their order, and the stream stores them in it);
        then the acknowledgements are awaited together, for at most ``publish_timeout``. Under
        load, waiting for each acknowledgement before the next send cost a turn of the busy
        event loop per event of a subject, and a burst of orders is a burst of one product's
        events. A row acknowledged after one that failed stays in the outbox with it: the next
        pass publishes both again, and the broker drops the one it already has."""
        sent: list[tuple[Row[Any], Span, asyncio.Future[PubAck]]] = []
        failure: BaseException | None = None
        for row in chain:
            body, span, headers = self._message(row)
            try:
                acknowledgement = await js.publish_async(
                    row.type, body, stream=self.stream.name, headers=headers
                )
            except Exception as exc:
                mark_failed(span, type(exc).__name__)
                span.end()
                failure = exc
                break
            sent.append((row, span, acknowledgement))
        if sent:
            await asyncio.wait([ack for _, _, ack in sent], timeout=self.publish_timeout)
        acknowledged: list[int] = []
        for row, span, acknowledgement in sent:
            error = _failure_of(acknowledgement)
            if error is not None:
                mark_failed(span, type(error).__name__)
                span.end()
                failure = failure or error
                continue
            outcome = "duplicate" if acknowledgement.result().duplicate else "published"
            span.set_attribute(OUTCOME, outcome)
            span.end()
            self.metrics.published.labels(type=row.type, outcome=outcome).inc()
            if failure is None:
                acknowledged.append(row.id)
        return acknowledged, failure

    @classmethod
    def _message(cls, row: Row[Any]) -> tuple[bytes, Span, dict[str, str]]:
        """One row's message body, its producer span (started) and its headers."""
        body = envelope_json(
            event_id=row.event_id,
            type_=row.type,
            source=row.source,
            subject=row.subject,
            version=row.version,
            occurred_at=row.occurred_at,
            request_id=row.request_id,
            data_json=row.data,
        )
        span, headers = cls._start_span(row, body_size=len(body))
        headers["Nats-Msg-Id"] = str(row.event_id)
        if row.request_id:
            headers["X-Request-ID"] = row.request_id
        return body, span, headers

    @staticmethod
    def _start_span(row: Row[Any], *, body_size: int | None) -> tuple[Span, dict[str, str]]:
        return start_publishing(
            event_type=row.type,
            event_id=str(row.event_id),
            source=row.source,
            subject=row.subject,
            version=row.version,
            stored_headers=row.headers,
            body_size=body_size,
        )

    async def _update_gauges(self) -> None:
        """Measure the backlog after a failed pass (a pass that publishes measures it itself)."""
        try:
            async with self.engine.begin() as connection:
                count, age = (await connection.execute(_DELETE_AND_MEASURE, {"ids": []})).one()
        except Exception as exc:
            _logger.warning("outbox backlog unknown (%s)", type(exc).__name__)
            return
        self._set_gauges(count, age)

    def _set_gauges(self, count: int, age: float) -> None:
        self.metrics.outbox_backlog.set(count)
        self.metrics.outbox_oldest_age.set(float(age))

    async def _sleep(self, seconds: float, *, wake_early: bool) -> bool:
        """Wait ``seconds``, or until a write's NOTIFY arrives when ``wake_early``; tell whether
        a NOTIFY ended it."""
        if not wake_early:
            await asyncio.sleep(seconds)
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
                return True
        return False

    async def _listen(self) -> None:
        """Open the ``LISTEN`` connection if there is none (a write's commit wakes the relay)."""
        if self._listener is not None and not self._listener.is_closed():
            return
        url = self.engine.url.set(drivername="postgresql")
        listener = await asyncpg.connect(url.render_as_string(hide_password=False), timeout=5)
        try:
            await listener.add_listener(OUTBOX_CHANNEL, self._notified)
        except BaseException:
            # Cancelled (the lifespan ended) or failed before it became ours to close: close it
            # here, or the connection leaks.
            listener.terminate()
            raise
        listener.add_termination_listener(self._listener_lost)
        self._listener = listener

    def _notified(self, *_: object) -> None:
        self._wake.set()

    def _listener_lost(self, *_: object) -> None:
        self._wake.set()  # go and look, then open a new one

    async def _unlisten(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None and not listener.is_closed():
            await listener.close()


def _failure_of(acknowledgement: asyncio.Future[PubAck]) -> BaseException | None:
    """What went wrong with one publish: the broker's error, or no answer in time (the wait
    for it is given up)."""
    if not acknowledgement.done():
        acknowledgement.cancel()
        return TimeoutError("no acknowledgement from the broker in time")
    return acknowledgement.exception()


def start_relay(
    stack: AsyncExitStack,
    *,
    engine: AsyncEngine,
    broker: Broker,
    stream: StreamSpec,
    coalesce: Collection[str] = (),
    registry: CollectorRegistry = REGISTRY,
) -> OutboxRelay:
    """Run an :class:`OutboxRelay` in the background of a lifespan (cancelled when it ends)."""
    from common_libs.service_app import run_in_background

    relay = OutboxRelay(
        engine=engine, broker=broker, stream=stream, coalesce=coalesce, registry=registry
    )
    run_in_background(stack, relay.run(), name="outbox-relay")
    return relay
