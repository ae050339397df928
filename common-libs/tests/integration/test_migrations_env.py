"""``run_migrations`` as a service's ``env.py`` uses it, on a small Alembic project of its own."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from common_libs.migrations import alembic_config
from common_libs.testing import PostgresServer, create_database
from common_libs.testing.db_checks import check_migrations_round_trip, create_migrated_database

ENV = """
import os

from sqlalchemy import Column, MetaData, Table, Text

from common_libs.migrations import run_migrations

metadata = MetaData()
Table("notes", metadata, Column("body", Text, nullable=False))

run_migrations(metadata, default_url=lambda: os.environ["NOTES_DATABASE_URL"])
"""

REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table("notes", sa.Column("body", sa.Text(), nullable=False))


def downgrade() -> None:
    op.drop_table("notes")
"""

INI = """
[alembic]
script_location = %(here)s/migrations

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = generic

[formatter_generic]
format = %(levelname)s %(message)s
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Alembic project whose env.py is the three lines every service's is."""
    root = tmp_path_factory.mktemp("alembic-project")
    (root / "migrations" / "versions").mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(ENV)
    (root / "migrations" / "versions" / "0001_notes.py").write_text(REVISION)
    (root / "alembic.ini").write_text(INI)
    return root


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Undo what the ini file's logging configuration does to the root logger."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_online_migrations_go_up_down_and_up_again(
    project: Path, postgres_server: PostgresServer
) -> None:
    url = create_database(postgres_server, "cl_migrations_online")

    check_migrations_round_trip(alembic_config(project / "alembic.ini", url))


def test_without_a_url_from_the_caller_the_default_is_read_and_logging_configured(
    project: Path,
    postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
    root_logging: None,
) -> None:
    monkeypatch.setenv("NOTES_DATABASE_URL", create_database(postgres_server, "cl_migrations_env"))
    config = Config(str(project / "alembic.ini"))

    command.upgrade(config, "head")

    assert logging.getLogger().level == logging.WARNING
    command.downgrade(config, "base")


def test_offline_mode_writes_the_sql(project: Path) -> None:
    output = io.StringIO()
    config = Config(output_buffer=output)
    config.set_main_option("script_location", str(project / "migrations"))
    config.attributes["database_url"] = "postgresql+asyncpg://nobody@127.0.0.1:9/none"

    command.upgrade(config, "head", sql=True)

    assert "CREATE TABLE notes" in output.getvalue()


def test_a_migrated_database_is_at_the_newest_revision(
    project: Path, postgres_server: PostgresServer
) -> None:
    # A plain function, as a suite's session fixture is: the migrations run their own loop.
    url = create_migrated_database(
        postgres_server, "cl_migrated_database", alembic_ini=project / "alembic.ini"
    )

    async def revision_and_rows() -> tuple[object, object]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
                return revision, await connection.scalar(text("SELECT count(*) FROM notes"))
        finally:
            await engine.dispose()

    assert asyncio.run(revision_and_rows()) == ("0001", 0)
