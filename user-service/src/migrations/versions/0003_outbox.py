"""The events' outbox: ``outbox`` and ``event_versions`` (common-libs' events, schema 1).

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
    """Create ``outbox`` and ``event_versions``."""
    create_outbox_tables(op)


def downgrade() -> None:
    """Drop them (events not yet published are lost with them)."""
    drop_outbox_tables(op)
