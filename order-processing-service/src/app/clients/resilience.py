"""Deadlines and bounded retries with jitter for calls that are safe to repeat."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

__all__ = ["Deadline", "DeadlineExceeded", "TransientError", "retry_within"]

T = TypeVar("T")

# Below this much time left, an attempt could not complete anyway: give up instead.
_MIN_ATTEMPT_SECONDS = 0.05


class TransientError(Exception):
    """A failure that may go away when the same (idempotent) call is repeated."""


class DeadlineExceeded(TransientError):
    """The call's time budget ran out."""


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point in (monotonic) time by which a step, retries included, must be done."""

    at: float

    @classmethod
    def within(cls, seconds: float) -> Deadline:
        """The deadline ``seconds`` from now."""
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.at - time.monotonic())

    def require(self) -> float:
        """Seconds left for one more attempt, or raise DeadlineExceeded."""
        left = self.remaining()
        if left < _MIN_ATTEMPT_SECONDS:
            raise DeadlineExceeded("the deadline has passed")
        return left


async def retry_within(
    call: Callable[[], Awaitable[T]], *, deadline: Deadline, attempts: int = 4
) -> T:
    """Run ``call``, repeating it on TransientError with jittered backoff, all within ``deadline``.

    Only for calls that are safe to repeat. The last error is re-raised; running out of time
    raises DeadlineExceeded even when an attempt is still waiting for an answer.
    """

    def out_of_time(state: RetryCallState) -> bool:
        return deadline.remaining() <= state.upcoming_sleep + _MIN_ATTEMPT_SECONDS

    retrying = AsyncRetrying(
        stop=lambda state: state.attempt_number >= attempts or out_of_time(state),
        wait=wait_random_exponential(multiplier=0.05, max=0.5),
        retry=retry_if_exception_type(TransientError),
        reraise=True,
    )
    try:
        async with asyncio.timeout(deadline.require()):
            return await retrying(call)
    except TimeoutError as exc:
        raise DeadlineExceeded("no answer within the deadline") from exc
