"""What a database error means for the client: unavailable (503), unstorable text (422), or a
bug (neither). The driver's own exception classes, raised as the driver raises them."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import exc

from common_libs.db_errors import error_names, is_database_unavailable, is_unstorable_text


def raised_from(error: BaseException, cause: BaseException) -> BaseException:
    """``error`` as raised ``from cause``."""
    try:
        raise error from cause
    except BaseException as raised:
        return raised


def wrapped(cause: BaseException, *, invalidated: bool = False) -> exc.DBAPIError:
    """What SQLAlchemy raises for the driver's ``cause``."""
    return exc.DBAPIError("SELECT 1", {}, cause, connection_invalidated=invalidated)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [
        exc.TimeoutError("QueuePool limit reached"),
        wrapped(ValueError("anything"), invalidated=True),
        asyncpg.ConnectionDoesNotExistError("closed in the middle of operation"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.InterfaceError("connection is closed"),
        # Met on a connection the server had closed (a catalog read in the chaos suite's
        # PostgreSQL stop answered 500 with it).
        asyncpg.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
        wrapped(raised_from(RuntimeError("adapted"), asyncpg.CrashShutdownError("crash"))),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_lost_or_refused_database_is_unavailable(error: BaseException) -> None:
    assert is_database_unavailable(error)
    assert not is_unstorable_text(error)


@pytest.mark.parametrize(
    "error",
    [
        wrapped(asyncpg.DivisionByZeroError("division by zero")),
        asyncpg.PostgresSyntaxError("syntax error"),
        asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        asyncpg.UniqueViolationError("duplicate key"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_wrong_statement_is_not_an_outage(error: BaseException) -> None:
    assert not is_database_unavailable(error)
    assert not is_unstorable_text(error)


@pytest.mark.parametrize(
    "error",
    [
        wrapped(asyncpg.CharacterNotInRepertoireError('invalid byte sequence for "UTF8": 0x00')),
        asyncpg.UntranslatableCharacterError("unsupported Unicode escape sequence"),
        wrapped(
            raised_from(
                asyncpg.DataError("invalid input"),
                UnicodeEncodeError("utf-8", "a\ud800", 1, 2, "surrogates not allowed"),
            )
        ),
    ],
    ids=lambda error: type(error).__name__,
)
def test_text_postgresql_refuses_is_unstorable(error: BaseException) -> None:
    assert is_unstorable_text(error)
    assert not is_database_unavailable(error)


def test_the_log_names_the_classes_of_the_chain_and_no_message() -> None:
    error = wrapped(asyncpg.CharacterNotInRepertoireError("value 'secret\x00'"))

    assert error_names(error) == "DBAPIError < CharacterNotInRepertoireError"
