"""Idempotent consumers: a durable JetStream pull consumer whose effects commit with an inbox row.

For each message, in one database transaction: record ``(consumer, event id)`` in ``inbox``
(an id already there means the event was handled: acknowledge and do nothing), check the version
guard (an event not newer than the version applied for its subject changes nothing), run the
handler; then commit, and only then acknowledge. A handler that raises rolls all of it back; the
message is redelivered after a growing delay, and after ``max_deliveries`` attempts it is copied to
the ``DEADLETTER`` stream with the reason and terminated, while the messages after it go on.
A message that is not a valid envelope can never succeed and is dead-lettered at once.

Stopping (the service's lifespan cancels ``run`` on SIGTERM): a consumer waiting for a message
stops at once; one handling a message finishes it first, commit and acknowledgement included, for
up to ``DRAIN_SECONDS`` (then it is cancelled, rolled back, and redelivered to another replica).

All of it runs in a consumer span ``process <subject>``, a child of the producer span whose
trace context the message carries (:mod:`common_libs.events.tracing`): the handler's database
work and log lines belong to the trace of the change. The span records the outcome
(``fleet.event.outcome``: ``handled``, ``duplicate``, ``stale``, ``failed``, ``dead_lettered``)
and, for a failure, the error's class. A dead letter keeps the message's trace headers.

    consumer = EventConsumer(
        name="chat-catalog", stream=CATALOG, subject="catalog.product.>",
        engine=engine, broker=broker, handler=apply_product_event,
    )
    run_in_background(stack, consumer.run(), name="chat-catalog-consumer")
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, Literal

from nats.aio.msg import Msg
from nats.errors import TimeoutError as FetchTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry.trace import Span
from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common_libs.events.broker import Broker, raise_if_cancelled, retry_delay
from common_libs.events.envelope import EventEnvelope
from common_libs.events.metrics import event_metrics
from common_libs.events.streams import DEADLETTER, StreamSpec, ensure_stream
from common_libs.events.tracing import OUTCOME, consuming, describe_event, mark_failed

__all__ = ["AnyEvent", "EventConsumer", "EventHandler", "Outcome", "is_newer_version"]

_logger = logging.getLogger("common_libs.events")

AnyEvent = EventEnvelope[dict[str, Any]]
EventHandler = Callable[[AsyncConnection, AnyEvent], Awaitable[None]]
Outcome = Literal["handled", "duplicate", "stale"]

_RECORD = text(
    "INSERT INTO inbox (consumer, event_id) VALUES (:consumer, :event_id) "
    "ON CONFLICT DO NOTHING RETURNING 1"
)
_GUARD = text(
    """
    INSERT INTO consumed_versions (consumer, entity, subject, version)
    VALUES (:consumer, :entity, :subject, :version)
    ON CONFLICT (consumer, entity, subject) DO UPDATE SET version = excluded.version
    WHERE consumed_versions.version < excluded.version
    RETURNING 1
    """
)
_PRUNE = text(
    "DELETE FROM inbox "
    "WHERE consumer = :consumer AND handled_at < now() - make_interval(secs => :age)"
)
_REASON_LIMIT = 500
_PRUNE_EVERY_SECONDS = 3600.0
# How long a message being handled when the consumer is cancelled may take to finish: within the
# services' graceful shutdown (uvicorn's --timeout-graceful-shutdown, 8 s locally, 20 s in images).
DRAIN_SECONDS = 5.0


def _is_outage(exc: BaseException) -> bool:
    """The database (not the handler) failed: retry for as long as it takes, never dead-letter."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, InterfaceError | OperationalError)
    return isinstance(exc, OSError | TimeoutError)


async def is_newer_version(connection: AsyncConnection, *, consumer: str, event: AnyEvent) -> bool:
    """The version guard: record ``event``'s version for its subject if it is newer than the one
    recorded (or the first); tell whether it was. Holds the subject's row until the commit."""
    entity = event.type.rsplit(".", 1)[0]
    row = await connection.execute(
        _GUARD,
        {
            "consumer": consumer,
            "entity": entity,
            "subject": event.subject,
            "version": event.version,
        },
    )
    return row.first() is not None


class EventConsumer:
    """One durable consumer of one stream's subjects, handling messages one at a time in order."""

    def __init__(
        self,
        *,
        name: str,
        stream: StreamSpec,
        subject: str,
        engine: AsyncEngine,
        broker: Broker,
        handler: EventHandler,
        versioned: bool = True,
        max_deliveries: int = 5,
        backoff_seconds: Sequence[float] = (1.0, 5.0, 30.0, 120.0),
        ack_wait_seconds: float = 30.0,
        fetch_timeout: float = 5.0,
        inbox_retention: timedelta = timedelta(days=8),
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        self.name = name
        self.stream = stream
        self.subject = subject
        self.engine = engine
        self.broker = broker
        self.handler = handler
        self.versioned = versioned
        self.max_deliveries = max_deliveries
        self.backoff_seconds = tuple(backoff_seconds) or (1.0,)
        self.ack_wait_seconds = ack_wait_seconds
        self.fetch_timeout = fetch_timeout
        self.inbox_retention = inbox_retention
        self.metrics = event_metrics(registry)

    def config(self) -> ConsumerConfig:
        """The durable consumer's configuration."""
        return ConsumerConfig(
            durable_name=self.name,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_seconds,
            # Unbounded at the broker: the consumer bounds the attempts of a failing handler
            # itself (then dead-letters), and never gives up on one while the database is away.
            max_deliver=-1,
            filter_subject=self.subject,
        )

    async def run(self) -> None:
        """Consume until cancelled, reconnecting with backoff while the broker is away."""
        failures = 0
        pruned_at = -math.inf
        while True:
            try:
                subscription = await self._subscribe()
                failures = 0
                while True:
                    # A cancellation that a wait inside nats-py lost (see service_app._cancel)
                    # stops the loop at its next pass.
                    raise_if_cancelled()
                    if time.monotonic() - pruned_at > _PRUNE_EVERY_SECONDS:
                        await self._prune_inbox()
                        pruned_at = time.monotonic()
                    try:
                        # One message per pull request: a batch fetch (nats-py) could hold a
                        # message that arrived during its wait until its request expired, up to
                        # fetch_timeout late, when a stale 408 had turned its first request into
                        # a lingering one.
                        messages = await subscription.fetch(1, timeout=self.fetch_timeout)
                    except FetchTimeout:
                        continue  # nothing new; a lost connection raises an error of its own
                    for message in messages:
                        await self._handle_to_the_end(message)
            except Exception as exc:
                raise_if_cancelled()
                failures += 1
                delay = retry_delay(failures, 10.0)
                _logger.warning(
                    "consumer %s: %s; retrying in %.1f s", self.name, type(exc).__name__, delay
                )
                await asyncio.sleep(delay)

    async def _handle_to_the_end(self, message: Msg) -> None:
        """``handle``; cancelled meanwhile (the service stops), it finishes first, within
        ``DRAIN_SECONDS``, and the cancellation goes on."""
        handling = asyncio.ensure_future(self.handle(message))
        try:
            await asyncio.shield(handling)
        except asyncio.CancelledError:
            try:
                await asyncio.wait_for(handling, DRAIN_SECONDS)
            except TimeoutError:
                _logger.warning(
                    "consumer %s: a message still in hand after %g s; it will be redelivered",
                    self.name,
                    DRAIN_SECONDS,
                )
            raise

    async def _subscribe(self) -> Any:
        js = await self.broker.jetstream()
        await ensure_stream(js, self.stream)
        await ensure_stream(js, DEADLETTER)
        return await js.pull_subscribe(
            self.subject, durable=self.name, stream=self.stream.name, config=self.config()
        )

    async def handle(self, message: Msg) -> None:
        """Process one message in a consumer span (a child of its producer's): apply it once,
        then acknowledge; or redeliver, or dead-letter."""
        with consuming(message, consumer=self.name) as span:
            span.set_attribute("fleet.event.deliveries", message.metadata.num_delivered)
            outcome = await self._handle(message, span)
            span.set_attribute(OUTCOME, outcome)

    async def _handle(self, message: Msg, span: Span) -> str:
        metadata = message.metadata
        deliveries = metadata.num_delivered
        self.metrics.consumer_pending.labels(consumer=self.name).set(metadata.num_pending)
        if deliveries > 1:
            self.metrics.redeliveries.labels(consumer=self.name).inc()
        try:
            event = AnyEvent.model_validate_json(message.data)
        except ValidationError as exc:
            mark_failed(span, "ValidationError")
            await self._dead_letter(
                message, "ValidationError", f"not an event envelope ({exc.error_count()} errors)"
            )
            return "dead_lettered"
        describe_event(span, event)
        try:
            async with self.engine.begin() as connection:
                outcome = await self.apply(connection, event)
        except Exception as exc:
            kind = type(exc).__name__
            mark_failed(span, kind)
            if deliveries >= self.max_deliveries and not _is_outage(exc):
                await self._dead_letter(message, kind, f"{kind}: {exc}"[:_REASON_LIMIT])
                return "dead_lettered"
            self.metrics.consumed.labels(consumer=self.name, outcome="failed").inc()
            delay = self.backoff_seconds[min(deliveries, len(self.backoff_seconds)) - 1]
            _logger.warning(
                "consumer %s: event %s failed (delivery %d of %d, %s); redelivered in %g s",
                self.name,
                event.id,
                deliveries,
                self.max_deliveries,
                kind,
                delay,
            )
            await message.nak(delay=delay)
            return "failed"
        committed = time.time()
        await message.ack()
        self.metrics.consumed.labels(consumer=self.name, outcome=outcome).inc()
        if outcome == "handled":
            delay = max(committed - event.occurred_at.timestamp(), 0.0)
            self.metrics.handled_delay.labels(consumer=self.name).observe(delay)
        return outcome

    async def apply(self, connection: AsyncConnection, event: AnyEvent) -> Outcome:
        """In the caller's transaction: inbox, version guard, handler."""
        recorded = await connection.execute(_RECORD, {"consumer": self.name, "event_id": event.id})
        if recorded.first() is None:
            return "duplicate"
        if self.versioned and not await is_newer_version(
            connection, consumer=self.name, event=event
        ):
            return "stale"
        await self.handler(connection, event)
        return "handled"

    async def _dead_letter(self, message: Msg, kind: str, reason: str) -> None:
        """Keep the message in ``DEADLETTER`` with why, then tell the broker to stop delivering it.

        The reason (the error's text) goes only into the dead letter's headers; the log names the
        error's class."""
        metadata = message.metadata
        original = dict(message.headers or {})
        headers = {
            **{k: v for k, v in original.items() if k != "Nats-Msg-Id"},
            "Nats-Msg-Id": f"{self.name}:{metadata.stream}:{metadata.sequence.stream}",
            "Fleet-Dead-Letter-Reason": reason.replace("\r", " ").replace("\n", " "),
            "Fleet-Consumer": self.name,
            "Fleet-Original-Stream": metadata.stream,
            "Fleet-Original-Sequence": str(metadata.sequence.stream),
            "Fleet-Original-Subject": message.subject,
            "Fleet-Deliveries": str(metadata.num_delivered),
        }
        js = await self.broker.jetstream()
        await js.publish(
            f"deadletter.{self.name}.{message.subject}",
            message.data,
            stream=DEADLETTER.name,
            headers=headers,
        )
        await message.term()
        self.metrics.dead_lettered.labels(consumer=self.name).inc()
        self.metrics.consumed.labels(consumer=self.name, outcome="dead_lettered").inc()
        _logger.error(
            "consumer %s: message %s of %s dead-lettered after %d deliveries: %s",
            self.name,
            metadata.sequence.stream,
            metadata.stream,
            metadata.num_delivered,
            kind,
        )

    async def _prune_inbox(self) -> None:
        """Forget handled ids older than the stream keeps messages (they cannot come back);
        runs when the consumer starts and every hour."""
        try:
            async with self.engine.begin() as connection:
                await connection.execute(
                    _PRUNE,
                    {"consumer": self.name, "age": self.inbox_retention.total_seconds()},
                )
        except Exception as exc:
            _logger.warning("consumer %s: inbox not pruned (%s)", self.name, type(exc).__name__)
