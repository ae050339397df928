"""Every query on orders and their items (SQLAlchemy Core statements on the mapped tables)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, Table, Uuid, any_, bindparam, func, insert, select, true, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.db.tables import Order, OrderItem

__all__ = [
    "ItemRecord",
    "OrderRecord",
    "PricedItem",
    "cancel_confirmed_order",
    "clear_release_marker",
    "confirm_order",
    "fail_pending_order",
    "get_order",
    "insert_pending_order",
    "list_orders",
    "lock_release_pending_order",
    "lock_stale_pending_order",
    "move_status",
]

_UUIDS = ARRAY(Uuid())
_ORDER_COLUMNS = (
    Order.id,
    Order.user_id,
    Order.status,
    Order.currency,
    Order.total,
    Order.shipping_address,
    Order.created_at,
    Order.updated_at,
)


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """One stored order line."""

    product_id: uuid.UUID
    quantity: int
    name: str | None
    unit_price: Decimal | None


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One stored order with its lines, in their original order."""

    id: uuid.UUID
    user_id: str
    status: str
    currency: str | None
    total: Decimal | None
    shipping_address: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    items: tuple[ItemRecord, ...]


@dataclass(frozen=True, slots=True)
class PricedItem:
    """The catalog's name and price for one product of an order."""

    product_id: uuid.UUID
    name: str
    unit_price: Decimal


def _visible_to(owner_id: str | None) -> ColumnElement[bool]:
    """Rows the caller may see: their own, or every row for ``owner_id=None`` (admins)."""
    return true() if owner_id is None else Order.user_id == owner_id


async def _items_by_order(
    session: AsyncSession, order_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, tuple[ItemRecord, ...]]:
    if not order_ids:
        return {}
    rows = await session.execute(
        select(
            OrderItem.order_id,
            OrderItem.product_id,
            OrderItem.quantity,
            OrderItem.name,
            OrderItem.unit_price,
        )
        # "= ANY(array)" keeps one cached statement for any number of ids (IN would re-render).
        .where(OrderItem.order_id == any_(bindparam("order_ids", list(order_ids), type_=_UUIDS)))
        .order_by(OrderItem.order_id, OrderItem.position)
    )
    grouped: defaultdict[uuid.UUID, list[ItemRecord]] = defaultdict(list)
    for row in rows:
        grouped[row.order_id].append(
            ItemRecord(row.product_id, row.quantity, row.name, row.unit_price)
        )
    return {order_id: tuple(items) for order_id, items in grouped.items()}


async def _with_items(session: AsyncSession, rows: Sequence[Row[Any]]) -> list[OrderRecord]:
    items = await _items_by_order(session, [row.id for row in rows])
    return [
        OrderRecord(
            id=row.id,
            user_id=row.user_id,
            status=row.status,
            currency=row.currency,
            total=row.total,
            shipping_address=row.shipping_address,
            created_at=row.created_at,
            updated_at=row.updated_at,
            items=items.get(row.id, ()),
        )
        for row in rows
    ]


async def insert_pending_order(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    user_id: str,
    shipping_address: dict[str, Any],
    items: Sequence[tuple[uuid.UUID, int]],
) -> None:
    """Insert a ``pending`` order and its requested lines (not yet priced)."""
    await session.execute(
        insert(Order).values(
            id=order_id, user_id=user_id, status="pending", shipping_address=shipping_address
        )
    )
    await session.execute(
        insert(OrderItem),
        [
            {"order_id": order_id, "position": position, "product_id": product, "quantity": qty}
            for position, (product, qty) in enumerate(items)
        ],
    )


async def get_order(
    session: AsyncSession, *, order_id: uuid.UUID, owner_id: str | None
) -> OrderRecord | None:
    """The order with this id when the caller may see it (``owner_id=None``: any order)."""
    rows = (
        await session.execute(
            select(*_ORDER_COLUMNS).where(Order.id == order_id, _visible_to(owner_id))
        )
    ).all()
    records = await _with_items(session, rows)
    return records[0] if records else None


async def list_orders(
    session: AsyncSession,
    *,
    owner_id: str | None,
    status: str | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[OrderRecord]:
    """Newest first, keyset-paginated on ``(created_at, id)``; at most ``limit`` orders."""
    statement = select(*_ORDER_COLUMNS).where(_visible_to(owner_id))
    if status is not None:
        statement = statement.where(Order.status == status)
    if after is not None:
        statement = statement.where(tuple_(Order.created_at, Order.id) < tuple_(*after))
    statement = statement.order_by(Order.created_at.desc(), Order.id.desc()).limit(limit)
    rows = (await session.execute(statement)).all()
    return await _with_items(session, rows)


async def confirm_order(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    currency: str,
    total: Decimal,
    priced_items: Sequence[PricedItem],
) -> bool:
    """Move a ``pending`` order to ``confirmed`` with the catalog's prices; False if not pending."""
    confirmed = await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == "pending")
        .values(status="confirmed", currency=currency, total=total, updated_at=func.now())
        .returning(Order.id)
    )
    if confirmed.first() is None:
        return False
    items = OrderItem.__table__
    assert isinstance(items, Table)
    await session.execute(
        update(items)
        .where(
            items.c.order_id == bindparam("b_order_id"),
            items.c.product_id == bindparam("b_product_id"),
        )
        .values(name=bindparam("b_name"), unit_price=bindparam("b_unit_price")),
        [
            {
                "b_order_id": order_id,
                "b_product_id": item.product_id,
                "b_name": item.name,
                "b_unit_price": item.unit_price,
            }
            for item in priced_items
        ],
    )
    return True


async def fail_pending_order(session: AsyncSession, *, order_id: uuid.UUID) -> bool:
    """Move a ``pending`` order to ``failed``, marking its reservation for release."""
    failed = await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == "pending")
        .values(status="failed", release_pending=True, updated_at=func.now())
        .returning(Order.id)
    )
    return failed.first() is not None


async def cancel_confirmed_order(
    session: AsyncSession, *, order_id: uuid.UUID, owner_id: str | None
) -> bool:
    """Move a visible ``confirmed`` order to ``cancelled``, marking its stock for release."""
    cancelled = await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == "confirmed", _visible_to(owner_id))
        .values(status="cancelled", release_pending=True, updated_at=func.now())
        .returning(Order.id)
    )
    return cancelled.first() is not None


async def move_status(
    session: AsyncSession, *, order_id: uuid.UUID, from_status: str, to_status: str
) -> bool:
    """Change the status only when it is ``from_status`` now (one conditional statement)."""
    moved = await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == from_status)
        .values(status=to_status, updated_at=func.now())
        .returning(Order.id)
    )
    return moved.first() is not None


async def clear_release_marker(session: AsyncSession, *, order_id: uuid.UUID) -> None:
    """Record that the order's reservation has been released at the catalog."""
    await session.execute(update(Order).where(Order.id == order_id).values(release_pending=False))


async def lock_stale_pending_order(
    session: AsyncSession, *, max_age: timedelta, skip: Collection[uuid.UUID]
) -> OrderRecord | None:
    """Lock the oldest order ``pending`` for longer than ``max_age`` that no one else holds."""
    statement = (
        select(*_ORDER_COLUMNS)
        .where(Order.status == "pending", Order.created_at < func.now() - max_age)
        .order_by(Order.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if skip:
        statement = statement.where(Order.id.not_in(skip))
    rows = (await session.execute(statement)).all()
    records = await _with_items(session, rows)
    return records[0] if records else None


async def lock_release_pending_order(
    session: AsyncSession, *, skip: Collection[uuid.UUID]
) -> uuid.UUID | None:
    """Lock one order whose reservation still has to be released, skipping rows others hold."""
    statement = (
        select(Order.id).where(Order.release_pending).limit(1).with_for_update(skip_locked=True)
    )
    if skip:
        statement = statement.where(Order.id.not_in(skip))
    return (await session.execute(statement)).scalar_one_or_none()
