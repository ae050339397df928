"""The service's tables (SQLAlchemy 2 ``Mapped`` classes); Alembic migrations must match them."""

from __future__ import annotations

import uuid
from datetime import datetime

from common_libs.events.schema import add_outbox_tables
from common_libs.ratelimit import add_rate_limit_table
from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, LargeBinary, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base

__all__ = ["Base", "RefreshToken", "User"]

# ``outbox`` and ``event_versions`` (common-libs' events): the events written with each change,
# until the relay has them acknowledged by the broker. Migration 0003 creates them.
add_outbox_tables(Base.metadata)
# ``rate_limit_counters`` (common-libs' rate limits): the failed logins of each username in the
# current window. Migration 0004 creates it.
add_rate_limit_table(Base.metadata)


class User(Base):
    """An account; ``email_normalized`` (unique) makes emails unique case-insensitively."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('customer', 'admin')", name="role"),
        # The keyset of GET /users: (created_at, id), walked newest first.
        Index("ix_users_created_at_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    email_normalized: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RefreshToken(Base):
    """One refresh token, stored as its SHA-256; tokens rotated from one login share a family."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        Index("ix_refresh_tokens_family_id", "family_id"),
        Index("ix_refresh_tokens_user_id", "user_id"),
        Index("ix_refresh_tokens_expires_at", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    family_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
