"""The body of every service's Alembic ``env.py`` (install ``common-libs[db]``).

A service's ``migrations/env.py`` is then::

    from common_libs.migrations import run_migrations

    from app.config import get_settings
    from app.db.tables import Base

    run_migrations(
        Base.metadata, default_url=lambda: get_settings().database_url.get_secret_value()
    )

Tests point Alembic elsewhere with ``config.attributes["database_url"]`` and keep pytest's logging
with ``config.attributes["configure_logger"] = False`` (see :func:`alembic_config`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from logging.config import fileConfig
from pathlib import Path

from alembic import context
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

__all__ = ["alembic_config", "run_migrations"]


def alembic_config(ini_path: str | Path, database_url: str) -> Config:
    """Alembic's configuration from ``ini_path``, pointed at ``database_url``, logging untouched."""
    config = Config(str(ini_path))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


def run_migrations(metadata: MetaData, *, default_url: Callable[[], str]) -> None:
    """Run the migrations Alembic asked for (online on asyncpg, or offline as SQL text).

    The URL is ``config.attributes["database_url"]`` when a caller set one, else ``default_url()``
    (the service's settings), read only then so that tests need no environment.
    """
    config = context.config
    if config.config_file_name is not None and config.attributes.get("configure_logger", True):
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    url = str(config.attributes.get("database_url") or default_url())
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(_run_online(url, metadata))


def _run(connection: Connection, metadata: MetaData) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str, metadata: MetaData) -> None:
    # NullPool: a migration run is one connection, closed with the run.
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run, metadata)
    finally:
        await engine.dispose()
