"""Orders for the routes: place and cancel (through the settlement, which commits its own short
steps around the catalog calls), read, and the admin's status moves (the request's connection,
with their event in its transaction)."""

from __future__ import annotations

import uuid
from datetime import datetime

from common_libs.auth import Principal
from common_libs.pagination import InvalidCursor, Page, PageParams, encode_cursor
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import order_repository
from app.db.idempotency_repository import KeyRecord
from app.events import write_order_event
from app.models.order_models import OrderCreate, OrderOut, OrderStatus
from app.services import idempotency
from app.services.errors import IdempotencyKeyMissing, OrderNotFound, OrderStateConflict
from app.services.settlement import OrderSettlement

__all__ = [
    "cancel_order",
    "change_status",
    "get_order",
    "list_orders",
    "place_order",
]

# The only moves an admin may make; anything else (cancelling included) answers 409.
_ADMIN_MOVES: dict[str, str] = {"shipped": "confirmed", "delivered": "shipped"}


def _owner_filter(principal: Principal) -> str | None:
    """Whose orders the caller may see: their own, or everyone's (None) for an admin."""
    return None if principal.is_admin else principal.subject


async def place_order(
    *,
    settlement: OrderSettlement,
    user_id: str,
    idempotency_key: str | None,
    request: OrderCreate,
) -> OrderOut:
    """Place an order once per key: confirmed with the catalog's prices, or refused."""
    if idempotency_key is None:
        raise IdempotencyKeyMissing()
    hashed = idempotency.request_hash(request=request)
    claim = await settlement.claim(
        user_id=user_id, key=idempotency_key, request_hash=hashed, request=request
    )
    if isinstance(claim, KeyRecord):
        return idempotency.replay(record=claim, hashed_request=hashed)
    return OrderOut.from_record(await settlement.settle_placement(order=claim))


async def cancel_order(
    *, settlement: OrderSettlement, principal: Principal, order_id: uuid.UUID
) -> OrderOut:
    """Cancel a ``confirmed`` order (owner or admin); its stock returns to the catalog."""
    record = await settlement.releases.cancel(order_id=order_id, owner_id=_owner_filter(principal))
    return OrderOut.from_record(record)


async def get_order(*, engine: AsyncEngine, principal: Principal, order_id: uuid.UUID) -> OrderOut:
    """The order, when the caller owns it or is an admin; else OrderNotFound."""
    # Autocommit (a read engine): the order's row, then its items, each read on its own; the
    # items were written with the order, in its transaction.
    async with engine.connect() as connection:
        record = await order_repository.get_order(
            connection, order_id=order_id, owner_id=_owner_filter(principal)
        )
    if record is None:
        raise OrderNotFound()
    return OrderOut.from_record(record)


def _position(cursor: dict[str, object] | None) -> tuple[datetime, uuid.UUID] | None:
    """The ``(created_at, id)`` a cursor points after; a forged one is an InvalidCursor."""
    if cursor is None:
        return None
    try:
        created_at = datetime.fromisoformat(str(cursor["c"]))
        order_id = uuid.UUID(str(cursor["i"]))
    except (KeyError, ValueError) as exc:
        raise InvalidCursor from exc
    if created_at.tzinfo is None:
        raise InvalidCursor
    return created_at, order_id


async def list_orders(
    *,
    engine: AsyncEngine,
    principal: Principal,
    status: OrderStatus | None,
    page: PageParams,
) -> Page[OrderOut]:
    """The caller's orders (an admin's: everyone's), newest first."""
    after = _position(page.cursor)
    async with engine.connect() as connection:  # autocommit, as get_order's
        records = await order_repository.list_orders(
            connection,
            owner_id=_owner_filter(principal),
            status=status,
            limit=page.limit + 1,
            after=after,
        )
    shown = records[: page.limit]
    next_cursor = None
    if len(records) > page.limit:
        last = shown[-1]
        next_cursor = encode_cursor({"c": last.created_at.isoformat(), "i": str(last.id)})
    return Page[OrderOut](
        items=[OrderOut.from_record(record) for record in shown], next_cursor=next_cursor
    )


async def change_status(
    *, connection: AsyncConnection, order_id: uuid.UUID, status: OrderStatus
) -> OrderOut:
    """Move an order ``confirmed -> shipped -> delivered`` (admins only); anything else 409."""
    required = _ADMIN_MOVES.get(status)
    if required is not None:
        moved = await order_repository.move_status(
            connection, order_id=order_id, from_status=required, to_status=status
        )
        if moved is not None:
            await write_order_event(connection, moved)
            return OrderOut.from_record(moved)
    current = await order_repository.get_order(connection, order_id=order_id, owner_id=None)
    if current is None:
        raise OrderNotFound()
    raise OrderStateConflict(f"An order cannot move from {current.status} to {status}.")
