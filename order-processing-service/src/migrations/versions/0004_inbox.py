"""The events' inbox and consumed versions (common-libs' inbox schema), for the consumer of
``users.user.deleted`` that erases a deleted user's shipping addresses.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op
from common_libs.events.schema import create_inbox_tables, drop_inbox_tables

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``inbox`` and ``consumed_versions``."""
    create_inbox_tables(op)


def downgrade() -> None:
    """Drop them."""
    drop_inbox_tables(op)
