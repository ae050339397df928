"""Every query on orders and their items (SQLAlchemy Core statements on the mapped tables)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    Integer,
    Interval,
    Numeric,
    Row,
    String,
    Table,
    Uuid,
    any_,
    bindparam,
    column,
    func,
    insert,
    literal,
    null,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from app.db.tables import IdempotencyKey, Order, OrderItem

__all__ = [
    "ItemRecord",
    "OrderRecord",
    "PricedItem",
    "cancel_confirmed_order",
    "clear_release_marker",
    "confirm_order",
    "fail_pending_order",
    "get_order",
    "list_orders",
    "lock_release_pending_order",
    "lock_stale_pending_order",
    "move_status",
    "place_pending_order",
]

_UUIDS = ARRAY(Uuid())
_orders = cast(Table, Order.__table__)
_items = cast(Table, OrderItem.__table__)
_keys = cast(Table, IdempotencyKey.__table__)
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
    connection: AsyncConnection, order_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, tuple[ItemRecord, ...]]:
    if not order_ids:
        return {}
    rows = await connection.execute(
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


async def _with_items(connection: AsyncConnection, rows: Sequence[Row[Any]]) -> list[OrderRecord]:
    items = await _items_by_order(connection, [row.id for row in rows])
    return [_record(row, items.get(row.id, ())) for row in rows]


def _record(row: Row[Any], items: tuple[ItemRecord, ...]) -> OrderRecord:
    """An order row (its columns by name) and its items."""
    return OrderRecord(
        id=row.id,
        user_id=row.user_id,
        status=row.status,
        currency=row.currency,
        total=row.total,
        shipping_address=row.shipping_address,
        created_at=row.created_at,
        updated_at=row.updated_at,
        items=items,
    )


def _placement_statement() -> Any:
    """Claim the key, insert the ``pending`` order and its lines: one statement, three CTEs.

    The claim is ``INSERT ... ON CONFLICT (user_id, key) DO UPDATE ... WHERE expired``: a live
    claim is left alone (nothing is returned, so no order and no line is inserted), an expired one
    that the purge has not removed yet is taken over atomically. Built once: its cache key is
    computed once, and one statement in autocommit is one round trip instead of five.
    """
    claiming = pg_insert(_keys).values(
        user_id=bindparam("user_id"),
        key=bindparam("key"),
        request_hash=bindparam("request_hash"),
        order_id=bindparam("order_id"),
        expires_at=func.now() + bindparam("ttl", type_=Interval()),
    )
    claim = (
        claiming.on_conflict_do_update(
            index_elements=[_keys.c.user_id, _keys.c.key],
            set_={
                "request_hash": claiming.excluded.request_hash,
                "order_id": claiming.excluded.order_id,
                "response_status": null(),
                "response_body": null(),
                "created_at": func.now(),
                "expires_at": claiming.excluded.expires_at,
            },
            where=_keys.c.expires_at < func.now(),
        )
        .returning(_keys.c.order_id, _keys.c.user_id)
        .cte("claim")
    )
    new_order = (
        insert(_orders)
        .from_select(
            ["id", "user_id", "status", "shipping_address"],
            select(
                claim.c.order_id,
                claim.c.user_id,
                literal("pending"),
                bindparam("shipping_address", type_=JSONB()),
            ),
        )
        .returning(_orders.c.id)
        .cte("new_order")
    )
    lines = (
        func.unnest(
            bindparam("product_ids", type_=_UUIDS), bindparam("quantities", type_=ARRAY(Integer()))
        )
        .table_valued(
            column("product_id", Uuid()), column("quantity", Integer()), with_ordinality="ordinal"
        )
        .render_derived(name="line")
    )
    return (
        insert(_items)
        .from_select(
            ["order_id", "position", "product_id", "quantity"],
            select(
                new_order.c.id, lines.c.ordinal - 1, lines.c.product_id, lines.c.quantity
            ).select_from(new_order.join(lines, true())),
        )
        .returning(_items.c.order_id)
    )


_PLACEMENT = _placement_statement()


async def place_pending_order(
    connection: AsyncConnection,
    *,
    order_id: uuid.UUID,
    user_id: str,
    key: str,
    request_hash: str,
    ttl: timedelta,
    shipping_address: dict[str, Any],
    items: Sequence[tuple[uuid.UUID, int]],
) -> bool:
    """Claim ``(user_id, key)`` for a new ``pending`` order with its requested (unpriced) lines.

    One atomic statement; False when a live claim holds the key (then nothing is written).
    """
    result = await connection.execute(
        _PLACEMENT,
        {
            "user_id": user_id,
            "key": key,
            "request_hash": request_hash,
            "order_id": order_id,
            "ttl": ttl,
            "shipping_address": shipping_address,
            "product_ids": [product for product, _ in items],
            "quantities": [quantity for _, quantity in items],
        },
    )
    return result.first() is not None


async def get_order(
    connection: AsyncConnection, *, order_id: uuid.UUID, owner_id: str | None
) -> OrderRecord | None:
    """The order with this id when the caller may see it (``owner_id=None``: any order)."""
    rows = (
        await connection.execute(
            select(*_ORDER_COLUMNS).where(Order.id == order_id, _visible_to(owner_id))
        )
    ).all()
    records = await _with_items(connection, rows)
    return records[0] if records else None


async def list_orders(
    connection: AsyncConnection,
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
    rows = (await connection.execute(statement)).all()
    return await _with_items(connection, rows)


def _utc_iso(timestamp: Any) -> Any:
    """``timestamp`` as ISO 8601 text in UTC, as the API writes it, whatever the session's zone."""
    return func.to_char(func.timezone("UTC", timestamp), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')


def _confirmation_statement() -> Any:
    """Confirm a ``pending`` order, price its lines and store its answer with its key.

    One statement (three CTEs) built once: the order moves only from ``pending`` (so the request
    and the reconciler cannot both confirm it); its lines are priced and the answer is stored
    with the key only when it moved, all or nothing. The answer's body comes from the caller
    without its two timestamps, which only the update knows; they are added here, in the API's
    format. Returns the order's lines, in order.
    """
    confirmed = (
        update(_orders)
        .where(_orders.c.id == bindparam("b_order_id"), _orders.c.status == "pending")
        .values(
            status="confirmed",
            currency=bindparam("b_currency"),
            total=bindparam("b_total"),
            updated_at=func.now(),
        )
        .returning(*(_orders.c[column.key] for column in _ORDER_COLUMNS))
        .cte("confirmed")
    )
    prices = (
        func.unnest(
            bindparam("b_product_ids", type_=_UUIDS),
            bindparam("b_names", type_=ARRAY(String())),
            bindparam("b_unit_prices", type_=ARRAY(Numeric(12, 2))),
        )
        .table_valued(
            column("product_id", Uuid()),
            column("name", String()),
            column("unit_price", Numeric(12, 2)),
        )
        .render_derived(name="price")
    )
    priced = (
        update(_items)
        .where(_items.c.order_id == confirmed.c.id, _items.c.product_id == prices.c.product_id)
        .values(name=prices.c.name, unit_price=prices.c.unit_price)
        .returning(
            _items.c.position,
            _items.c.product_id,
            _items.c.quantity,
            _items.c.name,
            _items.c.unit_price,
        )
        .cte("priced")
    )
    timestamps = func.jsonb_build_object(
        "created_at",
        _utc_iso(confirmed.c.created_at),
        "updated_at",
        _utc_iso(confirmed.c.updated_at),
    )
    answered = (
        update(_keys)
        .where(_keys.c.order_id == confirmed.c.id)
        .values(
            response_status=201,
            response_body=bindparam("b_body", type_=JSONB()).op("||")(timestamps),
        )
        .cte("answered")
    )
    return (
        select(
            *(confirmed.c[column.key] for column in _ORDER_COLUMNS),
            priced.c.product_id,
            priced.c.quantity,
            priced.c.name.label("item_name"),
            priced.c.unit_price,
        )
        .select_from(confirmed.join(priced, true()))
        .add_cte(answered)
        .order_by(priced.c.position)
    )


_CONFIRMATION = _confirmation_statement()


async def confirm_order(
    connection: AsyncConnection,
    *,
    order_id: uuid.UUID,
    currency: str,
    total: Decimal,
    priced_items: Sequence[PricedItem],
    answer: dict[str, Any],
) -> OrderRecord | None:
    """Move a ``pending`` order to ``confirmed`` with the catalog's prices, store ``answer``
    (the ``201`` body without ``created_at`` and ``updated_at``) with its key, and return the
    order; None (and nothing written) if it was not pending."""
    rows = (
        await connection.execute(
            _CONFIRMATION,
            {
                "b_order_id": order_id,
                "b_currency": currency,
                "b_total": total,
                "b_product_ids": [item.product_id for item in priced_items],
                "b_names": [item.name for item in priced_items],
                "b_unit_prices": [item.unit_price for item in priced_items],
                "b_body": answer,
            },
        )
    ).all()
    if not rows:
        return None
    items = tuple(
        ItemRecord(row.product_id, row.quantity, row.item_name, row.unit_price) for row in rows
    )
    return _record(rows[0], items)


async def fail_pending_order(connection: AsyncConnection, *, order_id: uuid.UUID) -> bool:
    """Move a ``pending`` order to ``failed``, marking its reservation for release."""
    failed = await connection.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == "pending")
        .values(status="failed", release_pending=True, updated_at=func.now())
        .returning(Order.id)
    )
    return failed.first() is not None


async def cancel_confirmed_order(
    connection: AsyncConnection, *, order_id: uuid.UUID, owner_id: str | None
) -> bool:
    """Move a visible ``confirmed`` order to ``cancelled``, marking its stock for release."""
    cancelled = await connection.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == "confirmed", _visible_to(owner_id))
        .values(status="cancelled", release_pending=True, updated_at=func.now())
        .returning(Order.id)
    )
    return cancelled.first() is not None


async def move_status(
    connection: AsyncConnection, *, order_id: uuid.UUID, from_status: str, to_status: str
) -> bool:
    """Change the status only when it is ``from_status`` now (one conditional statement)."""
    moved = await connection.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == from_status)
        .values(status=to_status, updated_at=func.now())
        .returning(Order.id)
    )
    return moved.first() is not None


async def clear_release_marker(connection: AsyncConnection, *, order_id: uuid.UUID) -> None:
    """Record that the order's reservation has been released at the catalog."""
    await connection.execute(
        update(Order).where(Order.id == order_id).values(release_pending=False)
    )


async def lock_stale_pending_order(
    connection: AsyncConnection, *, max_age: timedelta, skip: Collection[uuid.UUID]
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
    rows = (await connection.execute(statement)).all()
    records = await _with_items(connection, rows)
    return records[0] if records else None


async def lock_release_pending_order(
    connection: AsyncConnection, *, skip: Collection[uuid.UUID]
) -> uuid.UUID | None:
    """Lock one order whose reservation still has to be released, skipping rows others hold."""
    statement = (
        select(Order.id).where(Order.release_pending).limit(1).with_for_update(skip_locked=True)
    )
    if skip:
        statement = statement.where(Order.id.not_in(skip))
    return (await connection.execute(statement)).scalar_one_or_none()
