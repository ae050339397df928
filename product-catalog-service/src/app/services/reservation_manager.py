"""Rules of stock reservations: hold all-or-nothing, commit, release, expire.

Every change of stock runs under row locks taken in one order (reservation, then products by
ascending id; see ``reservation_repository``), so concurrent reservations can neither oversell
nor deadlock; the ``held_within_stock`` CHECK constraint backs this up in the database.

A change of stock that ``GET /products/{id}`` shows (a hold, a release, an expiry) writes the
products' ``catalog.product.updated`` events in its own transaction, one call for all of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import reservation_repository as repository
from app.db.base import AnyRow
from app.models.reservation_models import (
    Reservation,
    ReservationCreate,
    ReservationItem,
    ReservationStatus,
)
from app.services.errors import (
    OutOfStock,
    ReservationMismatch,
    ReservationNotFound,
    ReservationNotHeld,
    TtlOutOfBounds,
    UnknownProduct,
)
from app.services.product_manager import write_product_updates

__all__ = [
    "TtlPolicy",
    "commit_reservation",
    "hold_reservation",
    "release_expired_reservations",
    "release_reservation",
]


@dataclass(frozen=True, slots=True)
class TtlPolicy:
    """How long a hold lasts when the caller does not say, and the bounds of what it may ask."""

    default: int
    minimum: int
    maximum: int

    def resolve(self, requested: int | None) -> int:
        """The TTL for a request; raise TtlOutOfBounds when it is outside the bounds."""
        if requested is None:
            return self.default
        if not self.minimum <= requested <= self.maximum:
            raise TtlOutOfBounds(minimum=self.minimum, maximum=self.maximum)
        return requested


def _reservation(
    reservation_id: UUID, status: ReservationStatus, expires_at: datetime, items: Sequence[AnyRow]
) -> Reservation:
    return Reservation.model_construct(
        reservation_id=reservation_id,
        status=status,
        expires_at=expires_at,
        items=[
            ReservationItem.model_construct(
                product_id=item.product_id,
                name=item.name,
                unit_price=item.unit_price,
                currency=item.currency,
                quantity=item.quantity,
            )
            for item in items
        ],
    )


async def _replay(connection: AsyncConnection, *, request: ReservationCreate) -> Reservation:
    """The existing reservation with this id, if it holds exactly the items asked for."""
    existing = await repository.fetch_reservation(connection, reservation_id=request.reservation_id)
    assert existing is not None  # the insert found it; reservations are never deleted
    items = await repository.fetch_items(connection, reservation_ids=[existing.id])
    held = {item.product_id: item.quantity for item in items}
    if held != {item.product_id: item.quantity for item in request.items}:
        raise ReservationMismatch(request.reservation_id)
    return _reservation(existing.id, existing.status, existing.expires_at, items)


async def hold_reservation(
    *, connection: AsyncConnection, request: ReservationCreate, ttl: TtlPolicy
) -> tuple[Reservation, bool]:
    """Hold every item or none; return the reservation and whether it was created just now.

    The same ``reservation_id`` with the same items returns the existing reservation (in
    whatever status it has reached) and holds nothing more; with other items it is a conflict.
    With ``commit`` (one step instead of hold, then commit) the stock is sold at once and the
    reservation is ``committed``; asked so again, a reservation still held is committed now (a
    released one is returned as it is, and an expired hold is ReservationNotHeld).
    """
    ttl_seconds = ttl.resolve(request.ttl_seconds)
    status: ReservationStatus = "committed" if request.commit else "held"
    expires_at = await repository.insert_reservation(
        connection, reservation_id=request.reservation_id, ttl_seconds=ttl_seconds, status=status
    )
    if expires_at is None:
        existing = await _replay(connection, request=request)
        if request.commit and existing.status == "held":
            existing = await commit_reservation(
                connection=connection, reservation_id=request.reservation_id
            )
        return existing, False

    locked = await repository.lock_products(
        connection, product_ids=(item.product_id for item in request.items), live_only=True
    )
    products = {row.id: row for row in locked}
    for index, item in enumerate(request.items):
        if item.product_id not in products:
            raise UnknownProduct(item.product_id, index=index)
    for item in request.items:
        product = products[item.product_id]
        available = product.stock - product.held
        if item.quantity > available:
            raise OutOfStock(item.product_id, requested=item.quantity, available=available)

    rows = [
        {
            "product_id": item.product_id,
            "quantity": item.quantity,
            "name": products[item.product_id].name,
            "unit_price": products[item.product_id].price,
            "currency": products[item.product_id].currency,
        }
        for item in request.items
    ]
    changed = await repository.hold_items(
        connection, reservation_id=request.reservation_id, rows=rows, sell=request.commit
    )
    # Holding (or selling) lowers each product's stock_available. A replay (above) holds
    # nothing and writes no event; nor does its commit (stock_available stays).
    await write_product_updates(connection, changed)
    reservation = Reservation.model_construct(
        reservation_id=request.reservation_id,
        status=status,
        expires_at=expires_at,
        items=[ReservationItem.model_construct(**row) for row in rows],
    )
    return reservation, True


async def _settle(
    connection: AsyncConnection, *, reservation_id: UUID, target: ReservationStatus
) -> Reservation:
    """Commit or release one reservation; repeating either changes nothing.

    Two statements between BEGIN and COMMIT when stock moves (one when it does not): lock the
    reservation and read its items; then lock its products (in ascending id order) and move the
    stock and the status together. A release adds a third, the products' updated events; a
    repeat returns before any of it and writes none.
    """
    reservation, items = await repository.lock_reservation_with_items(
        connection, reservation_id=reservation_id
    )
    if reservation is None:
        raise ReservationNotFound(reservation_id)
    status: ReservationStatus = reservation.status
    if status == target:
        return _reservation(reservation_id, status, reservation.expires_at, items)
    if target == "committed" and status == "released":
        raise ReservationNotHeld(reservation_id, status="released")
    if target == "committed" and reservation.is_expired:
        # Past its expiry a hold is as good as released; the sweeper will release it.
        raise ReservationNotHeld(reservation_id, status="expired")

    if target == "committed":
        # Held stock becomes sold: it leaves both stock and held.
        changes = [(item.product_id, -item.quantity, -item.quantity) for item in items]
    elif status == "held":
        changes = [(item.product_id, 0, -item.quantity) for item in items]
    else:
        # Releasing a committed reservation puts the sold stock back.
        changes = [(item.product_id, item.quantity, 0) for item in items]
    # A commit takes the quantity from stock and from held alike: stock_available (stock - held)
    # stays, and updated_at is an admin edit's, so GET /products/{id} shows the same product
    # before and after and there is no event to write. Releases change stock_available.
    changes_available = target == "released"
    changed = await repository.move_stock(
        connection,
        changes=changes,
        reservation_ids=[reservation_id],
        status=target,
        returning=changes_available,
    )
    if changes_available:
        await write_product_updates(connection, changed)
    return _reservation(reservation_id, target, reservation.expires_at, items)


async def commit_reservation(*, connection: AsyncConnection, reservation_id: UUID) -> Reservation:
    """Turn held stock into sold stock; idempotent; a released or expired hold is a conflict."""
    return await _settle(connection, reservation_id=reservation_id, target="committed")


async def release_reservation(*, connection: AsyncConnection, reservation_id: UUID) -> Reservation:
    """Give held (or committed) stock back; idempotent."""
    return await _settle(connection, reservation_id=reservation_id, target="released")


async def release_expired_reservations(*, connection: AsyncConnection, batch_size: int) -> int:
    """Release up to ``batch_size`` held reservations past their expiry; return how many."""
    reservation_ids = await repository.lock_expired_reservations(connection, limit=batch_size)
    if not reservation_ids:
        return 0
    items = await repository.fetch_items(connection, reservation_ids=reservation_ids)
    held = Counter[UUID]()
    for item in items:
        held[item.product_id] += item.quantity
    changed = await repository.move_stock(
        connection,
        changes=[(product_id, 0, -quantity) for product_id, quantity in held.items()],
        reservation_ids=reservation_ids,
        status="released",
        returning=True,
    )
    # One event per product, however many of the batch's reservations held it.
    await write_product_updates(connection, changed)
    return len(reservation_ids)
