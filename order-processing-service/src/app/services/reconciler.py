"""The reconciler: settles orders left ``pending``, retries releases, purges expired keys.

Runs in the lifespan of every replica. Each order is handled in its own transaction that holds
the order's row lock (``FOR UPDATE SKIP LOCKED``) while it talks to the catalog, so that two
replicas never settle or release the same order at the same time, and a request that is still
finishing the same order waits for the lock and then finds it no longer ``pending``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from common_libs.request_id import request_id_var
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import idempotency_repository, settlement_repository
from app.db.session import unit_of_work
from app.services.settlement import OrderSettlement, Outcome, PendingOrder

__all__ = ["ReconcileReport", "Reconciler"]

_logger = logging.getLogger(__name__)

_BATCH = 100


@dataclass(slots=True)
class ReconcileReport:
    """What one pass did."""

    confirmed: int = 0
    failed: int = 0
    left_pending: int = 0
    released: int = 0
    purged_keys: int = 0

    def __bool__(self) -> bool:
        return any(
            (self.confirmed, self.failed, self.left_pending, self.released, self.purged_keys)
        )

    def count(self, outcome: Outcome) -> None:
        """Count one settled order."""
        if outcome is Outcome.CONFIRMED:
            self.confirmed += 1
        elif outcome.must_release:
            self.failed += 1
        elif outcome is Outcome.LEFT_PENDING:
            self.left_pending += 1


class Reconciler:
    """Periodically settles what requests could not finish; safe with several replicas."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        settlement: OrderSettlement,
        interval_seconds: float,
        pending_max_age_seconds: float,
    ) -> None:
        self._engine = engine
        self._settlement = settlement
        self._interval = interval_seconds
        self._max_age = timedelta(seconds=pending_max_age_seconds)

    async def run_once(self) -> ReconcileReport:
        """One pass: settle stale ``pending`` orders, retry releases, purge expired keys."""
        report = ReconcileReport()
        await self._settle_stale_orders(report)
        await self._retry_releases(report)
        async with unit_of_work(self._engine) as connection:
            report.purged_keys = await idempotency_repository.purge_expired_keys(
                connection, limit=1000
            )
        if report:
            _logger.info("reconciler pass: %s", report)
        return report

    async def run_forever(self) -> None:
        """Periodic passes, the first one right away, until cancelled (an interrupted order stays
        locked-then-pending for the next pass)."""
        request_id_var.set("reconciler")
        while True:
            try:
                await self.run_once()
            except Exception:
                _logger.exception("reconciler pass failed; retrying at the next interval")
            await asyncio.sleep(self._interval)

    async def _settle_stale_orders(self, report: ReconcileReport) -> None:
        tried: set[uuid.UUID] = set()
        while len(tried) < _BATCH:
            settled = await self._settle_one(tried)
            if settled is None:
                return
            order_id, outcome = settled
            report.count(outcome)
            if outcome.must_release:
                # After the order's transaction: clearing its marker on another connection would
                # wait for that transaction's row lock.
                await self._settlement.releases.release(order_id=order_id)
            if outcome is Outcome.LEFT_PENDING:
                return  # the catalog is not answering: the next pass tries again

    async def _settle_one(self, tried: set[uuid.UUID]) -> tuple[uuid.UUID, Outcome] | None:
        """Settle the oldest stale order in a transaction that holds its row lock."""
        async with unit_of_work(self._engine) as connection:
            record = await settlement_repository.lock_stale_pending_order(
                connection, max_age=self._max_age, skip=tried
            )
            if record is None:
                return None
            tried.add(record.id)
            # The same reservation id again: the catalog returns the reservation if it exists
            # (taking no more stock), or makes it now if the first request never arrived.
            outcome = await self._settlement.settle_stale(
                order=PendingOrder.from_record(record), connection=connection
            )
        return record.id, outcome

    async def _retry_releases(self, report: ReconcileReport) -> None:
        tried: set[uuid.UUID] = set()
        while len(tried) < _BATCH:
            async with unit_of_work(self._engine) as connection:
                order_id = await settlement_repository.lock_release_pending_order(
                    connection, skip=tried
                )
                if order_id is None:
                    return
                tried.add(order_id)
                if not await self._settlement.releases.release(order_id=order_id, held=connection):
                    return
                report.released += 1
