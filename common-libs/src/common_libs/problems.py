"""Rendering problems: RFC 9457 responses and the exception handlers every service installs."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Match
from starlette.types import Scope

from common_libs.errors import ProblemError, ServiceUnavailable
from common_libs.problem_openapi import (
    PROBLEM_CONTENT_TYPE,
    PROBLEM_TYPES_KEY,
    Problem,
    ProblemFieldError,
    ProblemSpec,
    document_problems,
    problem_responses,
)
from common_libs.problem_types import (
    ABOUT_BLANK,
    CONTENT_TOO_LARGE,
    MALFORMED_REQUEST,
    NOT_FOUND,
    VALIDATION_FAILED,
    ProblemType,
)
from common_libs.request_id import REQUEST_ID_HEADER, get_request_id

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "PROBLEM_TYPES_KEY",
    "UNSTORABLE_TEXT_ERROR",
    "Problem",
    "ProblemFieldError",
    "ProblemResponse",
    "ProblemSpec",
    "install_problem_handlers",
    "problem_response",
    "problem_responses",
    "validation_errors",
    "validation_problem",
]

_logger = logging.getLogger("common_libs.problems")

DATABASE_RETRY_AFTER_SECONDS = 5
"""``Retry-After`` of the 503 for a lost database (a PostgreSQL restart takes a few seconds)."""

UNSTORABLE_TEXT_ERROR = {
    "msg": "Text may not contain U+0000 (NUL) or unpaired surrogates (U+D800 to U+DFFF).",
    "type": "string_unstorable_character",
}
"""The ``msg`` and ``type`` of a 422's error for text PostgreSQL cannot store or UTF-8 cannot
encode (see :mod:`common_libs.text_inputs`)."""
_VALIDATION_DETAIL = "The request is not valid; see errors."


class ProblemResponse(JSONResponse):
    """A JSON response with the problem+json media type."""

    media_type = PROBLEM_CONTENT_TYPE


def problem_response(
    *,
    status: int,
    title: str,
    detail: str,
    type_: str = ABOUT_BLANK,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ProblemResponse:
    """Build a problem+json response that carries the current request id."""
    request_id = get_request_id()
    body: dict[str, Any] = {
        "type": type_,
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": request_id,
    }
    body.update(extra or {})
    response_headers = dict(headers or {})
    if request_id is not None:
        # Set here as well because a 500 is sent from outside the request-id middleware.
        response_headers[REQUEST_ID_HEADER] = request_id
    return ProblemResponse(body, status_code=status, headers=response_headers)


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Reduce pydantic errors to ``{loc, msg, type}``; never echo input (it may be a password)."""
    return [
        {
            "loc": list(error.get("loc", ())),
            "msg": str(error.get("msg", "")),
            "type": error.get("type"),
        }
        for error in errors
    ]


async def _handle_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    level = logging.WARNING if exc.status >= 500 else logging.INFO
    _logger.log(level, "problem %s %s: %s", exc.status, exc.title, exc.detail)
    return problem_response(
        status=exc.status,
        title=exc.title,
        detail=exc.detail,
        type_=exc.type,
        headers=exc.headers,
        extra=exc.extra,
    )


def validation_problem(errors: Sequence[Mapping[str, Any]]) -> ProblemResponse:
    """The 422 answer for ``errors`` (``{loc, msg, type}`` each)."""
    return problem_response(
        status=VALIDATION_FAILED.status,
        title=VALIDATION_FAILED.title,
        detail=_VALIDATION_DETAIL,
        type_=VALIDATION_FAILED.type,
        extra={"errors": validation_errors(errors)},
    )


async def _handle_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return validation_problem(exc.errors())


def _database_unavailable() -> ProblemResponse:
    error = ServiceUnavailable(
        "The database is unavailable; try again later.",
        retry_after=DATABASE_RETRY_AFTER_SECONDS,
    )
    return problem_response(
        status=error.status,
        title=error.title,
        detail=error.detail,
        type_=error.type,
        headers=error.headers,
    )


async def _handle_database_error(request: Request, exc: Exception) -> Response:
    # Only the classes' names are logged: a driver's message may quote statement parameters.
    from common_libs import db_errors

    if db_errors.is_database_unavailable(exc):
        _logger.warning("database unavailable (%s): answered 503", db_errors.error_names(exc))
        return _database_unavailable()
    if db_errors.is_unstorable_text(exc):
        _logger.info("text the database cannot store (%s): answered 422", type(exc).__name__)
        return validation_problem([{"loc": [], **UNSTORABLE_TEXT_ERROR}])
    raise exc  # a bug: the 500 of _handle_unexpected, with its traceback in the log


async def _handle_encode_error(request: Request, exc: Exception) -> Response:
    from common_libs.text_inputs import is_surrogate_encode_error

    if is_surrogate_encode_error(exc):
        _logger.info("text UTF-8 cannot encode: answered 422")
        return validation_problem([{"loc": [], **UNSTORABLE_TEXT_ERROR}])
    raise exc


# The shared types of the HTTPExceptions Starlette and FastAPI raise themselves: no route (404),
# a body they cannot parse (400), a body too large (413). Any other status says no more.
_HTTP_EXCEPTION_TYPES: dict[int, ProblemType] = {
    problem_type.status: problem_type
    for problem_type in (MALFORMED_REQUEST, NOT_FOUND, CONTENT_TOO_LARGE)
}


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    problem_type = _HTTP_EXCEPTION_TYPES.get(exc.status_code)
    title = problem_type.title if problem_type else _reason_phrase(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem_response(
        status=exc.status_code,
        title=title,
        detail=detail,
        type_=problem_type.type if problem_type else ABOUT_BLANK,
        headers=exc.headers or {},
    )


def _allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route of ``app`` serves at the path of ``scope``, sorted."""
    allowed: set[str] = set()
    for route in iter_route_contexts(app.routes):
        methods = route.methods
        if not methods:  # websocket routes and mounts
            continue
        # Each route matches the path its own way (root path, converters, router prefixes);
        # asking with one of its own methods asks about the path alone.
        if route.matches({**scope, "method": next(iter(methods))})[0] is Match.FULL:
            allowed |= methods
    return sorted(allowed)


async def _handle_method_not_allowed(request: Request, exc: Exception) -> Response:
    # Starlette's Allow names the methods of the first route that matched the path only
    # (GET /products), although POST /products is a route of its own.
    assert isinstance(exc, StarletteHTTPException)
    allowed = _allowed_methods(request.app, request.scope)
    headers = {**(exc.headers or {}), "Allow": ", ".join(allowed)}
    return problem_response(
        status=405,
        title="Method Not Allowed",
        detail=f"{request.method} is not allowed here; Allow lists what is.",
        headers=headers,
    )


async def _handle_unexpected(request: Request, exc: Exception) -> Response:
    # The traceback goes to the log only; the client learns nothing about the internals.
    _logger.error("unhandled error", exc_info=exc)
    return problem_response(
        status=500,
        title="Internal Server Error",
        detail="An unexpected error occurred. Quote the request id when reporting it.",
    )


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install_problem_handlers(
    app: FastAPI, *, problem_types: Iterable[ProblemType | type[ProblemError]] = ()
) -> None:
    """Make every error the app can raise answer as problem+json, and its OpenAPI say so, with
    ``problem_types`` (the app's own types and the shared ones it answers besides those of
    :data:`~common_libs.problem_types.SERVICE_APP_PROBLEM_TYPES`) in its catalogue."""
    app.add_exception_handler(ProblemError, _handle_problem)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    # A status handler wins over the HTTPException one, whatever the order of installation.
    app.add_exception_handler(405, _handle_method_not_allowed)
    # Handled below the outermost layer (unlike Exception's handler, which re-raises to the
    # server once it answered, and uvicorn then closes the connection).
    app.add_exception_handler(UnicodeEncodeError, _handle_encode_error)
    for database_error in _database_errors():
        app.add_exception_handler(database_error, _handle_database_error)
    app.add_exception_handler(Exception, _handle_unexpected)
    document_problems(app, problem_types=problem_types)


def _database_errors() -> tuple[type[Exception], ...]:
    """The database errors to tell apart, when the ``db`` extra is installed."""
    try:
        from common_libs.db_errors import DATABASE_ERRORS
    except ImportError:  # pragma: no cover - the suite runs with the db extra
        return ()
    return DATABASE_ERRORS
