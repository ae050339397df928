"""The service's tables (SQLAlchemy 2 ``Mapped`` classes); Alembic migrations must match them."""

from __future__ import annotations

from app.db.base import Base

__all__ = ["Base"]
