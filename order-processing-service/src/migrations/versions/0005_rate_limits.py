"""The rate limits' counters (common-libs' rate-limit schema, version 1): orders per user.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op
from common_libs.ratelimit import create_rate_limit_table, drop_rate_limit_table

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``rate_limit_counters``."""
    create_rate_limit_table(op)


def downgrade() -> None:
    """Drop it."""
    drop_rate_limit_table(op)
