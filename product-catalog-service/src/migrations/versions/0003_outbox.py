"""The events' transactional outbox: ``outbox`` and ``event_versions`` (common-libs' schema).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op
from common_libs.events.schema import create_outbox_tables, drop_outbox_tables

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``outbox`` and ``event_versions`` (version 1 of common-libs' outbox schema)."""
    create_outbox_tables(op)


def downgrade() -> None:
    """Drop them (with any event not yet published)."""
    drop_outbox_tables(op)
