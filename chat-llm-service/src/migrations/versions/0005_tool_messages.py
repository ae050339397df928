"""Tool exchanges in conversations: ``tool`` messages, an assistant message's tool calls.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the two columns and allow the ``tool`` role."""
    op.add_column("messages", sa.Column("tool_calls", postgresql.JSONB(), nullable=True))
    op.add_column("messages", sa.Column("tool_call_id", sa.String(length=200), nullable=True))
    op.drop_constraint(op.f("ck_messages_role"), "messages", type_="check")
    op.create_check_constraint(
        op.f("ck_messages_role"), "messages", "role IN ('user', 'assistant', 'tool')"
    )


def downgrade() -> None:
    """Forget the tool exchanges, then the columns."""
    op.execute("DELETE FROM messages WHERE role = 'tool' OR tool_calls IS NOT NULL")
    op.drop_constraint(op.f("ck_messages_role"), "messages", type_="check")
    op.create_check_constraint(
        op.f("ck_messages_role"), "messages", "role IN ('user', 'assistant')"
    )
    op.drop_column("messages", "tool_call_id")
    op.drop_column("messages", "tool_calls")
