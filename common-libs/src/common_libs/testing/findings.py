"""What a check found wrong, as a value a test asserts on: ``assert findings(...) == []``.

The kit's checks raise ``AssertionError`` (with a message saying what is wrong) when their rule
is broken; a service's test asserts that running one finds nothing, so that the test itself says
what it expects and a failure prints the finding.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

__all__ = ["async_findings", "findings"]


def _message(error: AssertionError) -> str:
    return str(error) or repr(error)


def findings(check: Callable[[], object]) -> list[str]:
    """Run ``check``: ``[]`` when it passes, else the message of the assertion it failed."""
    try:
        check()
    except AssertionError as error:
        return [_message(error)]
    return []


async def async_findings(check: Callable[[], Awaitable[object]]) -> list[str]:
    """The same for an async check."""
    try:
        await check()
    except AssertionError as error:
        return [_message(error)]
    return []
