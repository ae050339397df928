"""The SDK's failures as problems a client can act on, never a 500.

429 stays 429 with ``Retry-After``, 5xx and connection errors become 502, timeouts 504, and a
prompt the model says does not fit its context window 413.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp

from app.services.errors import (
    UpstreamContextExceeded,
    UpstreamFailed,
    UpstreamRateLimited,
    UpstreamTimeout,
)

__all__ = ["DEFAULT_RETRY_AFTER_SECONDS", "upstream_errors"]

DEFAULT_RETRY_AFTER_SECONDS = 5


def _retry_after(headers: object) -> int:
    get = getattr(headers, "get", None)
    if get is None:
        return DEFAULT_RETRY_AFTER_SECONDS
    for name, divisor in (("retry-after", 1.0), ("retry-after-ms", 1000.0)):
        try:
            seconds = float(get(name)) / divisor
        except (TypeError, ValueError):
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return max(1, math.ceil(seconds))
    return DEFAULT_RETRY_AFTER_SECONDS


def _is_timeout(exc: BaseException) -> bool:
    """Tell a real timeout from a refused connection.

    The SDK's aiohttp transport reports every connection failure as a connect *timeout*; the
    exception chain still holds what really happened.
    """
    seen: BaseException | None = exc.__cause__ or exc.__context__
    while seen is not None:
        if isinstance(seen, TimeoutError):
            return True
        if isinstance(seen, aiohttp.ClientConnectorError | ConnectionError):
            return False
        seen = seen.__cause__ or seen.__context__
    return True


@contextmanager
def upstream_errors() -> Iterator[None]:
    """Turn the SDK's exceptions into the problems this service answers."""
    import openai  # imported by now: only a client that exists makes calls

    try:
        yield
    except openai.RateLimitError as exc:
        raise UpstreamRateLimited(
            "The language model API is rate-limiting this service; try again later.",
            retry_after=_retry_after(exc.response.headers),
        ) from exc
    except openai.APIStatusError as exc:
        if exc.code == "context_length_exceeded":
            raise UpstreamContextExceeded(
                "The conversation does not fit the model's context window."
            ) from exc
        raise UpstreamFailed(f"The language model API answered {exc.status_code}.") from exc
    except openai.APITimeoutError as exc:
        if _is_timeout(exc):
            raise UpstreamTimeout("The language model API did not answer in time.") from exc
        raise UpstreamFailed("The language model API cannot be reached.") from exc
    except openai.APIConnectionError as exc:
        raise UpstreamFailed("The language model API cannot be reached.") from exc
    except openai.APIError as exc:
        raise UpstreamFailed("The language model API sent an invalid answer.") from exc
    except TimeoutError as exc:
        raise UpstreamTimeout("The language model API did not answer in time.") from exc
