"""Every query on idempotency keys: the claim, the stored answer, the purge.

The claim inserts the ``pending`` order with it, in one statement (``place_pending_order``): the
first of the two statements of a placement (the confirmation is in
:mod:`app.db.settlement_repository`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import (
    Integer,
    Interval,
    Table,
    Uuid,
    bindparam,
    column,
    delete,
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

from app.db.tables import IdempotencyKey, Order, OrderItem

__all__ = [
    "KeyRecord",
    "drop_key",
    "get_key",
    "place_pending_order",
    "purge_expired_keys",
    "store_response",
]


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A claimed key: what was asked, for which order, and the final answer once there is one."""

    request_hash: str
    order_id: uuid.UUID
    response_status: int | None
    response_body: dict[str, Any] | None


_UUIDS = ARRAY(Uuid())
_orders = cast(Table, Order.__table__)
_items = cast(Table, OrderItem.__table__)
_keys = cast(Table, IdempotencyKey.__table__)


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


async def get_key(connection: AsyncConnection, *, user_id: str, key: str) -> KeyRecord | None:
    """The claim on ``(user_id, key)``, or None when there is none."""
    row = (
        await connection.execute(
            select(
                IdempotencyKey.request_hash,
                IdempotencyKey.order_id,
                IdempotencyKey.response_status,
                IdempotencyKey.response_body,
            ).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        )
    ).first()
    if row is None:
        return None
    return KeyRecord(row.request_hash, row.order_id, row.response_status, row.response_body)


async def store_response(
    connection: AsyncConnection, *, order_id: uuid.UUID, status: int, body: dict[str, Any]
) -> None:
    """Record the final answer of the request that created ``order_id``, for replays."""
    await connection.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.order_id == order_id)
        .values(response_status=status, response_body=body)
    )


async def drop_key(connection: AsyncConnection, *, order_id: uuid.UUID) -> None:
    """Forget the claim that created ``order_id``, so that a retry with its key starts afresh."""
    await connection.execute(delete(IdempotencyKey).where(IdempotencyKey.order_id == order_id))


async def purge_expired_keys(connection: AsyncConnection, *, limit: int) -> int:
    """Delete up to ``limit`` expired keys; returns how many went."""
    expired = (
        select(IdempotencyKey.user_id, IdempotencyKey.key)
        .where(IdempotencyKey.expires_at < func.now())
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await connection.execute(
        delete(IdempotencyKey)
        .where(tuple_(IdempotencyKey.user_id, IdempotencyKey.key).in_(expired))
        .returning(IdempotencyKey.key)
    )
    return len(result.all())
