"""The service's tables (SQLAlchemy 2 ``Mapped`` classes); Alembic migrations must match them."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from common_libs.events.schema import add_outbox_tables
from sqlalchemy import (
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base

__all__ = ["SEARCH_CONFIG", "Base", "Product", "Reservation", "ReservationItem"]

# The text-search configuration of the generated ``search`` column and of every query against it.
SEARCH_CONFIG = "english"
SEARCH_VECTOR_SQL = (
    f"setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, name), 'A') || "
    f"setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, description), 'B')"
)
_LIVE = text("deleted_at IS NULL")


class Product(Base):
    """A product; ``held`` is stock promised to open reservations, ``deleted_at`` a soft delete."""

    __tablename__ = "products"

    id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, server_default=text("gen_random_uuid()")
    )
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(100))
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    stock: Mapped[int] = mapped_column(Integer)
    held: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    search: Mapped[str] = mapped_column(TSVECTOR, Computed(SEARCH_VECTOR_SQL, persisted=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("held >= 0 AND held <= stock", name="held_within_stock"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso_4217"),
        # A SKU is unique among live products; a deleted product's SKU may be reused.
        Index("uq_products_sku_live", "sku", unique=True, postgresql_where=_LIVE),
        # Keyset pagination, newest first: (created_at, id) with and without a category.
        Index("ix_products_created_at_id", "created_at", "id", postgresql_where=_LIVE),
        Index(
            "ix_products_category_created_at_id",
            "category",
            "created_at",
            "id",
            postgresql_where=_LIVE,
        ),
        Index("ix_products_search", "search", postgresql_using="gin"),
    )


class Reservation(Base):
    """Stock held for a caller (an order): ``held`` until committed, released or expired."""

    __tablename__ = "reservations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("status IN ('held', 'committed', 'released')", name="status_known"),
        # The sweeper's queue: only reservations still held are indexed.
        Index(
            "ix_reservations_expires_at_held",
            "expires_at",
            postgresql_where=text("status = 'held'"),
        ),
    )


class ReservationItem(Base):
    """One product of a reservation, with the name and price it was reserved at."""

    __tablename__ = "reservation_items"

    reservation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reservations.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"), primary_key=True)
    position: Mapped[int] = mapped_column(SmallInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))

    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)


# The events' ``outbox`` and ``event_versions`` (common-libs' schema, created by migration 0003).
add_outbox_tables(Base.metadata)
