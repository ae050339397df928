"""The quota's holds: their admission, commits that skip the disk flush, and usage counted when a
hold was lost."""

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


async def test_the_hold_statement_skips_the_flush_for_its_own_transaction_only(
    database_url: str,
) -> None:
    # The hold is one statement, its own transaction in production; here it runs inside a
    # transaction that SQLAlchemy began, so that the setting can be read before that ends.
    settings = make_settings(
        database_url=database_url, database_pool_size=1, database_max_overflow=0
    )
    engine = create_engine(settings)
    show = text("SHOW synchronous_commit")
    user_id = f"flush-{uuid.uuid4()}"
    day = datetime.now(UTC).date()
    try:
        async with engine.begin() as connection:
            await connection.execute(text("SET synchronous_commit TO on"))
        async with engine.connect() as connection:
            before = await connection.scalar(show)  # SQLAlchemy has begun the transaction
            admitted = await usage_repository.reserve_tokens(
                connection, user_id=user_id, day=day, tokens=10, limit=100
            )
            inside = await connection.scalar(show)
            await connection.commit()
            after = await connection.scalar(show)
            await connection.rollback()
        async with engine.connect() as connection:
            too_many = await usage_repository.reserve_tokens(
                connection, user_id=user_id, day=day, tokens=91, limit=100
            )
            held = await usage_repository.reserve_tokens(
                connection, user_id=user_id, day=day, tokens=90, limit=100
            )
            refused = await usage_repository.reserve_tokens(
                connection, user_id=user_id, day=day, tokens=1, limit=100
            )
            reserved = await connection.scalar(
                text("SELECT reserved_tokens FROM daily_usage WHERE user_id = :user_id"),
                {"user_id": user_id},
            )
            await connection.rollback()
    finally:
        await engine.dispose()

    assert (before, inside, after) == ("on", "off", "on")
    # Admitted while used + reserved + the request's own tokens fit the limit, to the last one.
    assert (admitted, too_many, held, refused, reserved) == (True, False, True, False, 100)


async def test_a_hold_grows_to_the_next_call_only_while_it_fits(database_url: str) -> None:
    engine = create_engine(make_settings(database_url=database_url))
    user_id = f"resize-{uuid.uuid4()}"
    day = datetime.now(UTC).date()
    try:
        async with engine.connect() as connection:
            taken = await usage_repository.reserve_tokens(
                connection, user_id=user_id, day=day, tokens=40, limit=100
            )
            grown = await usage_repository.resize_reservation(
                connection, user_id=user_id, day=day, held=40, tokens=100, limit=100
            )
            refused = await usage_repository.resize_reservation(
                connection, user_id=user_id, day=day, held=100, tokens=101, limit=100
            )
            reserved = await connection.scalar(
                text("SELECT reserved_tokens FROM daily_usage WHERE user_id = :user_id"),
                {"user_id": user_id},
            )
            await connection.rollback()
    finally:
        await engine.dispose()

    assert (taken, grown, refused, reserved) == (True, True, False, 100)


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
