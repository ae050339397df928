"""What the relay's, the consumers' and the deny list's retry loops share (``events.broker``)."""

from __future__ import annotations

import asyncio

import pytest

from common_libs.events.broker import raise_if_cancelled, retry_delay


async def test_a_task_asked_to_stop_stops_instead_of_retrying() -> None:
    async def asked_to_stop() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()  # the stop that nats-py may turn into an error of its own
        raise_if_cancelled()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(asked_to_stop())


async def test_a_task_not_asked_to_stop_goes_on_retrying() -> None:
    raise_if_cancelled()  # returns: the loop retries


def test_the_delay_doubles_from_a_tenth_of_a_second_up_to_the_maximum_with_jitter() -> None:
    for failures, full in ((0, 0.1), (1, 0.2), (3, 0.8), (30, 10.0)):
        assert full / 2 <= retry_delay(failures, 10.0) <= full
