"""Orders, their items, and idempotency keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Kept literal (not imported from the app) so that this revision never changes after release.
STATUSES = "'pending', 'confirmed', 'failed', 'cancelled', 'shipped', 'delivered'"


def upgrade() -> None:
    """Create orders, order_items and idempotency_keys with their constraints and indexes."""
    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("total", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("shipping_address", postgresql.JSONB(), nullable=False),
        sa.Column("release_pending", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_orders_status_known")),
        sa.CheckConstraint(
            "total IS NULL OR total >= 0", name=op.f("ck_orders_total_not_negative")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'failed') OR (total IS NOT NULL AND currency IS NOT NULL)",
            name=op.f("ck_orders_priced_once_confirmed"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
    )
    op.create_index("ix_orders_user_id_created_at_id", "orders", ["user_id", "created_at", "id"])
    op.create_index("ix_orders_created_at_id", "orders", ["created_at", "id"])
    op.create_index(
        "ix_orders_pending_created_at",
        "orders",
        ["created_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_orders_release_pending", "orders", ["id"], postgresql_where=sa.text("release_pending")
    )

    op.create_table(
        "order_items",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("unit_price", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.CheckConstraint(
            "quantity BETWEEN 1 AND 100", name=op.f("ck_order_items_quantity_in_range")
        ),
        sa.CheckConstraint(
            "unit_price IS NULL OR unit_price >= 0",
            name=op.f("ck_order_items_unit_price_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_items_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", "position", name=op.f("pk_order_items")),
        sa.UniqueConstraint("order_id", "product_id", name=op.f("uq_order_items_order_id")),
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("response_status", sa.SmallInteger(), nullable=True),
        sa.Column("response_body", postgresql.JSONB(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(response_status IS NULL) = (response_body IS NULL)",
            name=op.f("ck_idempotency_keys_response_complete"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_idempotency_keys_order_id_orders"),
            ondelete="CASCADE",
            deferrable=True,
            initially="DEFERRED",
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("order_id", name=op.f("uq_idempotency_keys_order_id")),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    """Drop the three tables (their indexes go with them)."""
    op.drop_table("idempotency_keys")
    op.drop_table("order_items")
    op.drop_table("orders")
