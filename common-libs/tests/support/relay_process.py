"""An outbox relay as a process of its own (``python relay_process.py DB_URL NATS_URL STREAM
SUBJECTS``), so that a test can kill it (SIGKILL) in the middle of a pass."""

from __future__ import annotations

import asyncio
import logging
import sys

from sqlalchemy.ext.asyncio import create_async_engine

from common_libs.events import Broker, OutboxRelay, StreamSpec


async def main(database_url: str, nats_url: str, stream: str, subjects: str) -> None:
    engine = create_async_engine(database_url)
    broker = Broker(nats_url, name="relay-process")
    relay = OutboxRelay(
        engine=engine, broker=broker, stream=StreamSpec(stream, tuple(subjects.split(",")))
    )
    print("relaying", flush=True)
    await relay.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main(*sys.argv[1:5]))
