"""405 answers that list every method the path supports, not just one route's."""

from __future__ import annotations

from common_libs.problems import problem_response
from fastapi import FastAPI, Request
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import compile_path

__all__ = ["install_method_not_allowed_handler"]


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route of ``app`` serves at ``path``."""
    methods: set[str] = set()
    for route in iter_route_contexts(app.routes):
        if route.path and route.methods and compile_path(route.path)[0].match(path):
            methods |= route.methods
    return sorted(methods)


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    # Starlette names only the first route that matched the path (GET /products, say) in Allow,
    # although POST /products is a route of its own.
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
    return problem_response(
        status=405,
        title="Method Not Allowed",
        detail=f"{request.method} is not allowed here.",
        headers=headers,
    )


def install_method_not_allowed_handler(app: FastAPI) -> None:
    """Answer 405 with a complete ``Allow`` header (problem+json like every other error)."""
    app.add_exception_handler(405, _method_not_allowed)
