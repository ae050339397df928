"""Every query on reservations and on the stock they hold.

Lock order, the same everywhere so that concurrent transactions cannot deadlock: first the
reservation row(s), then the product rows in ascending id order (``lock_products``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Integer, Table, Uuid, any_, bindparam, column, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.base import AnyRow
from app.db.tables import Product, Reservation, ReservationItem

__all__ = [
    "adjust_stock",
    "fetch_items",
    "fetch_reservation",
    "insert_items",
    "insert_reservation",
    "lock_expired_reservations",
    "lock_products",
    "lock_reservation",
    "set_status",
]

products = cast(Table, Product.__table__)
reservations = cast(Table, Reservation.__table__)
items = cast(Table, ReservationItem.__table__)

_UUIDS = ARRAY(Uuid)
_INTS = ARRAY(Integer)
_RESERVATION_COLUMNS = (
    reservations.c.id,
    reservations.c.status,
    reservations.c.expires_at,
    (reservations.c.expires_at <= func.now()).label("is_expired"),
)


async def insert_reservation(
    connection: AsyncConnection, *, reservation_id: UUID, ttl_seconds: int
) -> datetime | None:
    """Create a held reservation and return its expiry; None when the id already exists.

    A concurrent insert of the same id waits here until the first transaction ends.
    """
    statement = (
        pg_insert(reservations)
        .values(
            id=reservation_id,
            status="held",
            expires_at=func.now() + timedelta(seconds=ttl_seconds),
        )
        .on_conflict_do_nothing(index_elements=[reservations.c.id])
        .returning(reservations.c.expires_at)
    )
    expires_at: datetime | None = (await connection.execute(statement)).scalar_one_or_none()
    return expires_at


async def fetch_reservation(connection: AsyncConnection, *, reservation_id: UUID) -> AnyRow | None:
    """The reservation with this id (without a lock)."""
    statement = select(*_RESERVATION_COLUMNS).where(reservations.c.id == reservation_id)
    return (await connection.execute(statement)).first()


async def lock_reservation(connection: AsyncConnection, *, reservation_id: UUID) -> AnyRow | None:
    """The reservation with this id, locked until the transaction ends."""
    statement = (
        select(*_RESERVATION_COLUMNS).where(reservations.c.id == reservation_id).with_for_update()
    )
    return (await connection.execute(statement)).first()


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
    statement = (
        select(
            items.c.reservation_id,
            items.c.product_id,
            items.c.name,
            items.c.unit_price,
            items.c.currency,
            items.c.quantity,
        )
        .where(items.c.reservation_id == any_(bindparam("ids", type_=_UUIDS)))
        .order_by(items.c.reservation_id, items.c.position)
    )
    return (await connection.execute(statement, {"ids": list(reservation_ids)})).all()


async def insert_items(
    connection: AsyncConnection, *, reservation_id: UUID, rows: Sequence[dict[str, Any]]
) -> None:
    """Store the items of a new reservation (``rows`` in request order)."""
    values = [
        {**row, "reservation_id": reservation_id, "position": i} for i, row in enumerate(rows)
    ]
    await connection.execute(insert(items), values)


async def lock_products(
    connection: AsyncConnection, *, product_ids: Iterable[UUID], live_only: bool
) -> Sequence[AnyRow]:
    """Lock these products in ascending id order and return their stock, held, name and price."""
    statement = (
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
    if live_only:
        statement = statement.where(products.c.deleted_at.is_(None))
    return (await connection.execute(statement, {"ids": sorted(set(product_ids))})).all()


async def adjust_stock(
    connection: AsyncConnection, *, changes: Sequence[tuple[UUID, int, int]]
) -> None:
    """Add ``(product_id, stock_delta, held_delta)`` to products this transaction has locked."""
    if not changes:
        return
    delta = (
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
    statement = (
        update(products)
        .where(products.c.id == delta.c.product_id)
        .values(
            stock=products.c.stock + delta.c.stock_delta,
            held=products.c.held + delta.c.held_delta,
        )
    )
    ids, stock_deltas, held_deltas = zip(*changes, strict=True)
    await connection.execute(
        statement,
        {"ids": list(ids), "stock_deltas": list(stock_deltas), "held_deltas": list(held_deltas)},
    )


async def set_status(
    connection: AsyncConnection, *, reservation_ids: Sequence[UUID], status: str
) -> None:
    """Move these (locked) reservations to ``status``."""
    statement = (
        update(reservations)
        .where(reservations.c.id == any_(bindparam("ids", type_=_UUIDS)))
        .values(status=status, updated_at=func.now())
    )
    await connection.execute(statement, {"ids": list(reservation_ids)})
