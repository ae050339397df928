"""What a database error means for the client (needs ``common-libs[db]``).

- :func:`is_database_unavailable`: the database is gone, unreachable or refusing us (a ``503``
  with ``Retry-After``), as opposed to a statement that is wrong (a bug, still a ``500``).
- :func:`is_unstorable_text`: PostgreSQL refused a text value (U+0000, an unpaired surrogate):
  the client's input, a ``422``.

The problem handlers (:mod:`common_libs.problems`) answer with these; the engines of
:func:`common_libs.db.create_engine` report every failure to connect as an invalidated
connection, so that a refused connection reads like a lost one.
"""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import exc

from common_libs.db import DRIVER_ERRORS
from common_libs.text_inputs import is_surrogate_encode_error

__all__ = [
    "DATABASE_ERRORS",
    "error_names",
    "is_database_unavailable",
    "is_unstorable_text",
]

DATABASE_ERRORS: tuple[type[Exception], ...] = (exc.DBAPIError, exc.TimeoutError, *DRIVER_ERRORS)
"""What a route can raise from the database: SQLAlchemy's errors, and asyncpg's own for the
statements a service runs through asyncpg directly (:data:`common_libs.db.DRIVER_ERRORS`, with
the ``OSError`` of a failed connection: refused, unreachable, timed out)."""
_DRIVER_MODULES = ("asyncpg", "sqlalchemy")

# SQLSTATE classes and codes that mean "no database to talk to": connection exceptions (08),
# insufficient resources (53: too many connections, out of memory, disk full), and the
# operator's interventions that end sessions (57P01 admin shutdown, 57P02 crash shutdown,
# 57P03 cannot connect now, 57P04 database dropped). 57014 (a cancelled statement) is not one.
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P")
# 22021 character_not_in_repertoire (U+0000 in text), 22P05 untranslatable_character (\u0000
# in jsonb).
_UNSTORABLE_SQLSTATES = frozenset({"22021", "22P05"})


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the errors it was raised from (SQLAlchemy's wraps the driver's ``orig``,
    which its asyncpg adapter raised from asyncpg's own)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = current.orig if isinstance(current, exc.DBAPIError) else None
        current = orig or current.__cause__ or current.__context__


def _sqlstate(error: BaseException) -> str:
    state = getattr(error, "sqlstate", None)
    return state if isinstance(state, str) else ""


def _raised_in_driver(error: BaseException) -> bool:
    """Whether ``error`` came up through asyncpg or SQLAlchemy (connecting to the database)."""
    frame = error.__traceback__
    while frame is not None:
        module = frame.tb_frame.f_globals.get("__name__", "")
        if module.partition(".")[0] in _DRIVER_MODULES:
            return True
        frame = frame.tb_next
    return False


def is_database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database is unavailable rather than the statement wrong."""
    if isinstance(error, exc.TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    for cause in _chain(error):
        # asyncpg's ConnectionDoesNotExistError is 08003.
        if _sqlstate(cause).startswith(_UNAVAILABLE_SQLSTATE_PREFIXES):
            return True
        # What asyncpg raises for a connection the server closed while it sat idle (the test
        # SQLAlchemy's own asyncpg dialect makes).
        if type(cause) is asyncpg.InterfaceError and "connection is closed" in str(cause):
            return True
        # A connection the server closed under asyncpg before it noticed, met in the middle of
        # an operation ("cannot switch to state ..."): unusable, as a lost one is.
        if isinstance(cause, asyncpg.InternalClientError):
            return True
        # A network failure, as the driver met it (not a file a program failed to open).
        if isinstance(cause, OSError) and _raised_in_driver(cause):
            return True
    return False


def is_unstorable_text(error: BaseException) -> bool:
    """Whether ``error`` is PostgreSQL (or the driver on the way to it) refusing a text value
    that holds U+0000 or an unpaired surrogate."""
    return any(
        _sqlstate(cause) in _UNSTORABLE_SQLSTATES or is_surrogate_encode_error(cause)
        for cause in _chain(error)
    )


def error_names(error: BaseException) -> str:
    """The class names along ``error``'s chain (``DBAPIError < ConnectionDoesNotExistError``):
    what a log line may say about it; the messages may hold statement parameters."""
    return " < ".join(type(cause).__name__ for cause in _chain(error))
