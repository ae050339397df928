"""The Alembic history and the SQLAlchemy models describe the same schema."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from common_libs.testing import PostgresServer, create_database
from sqlalchemy import CheckConstraint, Connection, Table, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import tables
from tests.integration.conftest import alembic_config


async def _current_revision(database_url: str) -> str | None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


async def test_migrated_schema_matches_models(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync), tables.Base.metadata
                )
            )
    finally:
        await engine.dispose()

    assert differences == []


def test_migrations_downgrade_to_base_and_upgrade_again(postgres_server: PostgresServer) -> None:
    url = create_database(postgres_server, "catalog_service_migrations")
    config = alembic_config(url)
    head = ScriptDirectory.from_config(config).get_current_head()

    command.upgrade(config, "head")
    assert asyncio.run(_current_revision(url)) == head

    command.downgrade(config, "base")
    assert asyncio.run(_current_revision(url)) is None

    command.upgrade(config, "head")
    assert asyncio.run(_current_revision(url)) == head


def _declared(table: Table) -> tuple[set[str], set[tuple[str, bool, bool]]]:
    """Check constraint names and (index name, unique, partial) as the models declare them."""
    checks = {
        str(constraint.name)
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }
    indexes = {
        (
            str(index.name),
            bool(index.unique),
            index.dialect_options["postgresql"]["where"] is not None,
        )
        for index in table.indexes
    }
    return checks, indexes


def _migrated(sync: Connection, name: str) -> tuple[set[str], set[tuple[str, bool, bool]]]:
    inspector = inspect(sync)
    checks = {str(check["name"]) for check in inspector.get_check_constraints(name)}
    indexes = {
        (
            str(index["name"]),
            bool(index["unique"]),
            bool(index.get("dialect_options", {}).get("postgresql_where")),
        )
        for index in inspector.get_indexes(name)
    }
    return checks, indexes


async def test_migrated_checks_and_indexes_match_models(database_url: str) -> None:
    # compare_metadata leaves CHECK constraints and partial-index predicates out.
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            for table in tables.Base.metadata.sorted_tables:
                migrated = await connection.run_sync(_migrated, table.name)
                assert migrated == _declared(table), table.name
    finally:
        await engine.dispose()
