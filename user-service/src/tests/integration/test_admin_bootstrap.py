"""The admin account is created at start-up from configuration, once, even by racing replicas."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.tables import User
from app.main import create_app
from app.models.email_address import normalize_email
from tests.conftest import make_settings
from tests.integration.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, unique_email
from tests.support.users import bearer, login, register


async def _accounts_with_email(database_url: str, email: str) -> list[str]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(User.role).where(User.email_normalized == normalize_email(email))
            )
            return [row.role for row in rows]
    finally:
        await engine.dispose()


async def test_configured_admin_exists_and_logs_in_as_admin(client: httpx.AsyncClient) -> None:
    tokens = await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)

    me = await client.get("/users/me", headers=bearer(tokens))

    assert me.json()["role"] == "admin"
    assert me.json()["email"] == ADMIN_EMAIL


async def test_replicas_starting_at_once_create_one_admin(database_url: str) -> None:
    email = unique_email("admin")
    apps: list[FastAPI] = [
        create_app(
            make_settings(database_url=database_url, admin_email=email, admin_password=PASSWORD)
        )
        for _ in range(3)
    ]

    async with AsyncExitStack() as stack:
        await asyncio.gather(
            *(stack.enter_async_context(app.router.lifespan_context(app)) for app in apps)
        )

    assert await _accounts_with_email(database_url, email) == ["admin"]


async def test_customer_holding_the_admin_email_is_not_promoted(
    committing_client: httpx.AsyncClient, database_url: str
) -> None:
    email = unique_email("squatter")
    await register(committing_client, email=email)
    app = create_app(
        make_settings(database_url=database_url, admin_email=email, admin_password=PASSWORD)
    )

    async with app.router.lifespan_context(app):
        pass

    assert await _accounts_with_email(database_url, email) == ["customer"]


async def test_no_admin_is_created_without_configuration(database_url: str) -> None:
    engine = create_async_engine(database_url)
    app = create_app(make_settings(database_url=database_url))
    try:
        async with engine.connect() as connection:
            before = await connection.scalar(select(func.count()).select_from(User))
        async with app.router.lifespan_context(app):
            pass
        async with engine.connect() as connection:
            after = await connection.scalar(select(func.count()).select_from(User))
    finally:
        await engine.dispose()

    assert before == after
