"""The steps the request and the reconciler share: reserve and commit, then write the outcome.

Outcomes and what they leave for a retry with the same ``Idempotency-Key``:

- confirmed: the order becomes ``confirmed`` with the catalog's prices; ``201`` and the order
  are stored with the key and replayed.
- refused (not enough stock, unknown product, mixed currencies): ``failed``; the problem is stored
  with the key and replayed.
- abandoned (the catalog unavailable, or the reservation unusable): ``failed`` and the key is
  dropped, so that the retry the ``503`` invites starts a fresh attempt.

Every ``failed`` order is marked for release (``release_pending``) in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.clients import catalog_client as catalog
from app.clients.resilience import Deadline
from app.db import idempotency_repository, order_repository
from app.db.order_repository import OrderRecord, PricedItem
from app.models.order_models import OrderItemOut, OrderOut, ShippingAddress
from app.services.errors import (
    MixedCurrencies,
    OrderRefused,
    OutOfStock,
    UnknownProduct,
    stored_problem,
)

__all__ = [
    "Pricing",
    "SagaTiming",
    "price_reservation",
    "reserve_and_commit",
    "to_order_out",
    "write_abandonment",
    "write_confirmation",
    "write_refusal",
]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pricing:
    """What the catalog's reservation says the order costs."""

    currency: str
    total: Decimal
    items: tuple[PricedItem, ...]


@dataclass(frozen=True, slots=True)
class SagaTiming:
    """Budgets of one reserve-and-commit."""

    deadline_seconds: float
    reservation_ttl_seconds: int
    pause_after_reserve_seconds: float = 0.0


def price_reservation(
    reservation: catalog.Reservation, requested: Sequence[tuple[uuid.UUID, int]]
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
    timing: SagaTiming,
) -> Pricing:
    """Hold the items under the order's id, then commit them; raises OrderRefused on a refusal.

    Reserve and commit share one deadline. Repeating this for the same order is safe: the catalog
    answers a known reservation id with the same reservation and takes no more stock.
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
    if reservation.status == "released":
        raise catalog.ReservationUnusable("the reservation was released (expired)")
    pricing = price_reservation(reservation, items)
    if timing.pause_after_reserve_seconds > 0:
        _logger.warning("saga paused after reserve order_id=%s", order_id)
        await asyncio.sleep(timing.pause_after_reserve_seconds)
        deadline = Deadline.within(timing.deadline_seconds)
    if reservation.status == "held":
        await client.commit(reservation_id=order_id, deadline=deadline)
    return pricing


def to_order_out(record: OrderRecord) -> OrderOut:
    """The API view of a stored order."""
    return OrderOut(
        id=record.id,
        user_id=record.user_id,
        status=record.status,
        items=[
            OrderItemOut(
                product_id=item.product_id,
                name=item.name,
                unit_price=item.unit_price,
                quantity=item.quantity,
                line_total=None if item.unit_price is None else item.unit_price * item.quantity,
            )
            for item in record.items
        ],
        total=record.total,
        currency=record.currency,
        shipping_address=ShippingAddress.model_validate(record.shipping_address),
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


async def write_confirmation(
    session: AsyncSession, *, order_id: uuid.UUID, pricing: Pricing
) -> OrderOut | None:
    """Confirm a ``pending`` order and store its ``201`` with the key; None if not pending."""
    confirmed = await order_repository.confirm_order(
        session,
        order_id=order_id,
        currency=pricing.currency,
        total=pricing.total,
        priced_items=pricing.items,
    )
    if not confirmed:
        return None
    record = await order_repository.get_order(session, order_id=order_id, owner_id=None)
    assert record is not None
    order = to_order_out(record)
    await idempotency_repository.store_response(
        session, order_id=order_id, status=201, body=order.model_dump(mode="json")
    )
    return order


async def write_refusal(session: AsyncSession, *, order_id: uuid.UUID, error: OrderRefused) -> bool:
    """Fail a ``pending`` order and store the refusal with the key; False if not pending."""
    if not await order_repository.fail_pending_order(session, order_id=order_id):
        return False
    await idempotency_repository.store_response(
        session, order_id=order_id, status=error.status, body=stored_problem(error)
    )
    return True


async def write_abandonment(session: AsyncSession, *, order_id: uuid.UUID) -> bool:
    """Fail a ``pending`` order and drop its key; False if not pending."""
    if not await order_repository.fail_pending_order(session, order_id=order_id):
        return False
    await idempotency_repository.drop_key(session, order_id=order_id)
    return True
