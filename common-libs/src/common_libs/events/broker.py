"""The service process's connection to NATS: opened when first needed, opened again when lost.

The relay and the consumers call :meth:`Broker.jetstream` at the top of each pass. The client
does not reconnect by itself (``allow_reconnect=False``): a connection that breaks is closed, the
pass that used it fails, and the caller backs off and asks again, so that while the broker is away
nothing blocks and the callers' own loops keep their metrics current.
"""

from __future__ import annotations

import asyncio
import logging
import random
from contextlib import AsyncExitStack
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext

__all__ = ["Broker", "open_broker", "raise_if_cancelled", "retry_delay"]

_logger = logging.getLogger("common_libs.events")


class Broker:
    """A lazily opened NATS connection shared by a process's relay and consumers."""

    def __init__(self, url: str, *, name: str, connect_timeout: float = 2.0) -> None:
        self.url = url
        self.name = name
        self.connect_timeout = connect_timeout
        self._client: Client | None = None
        self._jetstream: JetStreamContext | None = None
        self._connecting = asyncio.Lock()

    @property
    def connected(self) -> bool:
        """Whether a connection is open now."""
        return self._client is not None and self._client.is_connected

    async def jetstream(self) -> JetStreamContext:
        """The JetStream context of an open connection; connects first if there is none."""
        async with self._connecting:  # the relay and a consumer asking at once: one connection
            if self._jetstream is None or self._client is None or self._client.is_closed:
                # Made here rather than by nats.connect(): a connect cancelled halfway (the
                # lifespan ending while the broker is slow) must still close the socket it opened.
                client = Client()
                try:
                    await client.connect(self.url, **self._options())
                except BaseException:
                    await asyncio.shield(client.close())
                    raise
                # One context per connection: its asynchronous publishes (the relay's) share
                # one reply subscription, made by the first of them.
                self._client, self._jetstream = client, client.jetstream()
                _logger.info("connected to the event broker")
            return self._jetstream

    def _options(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "connect_timeout": self.connect_timeout,
            "allow_reconnect": False,
            # nats-py tries a server up to this many times more before it gives up.
            "max_reconnect_attempts": 1,
            "reconnect_time_wait": 0.1,
            "error_cb": self._on_error,
        }

    async def close(self) -> None:
        """Close the connection, if one is open (the lifespan's exit)."""
        client, self._client, self._jetstream = self._client, None, None
        if client is not None and not client.is_closed:
            await client.close()

    @staticmethod
    async def _on_error(error: Exception) -> None:
        _logger.warning("event broker connection: %s", type(error).__name__)


def open_broker(stack: AsyncExitStack, url: str, *, name: str) -> Broker:
    """A :class:`Broker` closed when ``stack`` (a lifespan's) closes; connects when first used."""
    broker = Broker(url, name=name)
    stack.push_async_callback(broker.close)
    return broker


def retry_delay(failures: int, maximum: float) -> float:
    """How long the relay or a consumer waits after its ``failures``-th failure in a row: from
    0.1 s, doubling, at most ``maximum``, with jitter (so that replicas do not retry in step)."""
    doubled: float = 0.1 * 2.0 ** min(failures, 10)
    return min(maximum, doubled) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


def raise_if_cancelled() -> None:
    """nats-py may turn the cancellation of a pending call into an error of its own, or lose it
    (its waits use ``asyncio.wait_for``, which on Python 3.11 returns a result that came as the
    cancellation did): a task that was asked to stop must stop, not retry or go on. Call it first
    in a retry loop's ``except`` and at the top of each pass of a loop that calls nats-py."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
