"""The statements that settle a ``pending`` order: its confirmation with the stored answer, its
failure, and the reconciler's row locks; and the release marker of a failed or cancelled order.

The confirmation and the failure are each one statement built once (so that its cache key is
computed once) that returns the settled order with its lines, from which the caller writes the
order's event in the same transaction. The key's claim with the ``pending`` order, the other
statement of a placement, is in :mod:`app.db.idempotency_repository`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Numeric, String, Table, Uuid, bindparam, column, func, select, true, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import idempotency_repository
from app.db.order_repository import (
    ORDER_COLUMNS,
    OrderRecord,
    PricedItem,
    order_from_rows,
    select_changed_order,
    with_items,
)
from app.db.tables import IdempotencyKey, Order, OrderItem

__all__ = [
    "clear_release_marker",
    "confirm_order",
    "fail_pending_order",
    "lock_release_pending_order",
    "lock_stale_pending_order",
]

_UUIDS = ARRAY(Uuid())
_orders = cast(Table, Order.__table__)
_items = cast(Table, OrderItem.__table__)
_keys = cast(Table, IdempotencyKey.__table__)


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
        .returning(*(_orders.c[column.key] for column in ORDER_COLUMNS))
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
            *(confirmed.c[column.key] for column in ORDER_COLUMNS),
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
    result = await connection.execute(
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
    return order_from_rows(result.mappings().all())


def _failure_statement() -> Any:
    """Fail a ``pending`` order and mark it for release; returns it with its lines (unpriced)."""
    failed = (
        update(_orders)
        .where(_orders.c.id == bindparam("b_order_id"), _orders.c.status == "pending")
        .values(status="failed", release_pending=True, updated_at=func.now())
        .returning(*(_orders.c[column.key] for column in ORDER_COLUMNS))
        .cte("failed")
    )
    return select_changed_order(failed)


_FAILURE = _failure_statement()


async def fail_pending_order(
    connection: AsyncConnection,
    *,
    order_id: uuid.UUID,
    refusal: tuple[int, dict[str, Any]] | None,
) -> OrderRecord | None:
    """Fail a ``pending`` order (marked for release) and store its ``refusal`` (status, body)
    with its key, or drop the key when there is none; the failed order, or None (nothing
    written) if it was not pending."""
    result = await connection.execute(_FAILURE, {"b_order_id": order_id})
    failed = order_from_rows(result.mappings().all())
    if failed is None:
        return None
    if refusal is None:
        await idempotency_repository.drop_key(connection, order_id=order_id)
    else:
        status, body = refusal
        await idempotency_repository.store_response(
            connection, order_id=order_id, status=status, body=body
        )
    return failed


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
        select(*ORDER_COLUMNS)
        .where(Order.status == "pending", Order.created_at < func.now() - max_age)
        .order_by(Order.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if skip:
        statement = statement.where(Order.id.not_in(skip))
    rows = (await connection.execute(statement)).mappings().all()
    records = await with_items(connection, rows)
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
