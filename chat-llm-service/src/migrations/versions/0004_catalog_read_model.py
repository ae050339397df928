"""The catalog's read model: its products (full-text and trigram searchable) and the fill state.

``pg_trgm`` is a trusted extension (PostgreSQL 13+): the database's owner may create it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As app.db.tables.SEARCH_VECTOR_SQL was when this revision was written.
SEARCH_VECTOR_SQL = (
    "setweight(to_tsvector('english'::regconfig, name), 'A') || "
    "setweight(to_tsvector('english'::regconfig, sku), 'B') || "
    "setweight(to_tsvector('english'::regconfig, category), 'B') || "
    "setweight(to_tsvector('english'::regconfig, description), 'C')"
)


def upgrade() -> None:
    """Create the extension, the products and the state table."""
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "catalog_products",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("price", sa.Numeric(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("stock_available", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "search",
            postgresql.TSVECTOR(),
            sa.Computed(SEARCH_VECTOR_SQL, persisted=True),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_products")),
    )
    op.create_index(
        "ix_catalog_products_search",
        "catalog_products",
        ["search"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_catalog_products_name_trgm",
        "catalog_products",
        ["name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_table(
        "read_model_state",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "filled_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_read_model_state")),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("read_model_state")
    op.drop_index("ix_catalog_products_name_trgm", table_name="catalog_products")
    op.drop_index("ix_catalog_products_search", table_name="catalog_products")
    op.drop_table("catalog_products")
    op.execute("DROP EXTENSION IF EXISTS pg_trgm")
