"""Rate limits counted in a real PostgreSQL: exact under concurrency, per key, per window."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from types import SimpleNamespace

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common_libs.db import create_engine
from common_libs.ratelimit import (
    RateLimiter,
    RateLimitExceeded,
    RateLimitPolicy,
    create_rate_limit_table,
    drop_rate_limit_table,
    purge_expired_counters,
    start_rate_limit_purge,
)
from common_libs.testing import PostgresServer, create_database, eventually

ORDERS = RateLimitPolicy("orders", quota=10, window_seconds=60)


@pytest.fixture(scope="module")
def database_url(postgres_server: PostgresServer) -> str:
    """A database of this module's own with the counters' table, created by the migration
    helper as a service's migration does."""
    url = create_database(postgres_server, "cl_rate_limits")

    async def migrate() -> None:
        engine = create_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(
                lambda sync: create_rate_limit_table(SimpleNamespace(get_bind=lambda: sync))
            )
        await engine.dispose()

    asyncio.run(migrate())
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    pool = create_engine(database_url, pool_size=20, max_overflow=0)
    yield pool
    await pool.dispose()


@pytest.fixture
async def replica_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A second pool: another replica of the same service, counting in the same database."""
    pool = create_engine(database_url, pool_size=20, max_overflow=0)
    yield pool
    await pool.dispose()


def unique_key(request: pytest.FixtureRequest) -> str:
    return f"user-{request.node.name}"


async def test_n_plus_k_concurrent_hits_on_two_replicas_admit_exactly_n(
    engine: AsyncEngine, replica_engine: AsyncEngine, request: pytest.FixtureRequest
) -> None:
    key = unique_key(request)
    replicas = (RateLimiter(engine, ORDERS), RateLimiter(replica_engine, ORDERS))
    # Every connection open before the burst, so that the hits race in the database itself.
    await asyncio.gather(*(replica.hit("warm-up") for replica in replicas for _ in range(20)))

    decisions = await asyncio.gather(*(replicas[n % 2].hit(key) for n in range(45)))

    admitted = [decision for decision in decisions if decision.is_allowed]
    assert len(admitted) == 10
    assert sorted(decision.hits for decision in admitted) == list(range(1, 11))
    assert all(decision.hits == 11 for decision in decisions if not decision.is_allowed)
    assert {decision.remaining for decision in decisions if not decision.is_allowed} == {0}


async def test_a_key_over_its_quota_leaves_other_keys_and_policies_alone(
    engine: AsyncEngine, request: pytest.FixtureRequest
) -> None:
    key = unique_key(request)
    orders = RateLimiter(engine, RateLimitPolicy("orders", quota=2, window_seconds=60))
    logins = RateLimiter(engine, RateLimitPolicy("logins", quota=2, window_seconds=60))
    for _ in range(2):
        await orders.acquire(key)

    with pytest.raises(RateLimitExceeded) as refused:
        await orders.acquire(key, detail="Too many orders: {quota} per {window_seconds} s.")

    assert refused.value.detail == "Too many orders: 2 per 60 s."
    assert refused.value.decision.hits == 3
    assert 59 <= int(refused.value.headers["Retry-After"]) <= 60
    assert (await orders.acquire(key + "-other")).remaining == 1
    assert (await logins.acquire(key)).remaining == 1


async def test_the_window_ends_on_time_although_refused_hits_keep_coming(
    engine: AsyncEngine, request: pytest.FixtureRequest
) -> None:
    key = unique_key(request)
    limiter = RateLimiter(engine, RateLimitPolicy("short", quota=2, window_seconds=1))
    first = await limiter.hit(key)
    await limiter.hit(key)
    refused = await limiter.hit(key)
    assert not refused.is_allowed
    assert first.reset_seconds == refused.reset_seconds == 1

    # Each poll is a refused hit until the window ends: they must not push its end back.
    took = await eventually(lambda: _is_allowed(limiter, key), within=5, message="the window ends")

    assert took < 2.5
    again = await limiter.hit(key)
    assert (again.hits, again.remaining) == (2, 0)


async def _is_allowed(limiter: RateLimiter, key: str) -> bool:
    return (await limiter.hit(key)).is_allowed


async def test_reset_forgets_the_hits_of_one_key_only(
    engine: AsyncEngine, request: pytest.FixtureRequest
) -> None:
    key = unique_key(request)
    limiter = RateLimiter(engine, RateLimitPolicy("logins", quota=3, window_seconds=60))
    for _ in range(3):
        await limiter.hit(key)
        await limiter.hit(key + "-other")

    await limiter.reset(key)

    assert (await limiter.hit(key)).hits == 1
    assert (await limiter.hit(key + "-other")).hits == 4


async def test_the_table_holds_the_keys_hash_never_the_key(
    engine: AsyncEngine, request: pytest.FixtureRequest
) -> None:
    key = f"ada.{request.node.name}@example.com"
    await RateLimiter(engine, ORDERS).hit(key)

    async with engine.connect() as connection:
        stored = (
            await connection.execute(text("SELECT policy, key_hash::text FROM rate_limit_counters"))
        ).all()

    assert ("orders", "\\x" + hashlib.sha256(key.encode()).hexdigest()) in stored
    assert all(key not in row.key_hash for row in stored)


async def _rows(engine: AsyncEngine, policy: str) -> int:
    async with engine.connect() as connection:
        count: int = await connection.scalar(
            text("SELECT count(*) FROM rate_limit_counters WHERE policy = :policy"),
            {"policy": policy},
        )
    return count


async def test_the_purge_deletes_ended_windows_in_batches_and_keeps_running_ones(
    engine: AsyncEngine,
) -> None:
    ended = RateLimiter(engine, RateLimitPolicy("purge-ended", quota=1, window_seconds=1))
    running = RateLimiter(engine, RateLimitPolicy("purge-running", quota=1, window_seconds=60))
    for n in range(5):
        await ended.hit(f"key-{n}")
        await running.hit(f"key-{n}")
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE rate_limit_counters SET window_ends_at = now() - interval '1 second' "
                "WHERE policy = 'purge-ended'"
            )
        )

    async with AsyncExitStack() as stack:
        start_rate_limit_purge(stack, engine, interval_seconds=3600, batch_size=2)
        await eventually(lambda: _no_rows(engine, "purge-ended"), message="ended rows purged")

    assert await _rows(engine, "purge-running") == 5
    # Another purge keeps the running windows. (What it deletes is not asserted: the table is
    # the session's, and another test's 1 s window may end at any moment.)
    await purge_expired_counters(engine)
    assert await _rows(engine, "purge-running") == 5


async def _no_rows(engine: AsyncEngine, policy: str) -> bool:
    return await _rows(engine, policy) == 0


async def test_a_failing_purge_is_logged_and_tried_again_later(
    postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A database without the table: every pass fails.
    bare = create_engine(create_database(postgres_server, "cl_rate_limits_bare"))
    caplog.set_level(logging.ERROR, logger="common_libs.ratelimit")
    try:
        async with AsyncExitStack() as stack:
            task = start_rate_limit_purge(stack, bare, interval_seconds=0.01)
            await eventually(
                lambda: caplog.text.count("purging expired rate-limit counters failed") >= 2,
                message="two failed passes logged",
            )
            assert not task.done()
    finally:
        await bare.dispose()


async def test_the_migration_helpers_drop_what_they_created(
    postgres_server: PostgresServer,
) -> None:
    engine = create_engine(create_database(postgres_server, "cl_rate_limits_drop"))
    tables = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    try:
        async with engine.begin() as connection:
            await connection.run_sync(
                lambda sync: create_rate_limit_table(SimpleNamespace(get_bind=lambda: sync))
            )
            assert (await connection.execute(text(tables))).scalars().all() == [
                "rate_limit_counters"
            ]
            await connection.run_sync(
                lambda sync: drop_rate_limit_table(SimpleNamespace(get_bind=lambda: sync))
            )
            assert (await connection.execute(text(tables))).scalars().all() == []
    finally:
        await engine.dispose()
