"""The pool replaces a connection the server dropped while it sat idle, before anyone uses it."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text

from app.db.session import create_engine
from tests.conftest import make_settings


async def test_idle_connection_killed_by_the_server_is_replaced_before_use(
    database_url: str, app: FastAPI
) -> None:
    settings = make_settings(
        database_url=database_url,
        database_pool_size=1,
        database_max_overflow=0,
        database_idle_ping_seconds=0,
    )
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            first_pid = await connection.scalar(text("SELECT pg_backend_pid()"))
        async with app.state.engine.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid})

        async with engine.connect() as connection:
            second_pid = await connection.scalar(text("SELECT pg_backend_pid()"))
    finally:
        await engine.dispose()

    assert second_pid != first_pid
