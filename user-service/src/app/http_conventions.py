"""HTTP details FastAPI and Starlette get slightly wrong for this fleet, corrected in one place."""

from __future__ import annotations

import inspect
from typing import Any

from common_libs.problems import PROBLEM_CONTENT_TYPE
from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _problem_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, corrected to say that every error is problem+json."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=app.routes,
    )
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            for code, answer in operation.get("responses", {}).items():
                if not code.isdigit() or int(code) < 400:
                    continue
                content = answer.get("content", {})
                content.pop("application/json", None)
                content[PROBLEM_CONTENT_TYPE] = {"schema": {"$ref": "#/components/schemas/Problem"}}
                answer["content"] = content
    components = schema.get("components", {}).get("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    app.openapi_schema = schema
    return schema


def _allowed_methods(app: FastAPI, request: Request) -> str:
    """Every method some route serves at the request's path (Starlette names only one route's)."""
    allowed = []
    for method in _METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in app.routes):
            allowed.append(method)
    return ", ".join(allowed)


def list_all_allowed_methods(app: FastAPI) -> None:
    """Make 405 answers carry the full ``Allow`` header, then render them as before."""
    render = app.exception_handlers[StarletteHTTPException]

    async def handle(request: Request, exc: Exception) -> Response:
        if isinstance(exc, StarletteHTTPException) and exc.status_code == 405:
            exc.headers = {**(exc.headers or {}), "Allow": _allowed_methods(app, request)}
        response = render(request, exc)
        return await response if inspect.isawaitable(response) else response

    app.add_exception_handler(StarletteHTTPException, handle)


def document_errors_as_problems(app: FastAPI) -> None:
    """Make ``app.openapi()`` say that every error answer is problem+json."""
    app.openapi = lambda: _problem_openapi(app)  # type: ignore[method-assign]
