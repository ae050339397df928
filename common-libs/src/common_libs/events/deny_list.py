"""The deny list of deleted accounts: their access tokens are refused before they expire.

An access token is valid until it expires (user-service issues them for 15 minutes); deleting
the account does not take back the tokens already handed out. Every process that verifies tokens
therefore follows ``users.user.deleted`` on the ``USERS`` stream into a :class:`DeletedUsers` and
gives it to its ``TokenVerifier``, which refuses a token whose subject is in it.

Each process follows the stream with an ephemeral ordered push consumer of its own (never a
durable or queue consumer: every replica must see every deletion), starting ``keep_seconds``
back, so that a process that (re)starts knows the deletions whose tokens may still be alive. An
id is kept until ``keep_seconds`` after the deletion (the longest access-token lifetime and a
margin), after which any token of the account has expired anyway.

While the broker is unreachable the list learns nothing new: the process keeps refusing the ids
it knows and accepts the tokens of accounts deleted meanwhile until they expire (fail open). When
the broker is back, it resubscribes from a little before the last deletion it saw.

Each deletion is taken in a consumer span ``process users.user.deleted``, a child of the producer
span whose trace context the message carries (:mod:`common_libs.events.tracing`).

    deleted_users = start_deny_list(stack, broker=broker, keep_seconds=960)
    verifier = TokenVerifier(keys, issuer=..., audience=..., deny_list=deleted_users)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import ValidationError

from common_libs.events.broker import Broker, raise_if_cancelled, retry_delay
from common_libs.events.envelope import DeletedData, EventEnvelope
from common_libs.events.metrics import event_metrics
from common_libs.events.streams import USERS, ensure_stream
from common_libs.events.tracing import OUTCOME, consuming, describe_event, mark_failed

__all__ = ["USER_DELETED", "DeletedUsers", "start_deny_list"]

USER_DELETED = "users.user.deleted"

_logger = logging.getLogger("common_libs.events")
_DeletedEvent = EventEnvelope[DeletedData]
# Resubscribing, start this much before the last message seen: a few seconds more replayed
# (adding an id twice changes nothing) rather than one missed.
_RESUME_MARGIN = timedelta(seconds=5)


class DeletedUsers:
    """User ids of deleted accounts, each kept until ``keep_seconds`` after its deletion."""

    def __init__(
        self,
        *,
        keep_seconds: float,
        clock: Callable[[], float] = time.time,
        idle_heartbeat: float = 5.0,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        if keep_seconds <= 0:
            raise ValueError("keep_seconds must be positive")
        self.keep_seconds = keep_seconds
        self.idle_heartbeat = idle_heartbeat
        self._clock = clock
        self._until: dict[str, float] = {}
        # (until, id) in the order added: deletions arrive in about the order they expire, so
        # the expired ones are dropped from the front, a few at a time.
        self._queue: deque[tuple[float, str]] = deque()
        self._last_stored: datetime | None = None
        self._metrics = event_metrics(registry)

    def __contains__(self, user_id: object) -> bool:
        self._drop_expired()
        until = self._until.get(user_id) if isinstance(user_id, str) else None
        return until is not None and until > self._clock()

    def __len__(self) -> int:
        self._drop_expired()
        return len(self._until)

    def add(self, user_id: str, deleted_at: datetime) -> None:
        """Deny ``user_id`` until ``keep_seconds`` after ``deleted_at`` (an older deletion that
        has already passed is ignored)."""
        until = deleted_at.timestamp() + self.keep_seconds
        if until <= self._clock() or until <= self._until.get(user_id, -1.0):
            return
        self._until[user_id] = until
        self._queue.append((until, user_id))
        self._drop_expired()
        self._metrics.deny_list_size.set(len(self._until))

    def _drop_expired(self) -> None:
        now = self._clock()
        if not self._queue or self._queue[0][0] > now:
            return  # the usual case, on every request: nothing to drop
        while self._queue and self._queue[0][0] <= now:
            until, user_id = self._queue.popleft()
            if self._until.get(user_id) == until:  # not denied for longer by a later add
                del self._until[user_id]
        self._metrics.deny_list_size.set(len(self._until))

    async def follow(self, broker: Broker) -> None:
        """Add every ``users.user.deleted`` of the ``USERS`` stream until cancelled; while the
        broker is away, retry with backoff, then resubscribe from a little before the last
        message seen (or from ``keep_seconds`` back)."""
        failures = 0
        while True:
            subscription: JetStreamContext.PushSubscription | None = None
            try:
                subscription = await self._subscribe(broker)
                self._metrics.deny_list_following.set(1)
                failures = 0
                while True:
                    raise_if_cancelled()  # one lost inside nats-py (see the consumer's loop)
                    # No timeout: a connection that closes ends the wait with an error.
                    self._receive(await subscription.next_msg(timeout=None))
            except Exception as exc:
                raise_if_cancelled()
                self._metrics.deny_list_following.set(0)
                failures += 1
                delay = retry_delay(failures, 10.0)
                _logger.warning(
                    "deny list: %s; following the deletions again in %.1f s",
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
            finally:
                if subscription is not None:
                    await _unsubscribe(subscription)

    async def _subscribe(self, broker: Broker) -> JetStreamContext.PushSubscription:
        js = await broker.jetstream()
        await ensure_stream(js, USERS)
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=self._start_time()
        )
        subscription = await js.subscribe(
            USER_DELETED,
            stream=USERS.name,
            config=config,
            ordered_consumer=True,
            idle_heartbeat=self.idle_heartbeat,
        )
        # nats-py keeps this config to recreate the consumer after a gap or missed heartbeats,
        # from a sequence then: a start time left in it makes the server refuse, and the ordered
        # consumer would stop for good (as nats-io/nats.go#1281 did in Go).
        config.opt_start_time = None
        return subscription

    def _start_time(self) -> datetime:
        earliest = datetime.fromtimestamp(self._clock() - self.keep_seconds, tz=UTC)
        if self._last_stored is None:
            return earliest
        return max(earliest, self._last_stored - _RESUME_MARGIN)

    def _receive(self, message: Msg) -> None:
        # The broker's own time of the message: what a start time is compared with.
        self._last_stored = message.metadata.timestamp
        with consuming(message, consumer=None) as span:
            try:
                event = _DeletedEvent.model_validate_json(message.data)
            except ValidationError as exc:
                mark_failed(span, "ValidationError")
                span.set_attribute(OUTCOME, "skipped")
                _logger.warning(
                    "deny list: message %d of %s is not a deletion (%d errors); skipped",
                    message.metadata.sequence.stream,
                    USERS.name,
                    exc.error_count(),
                )
                return
            describe_event(span, event)
            self.add(event.subject, event.occurred_at)
            span.set_attribute(OUTCOME, "handled")


async def _unsubscribe(subscription: JetStreamContext.PushSubscription) -> None:
    """Stop the deliveries (the broker drops an ordered consumer nobody listens to); on a
    connection already closed there is nothing left to stop."""
    with contextlib.suppress(Exception):
        await subscription.unsubscribe()


def start_deny_list(
    stack: AsyncExitStack,
    *,
    broker: Broker,
    keep_seconds: float,
    registry: CollectorRegistry = REGISTRY,
) -> DeletedUsers:
    """A :class:`DeletedUsers` following the broker in the background of a lifespan (cancelled
    when it ends)."""
    from common_libs.service_app import run_in_background

    deleted_users = DeletedUsers(keep_seconds=keep_seconds, registry=registry)
    run_in_background(stack, deleted_users.follow(broker), name="deny-list")
    return deleted_users
