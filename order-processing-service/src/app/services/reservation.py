"""The catalog's part of settling an order: hold and commit its items, price what is held.

The reservation id is the order's id, so repeating the call for the same order is safe: the
catalog answers a known reservation id with the same reservation and takes no more stock.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from app.clients import catalog_client as catalog
from app.clients.resilience import Deadline
from app.db.order_repository import PricedItem
from app.services.errors import MixedCurrencies, OutOfStock, UnknownProduct

__all__ = ["Pricing", "ReservationTiming", "price_reservation", "reserve_and_commit"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pricing:
    """What the catalog's reservation says the order costs."""

    currency: str
    total: Decimal
    items: tuple[PricedItem, ...]


@dataclass(frozen=True, slots=True)
class ReservationTiming:
    """Budgets of one reserve-and-commit (``pause_after_reserve_seconds``: test-only)."""

    deadline_seconds: float
    reservation_ttl_seconds: int
    pause_after_reserve_seconds: float = 0.0


def price_reservation(
    *, reservation: catalog.Reservation, requested: Sequence[tuple[uuid.UUID, int]]
) -> Pricing:
    """Check the held items against the request and total them (Decimal, never float)."""
    held = {(item.product_id, item.quantity) for item in reservation.items}
    if held != set(requested) or len(reservation.items) != len(requested):
        raise catalog.ReservationUnusable("the reservation does not hold the requested items")
    currencies = {item.currency for item in reservation.items}
    if len(currencies) != 1:
        raise MixedCurrencies.for_order()
    priced = tuple(
        PricedItem(item.product_id, item.name, item.unit_price) for item in reservation.items
    )
    total = sum((item.unit_price * item.quantity for item in reservation.items), Decimal("0"))
    return Pricing(currency=currencies.pop(), total=total, items=priced)


async def reserve_and_commit(
    *,
    client: catalog.CatalogClient,
    order_id: uuid.UUID,
    items: Sequence[tuple[uuid.UUID, int]],
    timing: ReservationTiming,
) -> Pricing:
    """Hold and commit the items under the order's id in one call to the catalog (its one-step
    form); raises OrderRefused on a refusal, the catalog client's CatalogUnavailable or
    ReservationUnusable otherwise.

    A reservation of this id held before (by a saga of an earlier version that stopped between
    its two calls) is committed by the same call; one released before (expired, or the order
    failed meanwhile) is unusable. The test-only pause comes after the call, before the caller
    writes the order's outcome: the window in which a crash leaves a pending order whose stock
    is sold, for the reconciler to confirm.
    """
    deadline = Deadline.within(timing.deadline_seconds)
    try:
        reservation = await client.reserve(
            reservation_id=order_id,
            items=items,
            ttl_seconds=timing.reservation_ttl_seconds,
            deadline=deadline,
        )
    except catalog.InsufficientStock as refusal:
        raise OutOfStock.for_product(refusal.product_id) from None
    except catalog.UnknownProduct as refusal:
        raise UnknownProduct.for_product(refusal.product_id) from None
    if reservation.status != "committed":
        raise catalog.ReservationUnusable(f"the reservation is {reservation.status}, not committed")
    pricing = price_reservation(reservation=reservation, requested=items)
    if timing.pause_after_reserve_seconds > 0:
        _logger.warning("saga paused after reserve order_id=%s", order_id)
        await asyncio.sleep(timing.pause_after_reserve_seconds)
    return pricing
