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
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.clients import catalog_client as catalog
from app.clients.resilience import Deadline
from app.db import idempotency_repository, order_repository
from app.db.order_repository import ItemRecord, OrderRecord, PricedItem
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
    answers a known reservation id with the same reservation and takes no more stock, and a
    commit of a committed reservation changes nothing.
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


# Stands in for the timestamps of the answer stored with the key: the database sets them.
_UNSET = datetime(1970, 1, 1, tzinfo=UTC)


def _confirmed_answer(
    *,
    order_id: uuid.UUID,
    user_id: str,
    shipping_address: dict[str, Any],
    items: Sequence[tuple[uuid.UUID, int]],
    pricing: Pricing,
) -> dict[str, Any]:
    """The ``201`` body of the order once confirmed, without ``created_at`` and ``updated_at``."""
    prices = {item.product_id: item for item in pricing.items}
    record = OrderRecord(
        id=order_id,
        user_id=user_id,
        status="confirmed",
        currency=pricing.currency,
        total=pricing.total,
        shipping_address=shipping_address,
        created_at=_UNSET,
        updated_at=_UNSET,
        items=tuple(
            ItemRecord(product, quantity, prices[product].name, prices[product].unit_price)
            for product, quantity in items
        ),
    )
    return to_order_out(record).model_dump(mode="json", exclude={"created_at", "updated_at"})


async def write_confirmation(
    connection: AsyncConnection,
    *,
    order_id: uuid.UUID,
    user_id: str,
    shipping_address: dict[str, Any],
    items: Sequence[tuple[uuid.UUID, int]],
    pricing: Pricing,
) -> OrderOut | None:
    """Confirm a ``pending`` order and store its ``201`` with the key (one statement); None if
    it was not pending. ``items`` are the order's ``(product_id, quantity)`` in their order."""
    record = await order_repository.confirm_order(
        connection,
        order_id=order_id,
        currency=pricing.currency,
        total=pricing.total,
        priced_items=pricing.items,
        answer=_confirmed_answer(
            order_id=order_id,
            user_id=user_id,
            shipping_address=shipping_address,
            items=items,
            pricing=pricing,
        ),
    )
    return None if record is None else to_order_out(record)


async def write_refusal(
    connection: AsyncConnection, *, order_id: uuid.UUID, error: OrderRefused
) -> bool:
    """Fail a ``pending`` order and store the refusal with the key; False if not pending."""
    if not await order_repository.fail_pending_order(connection, order_id=order_id):
        return False
    await idempotency_repository.store_response(
        connection, order_id=order_id, status=error.status, body=stored_problem(error)
    )
    return True


async def write_abandonment(connection: AsyncConnection, *, order_id: uuid.UUID) -> bool:
    """Fail a ``pending`` order and drop its key; False if not pending."""
    if not await order_repository.fail_pending_order(connection, order_id=order_id):
        return False
    await idempotency_repository.drop_key(connection, order_id=order_id)
    return True
