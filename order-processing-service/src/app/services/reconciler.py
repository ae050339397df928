"""The reconciler: settles orders left ``pending``, retries releases, purges expired keys.

Runs in the lifespan of every replica. Each order is handled in its own transaction that holds
the order's row lock (``FOR UPDATE SKIP LOCKED``) while it talks to the catalog, so that two
replicas never settle or release the same order at the same time, and a request that is still
finishing the same order waits for the lock and then finds it no longer ``pending``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta

from common_libs.request_id import request_id_var
from sqlalchemy.ext.asyncio import AsyncEngine

from app.clients import catalog_client as catalog
from app.clients.resilience import Deadline
from app.db import idempotency_repository, order_repository
from app.db.session import unit_of_work
from app.services.errors import OrderRefused
from app.services.order_saga import OrderSaga
from app.services.settlement import (
    reserve_and_commit,
    write_abandonment,
    write_confirmation,
    write_refusal,
)

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


class Reconciler:
    """Periodically settles what requests could not finish; safe with several replicas."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        client: catalog.CatalogClient,
        saga: OrderSaga,
        interval_seconds: float,
        pending_max_age_seconds: float,
    ) -> None:
        self._engine = engine
        self._client = client
        self._saga = saga
        self._interval = interval_seconds
        self._max_age = timedelta(seconds=pending_max_age_seconds)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the periodic passes (the first one right away)."""
        self._task = asyncio.create_task(self._run_forever(), name="order-reconciler")

    async def stop(self) -> None:
        """Stop the passes; an interrupted order stays locked-then-pending for the next pass."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

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

    async def _run_forever(self) -> None:
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
            order_id, release = await self._settle_one(tried, report)
            if order_id is None:
                return
            if release:
                await self._saga.release_reservation(order_id=order_id)
            if report.left_pending:
                return  # the catalog is not answering: the next pass tries again

    async def _settle_one(
        self, tried: set[uuid.UUID], report: ReconcileReport
    ) -> tuple[uuid.UUID | None, bool]:
        """Settle the oldest stale order; returns its id and whether it must now be released."""
        async with unit_of_work(self._engine) as connection:
            record = await order_repository.lock_stale_pending_order(
                connection, max_age=self._max_age, skip=tried
            )
            if record is None:
                return None, False
            tried.add(record.id)
            items = [(item.product_id, item.quantity) for item in record.items]
            # The same reservation id again: the catalog returns the reservation if it exists
            # (taking no more stock), or makes it now if the first request never arrived.
            try:
                pricing = await reserve_and_commit(
                    client=self._client,
                    order_id=record.id,
                    items=items,
                    timing=replace(self._saga.timing, pause_after_reserve_seconds=0.0),
                )
            except catalog.CatalogUnavailable as exc:
                _logger.warning("pending order_id=%s left for later: %s", record.id, exc)
                report.left_pending += 1
                return record.id, False
            except OrderRefused as refusal:
                await write_refusal(connection, order_id=record.id, error=refusal)
                report.failed += 1
                return record.id, True
            except catalog.ReservationUnusable as exc:
                _logger.warning("pending order_id=%s failed: %s", record.id, exc)
                await write_abandonment(connection, order_id=record.id)
                report.failed += 1
                return record.id, True
            await write_confirmation(
                connection,
                order_id=record.id,
                user_id=record.user_id,
                shipping_address=record.shipping_address,
                items=items,
                pricing=pricing,
            )
            report.confirmed += 1
            return record.id, False

    async def _retry_releases(self, report: ReconcileReport) -> None:
        tried: set[uuid.UUID] = set()
        while len(tried) < _BATCH:
            async with unit_of_work(self._engine) as connection:
                order_id = await order_repository.lock_release_pending_order(connection, skip=tried)
                if order_id is None:
                    return
                tried.add(order_id)
                try:
                    await self._client.release(
                        reservation_id=order_id,
                        deadline=Deadline.within(self._saga.timing.deadline_seconds),
                    )
                except catalog.CatalogUnavailable as exc:
                    _logger.warning("release of order_id=%s postponed: %s", order_id, exc)
                    return
                await order_repository.clear_release_marker(connection, order_id=order_id)
                report.released += 1
