"""The fleet's JetStream streams (API.md, "Events"), and the call that creates or updates them.

One stream per domain, file storage, events kept at least 7 days; ``DEADLETTER`` keeps the
messages a consumer gave up on, with the reason. ``python -m common_libs.events --nats-url
nats://127.0.0.1:4222 [--replicas 3]`` creates them all or brings them up to date (``make up``
runs it; a production cluster runs it with ``--replicas 3``). A service's relay and consumers
create a stream that does not exist yet, and leave an existing one as it is.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from datetime import timedelta

import nats
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

__all__ = [
    "CATALOG",
    "DEADLETTER",
    "FLEET_STREAMS",
    "ORDERS",
    "USERS",
    "StreamSpec",
    "ensure_stream",
    "ensure_streams",
]

_WEEK = timedelta(days=7)
# The broker's refusals of an add that mean the stream may exist by now: "stream name already in
# use" and "subjects overlap with an existing stream".
_CREATED_MEANWHILE = frozenset({10058, 10065})
# How long a refused add waits for the stream to be found before the refusal stands.
_APPEAR_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A stream: its name, the subjects it captures, how long it keeps messages."""

    name: str
    subjects: tuple[str, ...]
    max_age: timedelta = _WEEK
    # The broker drops a second publish with the same ``Nats-Msg-Id`` within this window: longer
    # than any relay restart, so a row published before a crash and again after is stored once.
    duplicate_window: timedelta = timedelta(minutes=10)

    def config(self, *, replicas: int = 1) -> StreamConfig:
        """The JetStream configuration of this stream (``replicas`` copies in a cluster)."""
        return StreamConfig(
            num_replicas=replicas,
            name=self.name,
            subjects=list(self.subjects),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=self.max_age.total_seconds(),
            duplicate_window=self.duplicate_window.total_seconds(),
        )


CATALOG = StreamSpec("CATALOG", ("catalog.>",))
ORDERS = StreamSpec("ORDERS", ("orders.>",))
USERS = StreamSpec("USERS", ("users.>",))
DEADLETTER = StreamSpec("DEADLETTER", ("deadletter.>",), max_age=timedelta(days=30))
FLEET_STREAMS = (CATALOG, ORDERS, USERS, DEADLETTER)


async def ensure_stream(
    js: JetStreamContext, spec: StreamSpec, *, update: bool = False, replicas: int = 1
) -> None:
    """Create the stream if it does not exist; with ``update``, bring an existing one's
    configuration up to ``spec`` (the operator's command does, a service never does)."""
    try:
        await js.stream_info(spec.name)
    except NotFoundError:
        try:
            await js.add_stream(spec.config(replicas=replicas))
        except BadRequestError as refused:
            # Another client created it between the lookup and the add, or a restarted broker
            # was still restoring it from its store: the broker refuses the add ("subjects
            # overlap", nats-io/nats.go#949). It is there as soon as the lookup finds it.
            if refused.err_code not in _CREATED_MEANWHILE or not await _appears(js, spec.name):
                raise
    else:
        if update:
            await js.update_stream(spec.config(replicas=replicas))


async def _appears(js: JetStreamContext, name: str) -> bool:
    """Whether the stream ``name`` is found within ``_APPEAR_SECONDS``."""
    deadline = asyncio.get_running_loop().time() + _APPEAR_SECONDS
    while True:
        try:
            await js.stream_info(name)
        except NotFoundError:
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.05)
        else:
            return True


async def ensure_streams(
    js: JetStreamContext, specs: tuple[StreamSpec, ...] = FLEET_STREAMS, *, replicas: int = 1
) -> None:
    """Create or update every stream of ``specs``."""
    for spec in specs:
        await ensure_stream(js, spec, update=True, replicas=replicas)


async def _main(url: str, replicas: int) -> None:
    connection = await nats.connect(
        url, connect_timeout=5, allow_reconnect=False, max_reconnect_attempts=1
    )
    try:
        await ensure_streams(connection.jetstream(), replicas=replicas)
    finally:
        await connection.close()


def main(argv: list[str] | None = None) -> None:
    """Create or update the fleet's streams on the broker at ``--nats-url``."""
    parser = argparse.ArgumentParser(prog="python -m common_libs.events", description=main.__doc__)
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    parser.add_argument("--replicas", type=int, default=1, choices=range(1, 6), metavar="1-5")
    args = parser.parse_args(argv)
    asyncio.run(_main(args.nats_url, args.replicas))
    print(f"streams ready: {', '.join(spec.name for spec in FLEET_STREAMS)}")
