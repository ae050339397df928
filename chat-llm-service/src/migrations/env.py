"""Alembic environment: the fleet's async migration runner, on this service's tables."""

from common_libs.migrations import run_migrations

from app.config import get_settings
from app.db.tables import Base

run_migrations(Base.metadata, default_url=lambda: get_settings().database_url.get_secret_value())
