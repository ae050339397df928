"""Every query on reservations and on the stock they hold.

Lock order, the same everywhere so that concurrent transactions cannot deadlock: first the
reservation row(s), then the product rows in ascending id order (``lock_products``).

The statements are built once, with bind parameters: SQLAlchemy then computes each one's cache
key once instead of on every call (that, and building the statement, was about a tenth of the
CPU of a reservation).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

from sqlalchemy import (
    Integer,
    Interval,
    Numeric,
    String,
    Table,
    Uuid,
    any_,
    bindparam,
    column,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.base import AnyRow
from app.db.product_repository import PRODUCT_COLUMNS
from app.db.tables import Product, Reservation, ReservationItem

__all__ = [
    "fetch_items",
    "fetch_reservation",
    "hold_items",
    "insert_reservation",
    "lock_expired_reservations",
    "lock_products",
    "lock_reservation_with_items",
    "move_stock",
]

products = cast(Table, Product.__table__)
reservations = cast(Table, Reservation.__table__)
items = cast(Table, ReservationItem.__table__)

# What a statement that moves stock returns of each product it changed: its API representation
# after the change (for the catalog.product.updated event) and whether it is still live.
_CHANGED_PRODUCT = (*PRODUCT_COLUMNS, products.c.deleted_at.is_(None).label("is_live"))

_UUIDS = ARRAY(Uuid)
_INTS = ARRAY(Integer)
_RESERVATION_COLUMNS = (
    reservations.c.id,
    reservations.c.status,
    reservations.c.expires_at,
    (reservations.c.expires_at <= func.now()).label("is_expired"),
)


_INSERT_RESERVATION = (
    pg_insert(reservations)
    .values(
        id=bindparam("reservation_id", type_=Uuid()),
        status=bindparam("status", type_=String()),
        expires_at=func.now() + bindparam("ttl", type_=Interval()),
    )
    .on_conflict_do_nothing(index_elements=[reservations.c.id])
    .returning(reservations.c.expires_at)
)
_FETCH_RESERVATION = select(*_RESERVATION_COLUMNS).where(
    reservations.c.id == bindparam("reservation_id", type_=Uuid())
)
_ITEM_COLUMNS = (
    items.c.product_id,
    items.c.name,
    items.c.unit_price,
    items.c.currency,
    items.c.quantity,
)
# The reservation (locked) with its items in request order: one round trip instead of two. Only
# the reservation row is locked (``FOR UPDATE OF``); its items never change.
_LOCK_RESERVATION_WITH_ITEMS = (
    select(*_RESERVATION_COLUMNS, *_ITEM_COLUMNS)
    .join_from(reservations, items, items.c.reservation_id == reservations.c.id, isouter=True)
    .where(reservations.c.id == bindparam("reservation_id", type_=Uuid()))
    .order_by(items.c.position)
    .with_for_update(of=reservations)
)
_FETCH_ITEMS = (
    select(items.c.reservation_id, *_ITEM_COLUMNS)
    .where(items.c.reservation_id == any_(bindparam("ids", type_=_UUIDS)))
    .order_by(items.c.reservation_id, items.c.position)
)
_LOCK_PRODUCTS = (
    select(
        products.c.id,
        products.c.name,
        products.c.price,
        products.c.currency,
        products.c.stock,
        products.c.held,
    )
    .where(products.c.id == any_(bindparam("ids", type_=_UUIDS)))
    .order_by(products.c.id)
    .with_for_update()
)
_LOCK_LIVE_PRODUCTS = _LOCK_PRODUCTS.where(products.c.deleted_at.is_(None))
_DELTA = (
    func.unnest(
        bindparam("ids", type_=_UUIDS),
        bindparam("stock_deltas", type_=_INTS),
        bindparam("held_deltas", type_=_INTS),
    )
    .table_valued(
        column("product_id", Uuid),
        column("stock_delta", Integer),
        column("held_delta", Integer),
    )
    .render_derived(name="delta")
)
_ADJUST_STOCK = (
    update(products)
    .where(products.c.id == _DELTA.c.product_id)
    .values(
        stock=products.c.stock + _DELTA.c.stock_delta,
        held=products.c.held + _DELTA.c.held_delta,
    )
)
# A new reservation's items are stored and their quantities held in one statement (the products
# are locked already): the items' INSERT is a data-modifying CTE whose rows the UPDATE adds.
_ADDED_ITEMS = (
    insert(items)
    .from_select(
        ["reservation_id", "position", "product_id", "quantity", "name", "unit_price", "currency"],
        select(
            bindparam("reservation_id", type_=Uuid()),
            column("position", Integer),
            column("product_id", Uuid),
            column("quantity", Integer),
            column("name", String),
            column("unit_price", Numeric),
            column("currency", String),
        ).select_from(
            func.unnest(
                bindparam("positions", type_=_INTS),
                bindparam("ids", type_=_UUIDS),
                bindparam("quantities", type_=_INTS),
                bindparam("names", type_=ARRAY(String)),
                bindparam("unit_prices", type_=ARRAY(Numeric)),
                bindparam("currencies", type_=ARRAY(String)),
            )
            .table_valued("position", "product_id", "quantity", "name", "unit_price", "currency")
            .render_derived(name="item")
        ),
    )
    .returning(items.c.product_id, items.c.quantity)
    .cte("added")
)
_HOLD_ITEMS = (
    update(products)
    .where(products.c.id == _ADDED_ITEMS.c.product_id)
    .values(held=products.c.held + _ADDED_ITEMS.c.quantity)
    .returning(*_CHANGED_PRODUCT)
)
# The same for a reservation committed as it is made: the quantities leave stock at once (sold),
# never passing through held.
_SELL_ITEMS = (
    update(products)
    .where(products.c.id == _ADDED_ITEMS.c.product_id)
    .values(stock=products.c.stock - _ADDED_ITEMS.c.quantity)
    .returning(*_CHANGED_PRODUCT)
)
# Settling moves stock and status in one statement: ``locked`` locks the products in ascending
# id order (MATERIALIZED, so it is a scan of its own; ``FOR UPDATE`` locks the rows as the sort
# returns them) and the UPDATE changes only rows it returned, so every product lock this
# statement takes is taken in the documented order; the reservations' UPDATE (rows this
# transaction locked first) is a data-modifying CTE.
_LOCKED_PRODUCTS = (
    select(products.c.id)
    .where(products.c.id == any_(bindparam("ids", type_=_UUIDS)))
    .order_by(products.c.id)
    .with_for_update()
    .cte("locked")
    .prefix_with("MATERIALIZED")
)
_SET_STATUS = (
    update(reservations)
    .where(reservations.c.id == any_(bindparam("reservation_ids", type_=_UUIDS)))
    .values(status=bindparam("status", type_=String()), updated_at=func.now())
)
_MOVE_STOCK = _ADJUST_STOCK.where(products.c.id.in_(select(_LOCKED_PRODUCTS.c.id))).add_cte(
    _SET_STATUS.cte("moved")
)
_MOVE_STOCK_RETURNING = _MOVE_STOCK.returning(*_CHANGED_PRODUCT)


async def insert_reservation(
    connection: AsyncConnection, *, reservation_id: UUID, ttl_seconds: int, status: str
) -> datetime | None:
    """Create a reservation in ``status`` (held, or committed in one step) and return its
    expiry; None when the id already exists.

    A concurrent insert of the same id waits here until the first transaction ends.
    """
    parameters = {
        "reservation_id": reservation_id,
        "ttl": timedelta(seconds=ttl_seconds),
        "status": status,
    }
    expires_at: datetime | None = (
        await connection.execute(_INSERT_RESERVATION, parameters)
    ).scalar_one_or_none()
    return expires_at


async def fetch_reservation(connection: AsyncConnection, *, reservation_id: UUID) -> AnyRow | None:
    """The reservation with this id (without a lock)."""
    parameters = {"reservation_id": reservation_id}
    return (await connection.execute(_FETCH_RESERVATION, parameters)).first()


async def lock_reservation_with_items(
    connection: AsyncConnection, *, reservation_id: UUID
) -> tuple[AnyRow | None, Sequence[AnyRow]]:
    """The reservation with this id, locked until the transaction ends, and its items in request
    order; ``(None, [])`` when there is none."""
    parameters = {"reservation_id": reservation_id}
    rows = (await connection.execute(_LOCK_RESERVATION_WITH_ITEMS, parameters)).all()
    if not rows:
        return None, []
    return rows[0], [row for row in rows if row.product_id is not None]


async def lock_expired_reservations(connection: AsyncConnection, *, limit: int) -> list[UUID]:
    """Lock up to ``limit`` held reservations past their expiry, skipping rows others hold.

    ``SKIP LOCKED`` lets several replicas sweep at once without waiting on (or double-releasing)
    each other's batches.
    """
    statement = (
        select(reservations.c.id)
        .where(reservations.c.status == "held", reservations.c.expires_at <= func.now())
        .order_by(reservations.c.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await connection.execute(statement)).scalars())


async def fetch_items(
    connection: AsyncConnection, *, reservation_ids: Sequence[UUID]
) -> Sequence[AnyRow]:
    """The items of these reservations, each reservation's in the order they were requested."""
    return (await connection.execute(_FETCH_ITEMS, {"ids": list(reservation_ids)})).all()


async def hold_items(
    connection: AsyncConnection,
    *,
    reservation_id: UUID,
    rows: Sequence[dict[str, Any]],
    sell: bool,
) -> Sequence[AnyRow]:
    """Store the items of a new reservation (``rows`` in request order: product_id, quantity,
    name, unit_price, currency) and hold their quantities on the products this transaction
    has locked (or, with ``sell``, take them from stock), in one statement; return those
    products as they are now (``PRODUCT_COLUMNS`` and ``is_live``)."""
    parameters = {
        "reservation_id": reservation_id,
        "positions": list(range(len(rows))),
        "ids": [row["product_id"] for row in rows],
        "quantities": [row["quantity"] for row in rows],
        "names": [row["name"] for row in rows],
        "unit_prices": [row["unit_price"] for row in rows],
        "currencies": [row["currency"] for row in rows],
    }
    return (await connection.execute(_SELL_ITEMS if sell else _HOLD_ITEMS, parameters)).all()


async def lock_products(
    connection: AsyncConnection, *, product_ids: Iterable[UUID], live_only: bool
) -> Sequence[AnyRow]:
    """Lock these products in ascending id order and return their stock, held, name and price."""
    statement = _LOCK_LIVE_PRODUCTS if live_only else _LOCK_PRODUCTS
    return (await connection.execute(statement, {"ids": sorted(set(product_ids))})).all()


async def move_stock(
    connection: AsyncConnection,
    *,
    changes: Sequence[tuple[UUID, int, int]],
    reservation_ids: Sequence[UUID],
    status: str,
    returning: bool,
) -> Sequence[AnyRow]:
    """Move these (locked) reservations to ``status`` and add ``(product_id, stock_delta,
    held_delta)`` to their products, locking those in ascending id order: one statement.

    With ``returning``, return the changed products as they are now (``PRODUCT_COLUMNS`` and
    ``is_live``); else nothing (the caller has no use for them, and their rows cost CPU).
    """
    parameters: dict[str, Any] = {"reservation_ids": list(reservation_ids), "status": status}
    if not changes:
        await connection.execute(_SET_STATUS, parameters)
        return []
    ids, stock_deltas, held_deltas = zip(*changes, strict=True)
    parameters |= {
        "ids": list(ids),
        "stock_deltas": list(stock_deltas),
        "held_deltas": list(held_deltas),
    }
    if not returning:
        await connection.execute(_MOVE_STOCK, parameters)
        return []
    return (await connection.execute(_MOVE_STOCK_RETURNING, parameters)).all()
