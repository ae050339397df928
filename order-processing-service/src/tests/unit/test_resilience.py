"""Bounded retries with jitter, inside one deadline."""

from __future__ import annotations

import asyncio

import pytest

from app.clients.resilience import Deadline, DeadlineExceeded, TransientError, retry_within


async def test_transient_failures_are_retried_until_success() -> None:
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise TransientError("try again")
        return "ok"

    assert await retry_within(flaky, deadline=Deadline.within(5)) == "ok"
    assert attempts == 3


async def test_retries_stop_after_the_attempt_limit() -> None:
    attempts = 0

    async def down() -> None:
        nonlocal attempts
        attempts += 1
        raise TransientError("down")

    with pytest.raises(TransientError):
        await retry_within(down, deadline=Deadline.within(5), attempts=3)

    assert attempts == 3


async def test_other_errors_are_not_retried() -> None:
    attempts = 0

    async def broken() -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError("not transient")

    with pytest.raises(ValueError, match="not transient"):
        await retry_within(broken, deadline=Deadline.within(5))

    assert attempts == 1


async def test_a_call_that_never_answers_ends_at_the_deadline() -> None:
    async def hangs() -> None:
        await asyncio.sleep(60)

    with pytest.raises(DeadlineExceeded):
        await retry_within(hangs, deadline=Deadline.within(0.2))


async def test_a_passed_deadline_makes_no_attempt() -> None:
    attempts = 0

    async def call() -> None:
        nonlocal attempts
        attempts += 1

    with pytest.raises(DeadlineExceeded):
        await retry_within(call, deadline=Deadline.within(0))

    assert attempts == 0
