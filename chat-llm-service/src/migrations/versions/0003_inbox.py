"""The event consumer's tables: ``inbox`` and ``consumed_versions`` (common-libs' schema).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op
from common_libs.events.schema import create_inbox_tables, drop_inbox_tables

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the inbox tables."""
    create_inbox_tables(op)


def downgrade() -> None:
    """Drop them."""
    drop_inbox_tables(op)
