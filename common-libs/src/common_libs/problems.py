"""Rendering problems: RFC 9457 responses and the exception handlers every service installs."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Match
from starlette.types import Scope

from common_libs.errors import ProblemError
from common_libs.problem_openapi import (
    PROBLEM_CONTENT_TYPE,
    Problem,
    ProblemFieldError,
    document_problems,
    problem_responses,
)
from common_libs.request_id import REQUEST_ID_HEADER, get_request_id

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "Problem",
    "ProblemFieldError",
    "ProblemResponse",
    "install_problem_handlers",
    "problem_response",
    "problem_responses",
    "validation_errors",
]

_logger = logging.getLogger("common_libs.problems")


class ProblemResponse(JSONResponse):
    """A JSON response with the problem+json media type."""

    media_type = PROBLEM_CONTENT_TYPE


def problem_response(
    *,
    status: int,
    title: str,
    detail: str,
    type_: str = "about:blank",
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


async def _handle_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return problem_response(
        status=422,
        title="Unprocessable Content",
        detail="The request is not valid; see errors.",
        extra={"errors": validation_errors(exc.errors())},
    )


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    title = _reason_phrase(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem_response(
        status=exc.status_code, title=title, detail=detail, headers=exc.headers or {}
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


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error the app can raise answer as problem+json, and its OpenAPI say so."""
    app.add_exception_handler(ProblemError, _handle_problem)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    # A status handler wins over the HTTPException one, whatever the order of installation.
    app.add_exception_handler(405, _handle_method_not_allowed)
    app.add_exception_handler(Exception, _handle_unexpected)
    document_problems(app)
