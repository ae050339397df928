"""Giving stock back to the catalog: cancelling a confirmed order, releasing a reservation.

The order's ``release_pending`` marker is written with its ``failed`` or ``cancelled`` status (and
its event),
so a release that the catalog does not answer (or a crash before it is sent) is retried by the
reconciler. Releases are idempotent at the catalog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.clients import catalog_client as catalog
from app.clients.resilience import Deadline
from app.db import order_repository, settlement_repository
from app.db.order_repository import OrderRecord
from app.db.session import unit_of_work
from app.events import write_order_event
from app.services.errors import OrderNotFound, OrderStateConflict

__all__ = ["ReservationReleases"]

_logger = logging.getLogger(__name__)


class ReservationReleases:
    """Cancels orders and releases reservations (now or in the background); one per process."""

    def __init__(
        self, *, engine: AsyncEngine, client: catalog.CatalogClient, deadline_seconds: float
    ) -> None:
        self._engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._client = client
        self._deadline_seconds = deadline_seconds
        self._background: set[asyncio.Task[None]] = set()

    async def cancel(self, *, order_id: uuid.UUID, owner_id: str | None) -> OrderRecord:
        """Cancel a visible ``confirmed`` order and return its stock to the catalog."""
        async with unit_of_work(self._engine) as connection:
            cancelled = await order_repository.cancel_confirmed_order(
                connection, order_id=order_id, owner_id=owner_id
            )
            if cancelled is None:
                current = await order_repository.get_order(
                    connection, order_id=order_id, owner_id=owner_id
                )
                if current is None:
                    raise OrderNotFound()
                raise OrderStateConflict(
                    f"Only a confirmed order can be cancelled; this one is {current.status}."
                )
            await write_order_event(connection, cancelled)
        # The cancellation is durable with its release marker and its event: if the catalog does
        # not answer now, the reconciler releases the stock later. The release changes nothing
        # the answer shows, so the cancelled order is the answer.
        await self.release(order_id=order_id)
        return cancelled

    async def release(self, *, order_id: uuid.UUID, held: AsyncConnection | None = None) -> bool:
        """Release the order's reservation and clear its marker; False leaves it for later.

        ``held`` is the reconciler's transaction, which holds the order's row lock.
        """
        try:
            await self._client.release(
                reservation_id=order_id, deadline=Deadline.within(self._deadline_seconds)
            )
        except catalog.CatalogUnavailable as exc:
            _logger.warning("release of order_id=%s postponed: %s", order_id, exc)
            return False
        if held is not None:
            await settlement_repository.clear_release_marker(held, order_id=order_id)
            return True
        # One statement: autocommit, no BEGIN/COMMIT round trips.
        async with self._autocommit.connect() as connection:
            await settlement_repository.clear_release_marker(connection, order_id=order_id)
        return True

    def release_later(self, order_id: uuid.UUID) -> None:
        """Release without delaying the answer; the durable marker covers a failure or a crash."""
        task = asyncio.create_task(self._release_quietly(order_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def wait(self) -> None:
        """Wait until the releases sent in the background have finished (or given up)."""
        if self._background:
            await asyncio.wait(set(self._background))

    async def aclose(self) -> None:
        """Let background releases finish within one deadline (the reconciler covers the rest)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._deadline_seconds):
                await self.wait()
        for task in list(self._background):
            task.cancel()

    async def _release_quietly(self, order_id: uuid.UUID) -> None:
        try:
            await self.release(order_id=order_id)
        except Exception:
            _logger.exception("release of order_id=%s failed; the reconciler retries it", order_id)
