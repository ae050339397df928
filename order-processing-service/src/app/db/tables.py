"""The service's tables (SQLAlchemy 2 ``Mapped`` classes), the events' outbox and inbox tables and
the rate limits' counters (from common-libs); Alembic migrations must match them."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from common_libs.events.schema import add_inbox_tables, add_outbox_tables
from common_libs.ratelimit import add_rate_limit_table
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    UniqueConstraint,
    Uuid,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base

__all__ = ["ORDER_STATUSES", "Base", "IdempotencyKey", "Order", "OrderItem"]

ORDER_STATUSES = ("pending", "confirmed", "failed", "cancelled", "shipped", "delivered")
_STATUS_LIST = ", ".join(f"'{status}'" for status in ORDER_STATUSES)


class Order(Base):
    """An order; ``currency`` and ``total`` are known once the catalog has priced it."""

    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str | None] = mapped_column(String(3))
    total: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # Durable marker: the reservation must still be released at the catalog.
    release_pending: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_LIST})", name="status_known"),
        CheckConstraint("total IS NULL OR total >= 0", name="total_not_negative"),
        CheckConstraint(
            "status IN ('pending', 'failed') OR (total IS NOT NULL AND currency IS NOT NULL)",
            name="priced_once_confirmed",
        ),
        Index("ix_orders_user_id_created_at_id", "user_id", "created_at", "id"),
        Index("ix_orders_created_at_id", "created_at", "id"),
        Index(
            "ix_orders_pending_created_at",
            "created_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_orders_release_pending", "id", postgresql_where=text("release_pending")),
    )


class OrderItem(Base):
    """One line of an order; ``name`` and ``unit_price`` come from the catalog's reservation."""

    __tablename__ = "order_items"

    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    quantity: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(200))
    unit_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))

    __table_args__ = (
        CheckConstraint("quantity BETWEEN 1 AND 100", name="quantity_in_range"),
        CheckConstraint("unit_price IS NULL OR unit_price >= 0", name="unit_price_not_negative"),
        UniqueConstraint("order_id", "product_id"),
    )


class IdempotencyKey(Base):
    """A claimed ``Idempotency-Key``: the request's hash, its order and, once final, the answer."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    # Deferred: the claim is inserted before its order, in the same transaction.
    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid,
        ForeignKey("orders.id", ondelete="CASCADE", deferrable=True, initially="DEFERRED"),
        unique=True,
    )
    response_status: Mapped[int | None] = mapped_column(SmallInteger)
    # none_as_null: Python None is SQL NULL here, never the JSON value null.
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(
            "(response_status IS NULL) = (response_body IS NULL)", name="response_complete"
        ),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )


# ``outbox`` and ``event_versions``: the events written with each status change (app/events.py).
add_outbox_tables(Base.metadata)
# ``inbox`` and ``consumed_versions``: the events consumed (``users.user.deleted``, app/events.py).
add_inbox_tables(Base.metadata)
# ``rate_limit_counters``: the orders each user placed in the current window (POST /orders).
add_rate_limit_table(Base.metadata)
