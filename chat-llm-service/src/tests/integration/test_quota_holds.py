"""The quota's holds: commits that skip the disk flush, and usage counted when a hold was lost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.db import usage_repository
from app.db.session import create_engine
from app.services import quota_manager
from app.services.quota_manager import Reservation
from tests.conftest import make_settings


async def test_only_the_quota_hold_commits_without_waiting_for_the_disk(database_url: str) -> None:
    # One connection, whose own default is the server's usual "on" (the test server runs "off").
    settings = make_settings(
        database_url=database_url, database_pool_size=1, database_max_overflow=0
    )
    engine = create_engine(settings)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    show = text("SHOW synchronous_commit")
    try:
        async with sessions.begin() as session:
            await session.execute(text("SET synchronous_commit TO on"))
        async with sessions.begin() as session:
            await usage_repository.skip_commit_flush(session)
            inside = await session.scalar(show)
        async with sessions.begin() as session:
            after = await session.scalar(show)
    finally:
        await engine.dispose()

    assert (inside, after) == ("off", "on")


async def test_used_tokens_are_counted_even_when_the_hold_was_forgotten(
    database_url: str,
) -> None:
    # A database crash can forget a hold committed without waiting for the disk: settling
    # must still count what the call used.
    engine = create_engine(make_settings(database_url=database_url))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    user_id = f"forgotten-{uuid.uuid4()}"
    reservation = Reservation(user_id=user_id, day=datetime.now(UTC).date(), tokens=500)
    try:
        async with sessions.begin() as session:
            await quota_manager.record_usage(
                session=session,
                reservation=reservation,
                kind="chat",
                model="gpt-4o-mini",
                conversation_id=None,
                prompt_tokens=40,
                completion_tokens=2,
                is_estimated=False,
            )
        async with sessions() as session:
            report = await quota_manager.usage_report(session=session, user_id=user_id, limit=1000)
            usage = await usage_repository.get_daily_usage(
                session, user_id=user_id, day=reservation.day
            )
    finally:
        await engine.dispose()

    assert (report.prompt_tokens, report.completion_tokens, report.total_tokens) == (40, 2, 42)
    assert usage is not None
    assert usage.reserved_tokens == 0
