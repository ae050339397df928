"""How far the chat's read model of a product lags the catalog while orders take its stock.

The events figure of item 4 (``bench/event_delays.py``) is the delay of the events the consumers
handled. The catalog's relay coalesces a product's updates (a burst of stock changes goes out as
its latest event), so an update it left out reaches the read model with a later one, and its
own delay is in no histogram. This measures what a reader of the read model sees instead: a
sampler reads, one after the other on two connections of its own, the product's latest event
version at the catalog (``event_versions``, written in the transaction that changed the stock)
and the version the chat's consumer has applied (``consumed_versions``, written in the
transaction that changed its copy). A version's staleness is the time from the first sample
that saw it committed at the catalog to the first that saw the read model at it or later. Each
end is read at most one sampling interval late, so a figure is good to about one interval
either way; the versions the catalog already had when sampling began are left out (when they
were committed is not known).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

__all__ = ["SETTLE_SECONDS", "Sample", "StalenessSampler", "staleness_ms"]

# The names the two services give these rows (the catalog's event entity, the chat's consumer
# of CATALOG); the benchmark reads their tables as it reads the read model itself for item 6.
ENTITY = "catalog.product"
CONSUMER = "chat-llm-service-catalog"
_CATALOG_VERSION = "SELECT version FROM event_versions WHERE entity = $1 AND subject = $2"
_APPLIED_VERSION = (
    "SELECT version FROM consumed_versions WHERE consumer = $1 AND entity = $2 AND subject = $3"
)
PAUSE_SECONDS = 0.002  # between samples (a sample itself is two short queries)
# After the load, how long the sampling waits at most for the read model to catch up.
SETTLE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading: the catalog's version of the product and, just after, the read model's
    (None where there is none yet), each with the ``time.perf_counter()`` it was read at."""

    catalog_at: float
    catalog_version: int | None
    model_at: float
    model_version: int | None


def staleness_ms(samples: Sequence[Sample]) -> tuple[list[float], int]:
    """Each version's staleness in ms, in version order, for the versions the catalog reached
    after the first sample; and how many of those the read model had not reached by the last."""
    # Seen at the catalog, not yet in the read model, in order: (version, when first seen).
    waiting: deque[tuple[int, float]] = deque()
    newest: int | None = None
    stale: list[float] = []
    for sample in samples:
        version = sample.catalog_version
        if version is not None:
            if newest is not None:
                waiting.extend((new, sample.catalog_at) for new in range(newest + 1, version + 1))
            newest = version if newest is None else max(newest, version)
        applied = sample.model_version
        while waiting and applied is not None and waiting[0][0] <= applied:
            _, seen_at = waiting.popleft()
            stale.append((sample.model_at - seen_at) * 1000)
    return stale, len(waiting)


class StalenessSampler:
    """Samples one product's two versions in a thread of its own until :meth:`finish`.

    ``finish`` lets the sampling go on until the read model has caught up with the catalog
    (or ``settle_seconds`` passed), so that the last versions of a run are measured too."""

    def __init__(
        self,
        *,
        catalog_dsn: str,
        chat_dsn: str,
        product_id: str,
        settle_seconds: float = SETTLE_SECONDS,
    ) -> None:
        self._dsns = (catalog_dsn, chat_dsn)
        self._product_id = product_id
        self._samples: list[Sample] = []
        self._load_over = threading.Event()
        self._settle_seconds = settle_seconds
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="staleness-sampler", daemon=True)
        self._started = threading.Event()

    def start(self) -> StalenessSampler:
        """Connect and take a first sample before returning."""
        self._thread.start()
        self._started.wait(30)
        if self._failure is not None:
            raise RuntimeError("the staleness sampler could not start") from self._failure
        return self

    def finish(self) -> list[Sample]:
        """Sample until the read model has caught up (at most ``settle_seconds``), then stop."""
        self._load_over.set()
        self._thread.join(self._settle_seconds + 30)
        if self._failure is not None:
            raise RuntimeError("the staleness sampler failed") from self._failure
        return list(self._samples)

    def _run(self) -> None:
        try:
            asyncio.run(self._sample())
        except BaseException as exc:  # handed to the caller (start or finish)
            self._failure = exc
            self._started.set()

    async def _sample(self) -> None:
        catalog = await asyncpg.connect(self._dsns[0])
        try:
            model = await asyncpg.connect(self._dsns[1])
            try:
                await self._loop(catalog, model)
            finally:
                await model.close()
        finally:
            await catalog.close()

    async def _loop(self, catalog: asyncpg.Connection, model: asyncpg.Connection) -> None:
        catalog_version = await catalog.prepare(_CATALOG_VERSION)
        applied_version = await model.prepare(_APPLIED_VERSION)
        deadline: float | None = None
        while True:
            # Only a sample begun after the load ended can say the read model caught up with
            # the catalog's last version (one begun before may have missed the last change).
            load_over = self._load_over.is_set()
            version = await catalog_version.fetchval(ENTITY, self._product_id)
            catalog_at = time.perf_counter()
            applied = await applied_version.fetchval(CONSUMER, ENTITY, self._product_id)
            sample = Sample(catalog_at, version, time.perf_counter(), applied)
            self._samples.append(sample)
            self._started.set()
            if load_over:
                deadline = deadline or time.perf_counter() + self._settle_seconds
                caught_up = applied is not None and version is not None and applied >= version
                if caught_up or time.perf_counter() > deadline:
                    return
            await asyncio.sleep(PAUSE_SECONDS)
