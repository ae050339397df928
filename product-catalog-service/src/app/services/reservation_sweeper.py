"""The background task that releases held reservations past their expiry.

Started and cancelled by the lifespan. Each sweep is one short transaction over a small batch
locked with ``FOR UPDATE SKIP LOCKED``, so any number of replicas can sweep side by side.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.session import unit_of_work
from app.services.reservation_manager import release_expired_reservations

__all__ = ["run_reservation_sweeper", "sweep_expired_reservations"]

logger = logging.getLogger(__name__)


async def sweep_expired_reservations(*, engine: AsyncEngine, batch_size: int) -> int:
    """Release one batch of expired reservations in a transaction of its own; return how many."""
    async with unit_of_work(engine) as connection:
        return await release_expired_reservations(connection=connection, batch_size=batch_size)


async def run_reservation_sweeper(
    *, engine: AsyncEngine, interval_seconds: float, batch_size: int
) -> None:
    """Sweep forever: a full batch is followed at once by another, else wait ``interval_seconds``.

    A failed sweep (the database restarting, say) is logged and the loop carries on.
    """
    while True:
        released = 0
        try:
            released = await sweep_expired_reservations(engine=engine, batch_size=batch_size)
        except Exception:
            logger.exception("reservation sweep failed; retrying in %.1f s", interval_seconds)
        if released:
            logger.info("released %d expired reservation(s)", released)
        if released < batch_size:
            await asyncio.sleep(interval_seconds)
