"""Reading orders, the moves of a settled order (cancel; the admin's ship and deliver), and the
erasure of a deleted user's shipping addresses.

SQLAlchemy Core statements on the mapped tables, but for the list (the hottest read), which asyncpg
runs itself. The records and the row readers defined here are shared with the statements that
create and settle an order: the key's claim with the ``pending`` order
(:mod:`app.db.idempotency_repository`), its confirmation or failure and the reconciler's locks
(:mod:`app.db.settlement_repository`). A move is one statement that returns the order as
it now is, with its lines (:func:`select_changed_order`), or nothing when it did not move: the
caller writes the order's event from it in the same transaction, without reading it again.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import groupby, product
from operator import itemgetter
from typing import Any, Protocol, cast

from common_libs.db import driver_fetch
from sqlalchemy import (
    CTE,
    Select,
    Table,
    Text,
    Uuid,
    any_,
    bindparam,
    func,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from app.db.tables import IdempotencyKey, Order, OrderItem

__all__ = [
    "ERASED",
    "ERASED_ADDRESS",
    "ORDER_COLUMNS",
    "ItemRecord",
    "OrderRecord",
    "PricedItem",
    "cancel_confirmed_order",
    "erase_shipping_addresses",
    "get_order",
    "list_orders",
    "move_status",
    "order_from_rows",
    "order_record",
    "select_changed_order",
    "with_items",
]

_UUIDS = ARRAY(Uuid())
_orders = cast(Table, Order.__table__)
_items = cast(Table, OrderItem.__table__)
_keys = cast(Table, IdempotencyKey.__table__)

ERASED = "[erased]"
# What a deleted user's orders keep as their address: every field replaced, the same shape as a
# stored address (``line2`` null), and a valid ``ShippingAddress`` so the API's order stays valid.
ERASED_ADDRESS: dict[str, Any] = {
    "name": ERASED,
    "line1": ERASED,
    "line2": None,
    "city": ERASED,
    "postal_code": ERASED,
    "country": ERASED,
}
ORDER_COLUMNS = (
    Order.id,
    Order.user_id,
    Order.status,
    Order.currency,
    Order.total,
    Order.shipping_address,
    Order.created_at,
    Order.updated_at,
)
# An order line's columns as the readers name them (``item_record``).
_ITEM_COLUMNS = (
    OrderItem.product_id,
    OrderItem.quantity,
    OrderItem.name.label("item_name"),
    OrderItem.unit_price,
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


class ByName(Protocol):
    """A row read by column name: SQLAlchemy's ``.mappings()`` rows and the records asyncpg
    returns itself (the list's) alike, so every reader of an order's rows serves both."""

    def __getitem__(self, name: str, /) -> Any: ...


def _visible_to(owner_id: str | None) -> ColumnElement[bool]:
    """Rows the caller may see: their own, or every row for ``owner_id=None`` (admins)."""
    return true() if owner_id is None else Order.user_id == owner_id


async def _items_by_order(
    connection: AsyncConnection, order_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, tuple[ItemRecord, ...]]:
    if not order_ids:
        return {}
    rows = await connection.execute(
        select(OrderItem.order_id, *_ITEM_COLUMNS)
        # "= ANY(array)" keeps one cached statement for any number of ids (IN would re-render).
        .where(OrderItem.order_id == any_(bindparam("order_ids", list(order_ids), type_=_UUIDS)))
        .order_by(OrderItem.order_id, OrderItem.position)
    )
    grouped: defaultdict[uuid.UUID, list[ItemRecord]] = defaultdict(list)
    for row in rows.mappings():
        grouped[row["order_id"]].append(item_record(row))
    return {order_id: tuple(items) for order_id, items in grouped.items()}


async def with_items(connection: AsyncConnection, rows: Sequence[ByName]) -> list[OrderRecord]:
    """The records of order rows (``ORDER_COLUMNS`` by name), their items read in one query."""
    items = await _items_by_order(connection, [row["id"] for row in rows])
    return [order_record(row, items.get(row["id"], ())) for row in rows]


_ORDER_FIELDS = tuple(column.key for column in ORDER_COLUMNS)


def order_record(row: ByName, items: tuple[ItemRecord, ...]) -> OrderRecord:
    """An order row (its ``ORDER_COLUMNS`` by name) and its items."""
    return OrderRecord(**{name: row[name] for name in _ORDER_FIELDS}, items=items)


def item_record(row: ByName) -> ItemRecord:
    """An order line of a row (``_ITEM_COLUMNS`` by name)."""
    return ItemRecord(row["product_id"], row["quantity"], row["item_name"], row["unit_price"])


def order_from_rows(rows: Sequence[ByName]) -> OrderRecord | None:
    """The order of rows that each hold its columns (``ORDER_COLUMNS``) and one of its lines
    (``_ITEM_COLUMNS``), in the lines' order; None for no row."""
    return order_record(rows[0], tuple(map(item_record, rows))) if rows else None


async def get_order(
    connection: AsyncConnection, *, order_id: uuid.UUID, owner_id: str | None
) -> OrderRecord | None:
    """The order with this id when the caller may see it (``owner_id=None``: any order)."""
    result = await connection.execute(
        select(*ORDER_COLUMNS).where(Order.id == order_id, _visible_to(owner_id))
    )
    records = await with_items(connection, result.mappings().all())
    return records[0] if records else None


# ``GET /orders`` runs through asyncpg itself (common-libs' ``driver_fetch``), in one statement:
# the page of orders (on the index of (user_id, created_at, id), or of (created_at, id) for an
# admin's), joined to their lines, one row per line in the lines' order. Through SQLAlchemy, in
# two statements (the orders, then their lines), the list served half as many pages at 64
# connections (the README's Performance, item 10).
_PAGE = (
    "WITH page AS (SELECT id, user_id, status, currency, total, shipping_address, created_at,"
    " updated_at FROM orders{where} ORDER BY created_at DESC, id DESC LIMIT ${limit})"
    " SELECT page.*, line.product_id, line.quantity, line.name AS item_name, line.unit_price"
    " FROM page JOIN order_items AS line ON line.order_id = page.id"
    " ORDER BY page.created_at DESC, page.id DESC, line.position"
)


def _page_statement(*, owner: bool, status: bool, after: bool) -> str:
    """The list's statement for one combination of its filters; its arguments in this order:
    the owner, the status, the keyset's two values, the limit."""
    conditions: list[str] = []
    if owner:
        conditions.append(f"user_id = ${len(conditions) + 1}")
    if status:
        conditions.append(f"status = ${len(conditions) + 1}")
    count = len(conditions)
    if after:
        conditions.append(f"(created_at, id) < (${count + 1}, ${count + 2})")
        count += 2
    where = " WHERE " + " AND ".join(conditions) if conditions else ""
    return _PAGE.format(where=where, limit=count + 1)


_PAGES = {
    (owner, status, after): _page_statement(owner=owner, status=status, after=after)
    for owner, status, after in product((False, True), repeat=3)
}


async def list_orders(
    connection: AsyncConnection,
    *,
    owner_id: str | None,
    status: str | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[OrderRecord]:
    """Newest first, keyset-paginated on ``(created_at, id)``; at most ``limit`` orders. Raises
    asyncpg's errors, not SQLAlchemy's (``driver_fetch``)."""
    arguments: list[Any] = [value for value in (owner_id, status) if value is not None]
    arguments.extend(after or ())
    statement = _PAGES[owner_id is not None, status is not None, after is not None]
    rows = await driver_fetch(connection, statement, *arguments, limit)
    records = []
    for _, grouped in groupby(rows, key=itemgetter("id")):
        lines = list(grouped)
        records.append(order_record(lines[0], tuple(map(item_record, lines))))
    return records


def select_changed_order(changed: CTE) -> Select[Any]:
    """The order an ``UPDATE orders ... RETURNING`` (``ORDER_COLUMNS``) CTE changed, one row per
    line in the lines' order (read with :func:`order_from_rows`); no row when nothing changed."""
    return (
        select(*(changed.c[column.key] for column in ORDER_COLUMNS), *_ITEM_COLUMNS)
        .select_from(changed.join(_items, _items.c.order_id == changed.c.id))
        .order_by(_items.c.position)
    )


def _move(*conditions: ColumnElement[bool], **values: Any) -> Select[Any]:
    """Change the order(s) matching ``conditions``; the changed order with its lines."""
    changed = (
        update(_orders)
        .where(*conditions)
        .values(**values, updated_at=func.now())
        .returning(*(_orders.c[column.key] for column in ORDER_COLUMNS))
        .cte("changed")
    )
    return select_changed_order(changed)


async def cancel_confirmed_order(
    connection: AsyncConnection, *, order_id: uuid.UUID, owner_id: str | None
) -> OrderRecord | None:
    """Move a visible ``confirmed`` order to ``cancelled``, marking its stock for release; the
    cancelled order, or None (nothing written) when it was not a visible confirmed order."""
    visible = true() if owner_id is None else _orders.c.user_id == owner_id
    statement = _move(
        _orders.c.id == order_id,
        _orders.c.status == "confirmed",
        visible,
        status="cancelled",
        release_pending=True,
    )
    return order_from_rows((await connection.execute(statement)).mappings().all())


async def move_status(
    connection: AsyncConnection, *, order_id: uuid.UUID, from_status: str, to_status: str
) -> OrderRecord | None:
    """Change the status only when it is ``from_status`` now (one conditional statement); the
    moved order, or None (nothing written) when it was not."""
    statement = _move(_orders.c.id == order_id, _orders.c.status == from_status, status=to_status)
    return order_from_rows((await connection.execute(statement)).mappings().all())


_ADDRESS_PATH = bindparam("address_path", ["shipping_address"], type_=ARRAY(Text()))


def _erasure_statement() -> Select[Any]:
    marker = bindparam("marker", ERASED_ADDRESS, type_=JSONB())
    # Not named like a column: an UPDATE would add ``SET user_id = :user_id`` for such a key.
    user_id = bindparam("erased_user_id", type_=_orders.c.user_id.type)
    erased_orders = (
        update(_orders)
        .where(_orders.c.user_id == user_id, _orders.c.shipping_address != marker)
        .values(shipping_address=marker)
        .returning(_orders.c.id)
        .cte("erased_orders")
    )
    # The stored 201 answer (replayed for a retried POST /orders) is a copy of the order.
    stored_answer = _keys.c.response_body
    erased_answers = (
        update(_keys)
        .where(
            _keys.c.user_id == user_id,
            stored_answer.has_key("shipping_address"),
            stored_answer["shipping_address"] != marker,
        )
        .values(response_body=func.jsonb_set(stored_answer, _ADDRESS_PATH, marker))
        .cte("erased_answers")
    )
    return select(func.count()).select_from(erased_orders).add_cte(erased_answers)


_ERASURE = _erasure_statement()


async def erase_shipping_addresses(connection: AsyncConnection, *, user_id: str) -> int:
    """Replace the shipping address of every order of ``user_id`` (and of its stored answers) by
    ``ERASED_ADDRESS`` in one statement; how many orders changed (0 when already erased)."""
    return int(await connection.scalar(_ERASURE, {"erased_user_id": user_id}) or 0)
