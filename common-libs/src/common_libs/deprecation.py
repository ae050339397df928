"""Retiring a route: the ``Deprecation`` (RFC 9745), ``Sunset`` (RFC 8594) and
``Link: <...>; rel="deprecation"`` response headers, and ``deprecated: true`` in OpenAPI.

A route being retired names it once, as a dependency::

    @router.get(
        "/orders/{order_id}/legacy",
        dependencies=[deprecated(since=datetime(2027, 1, 1, tzinfo=UTC),
                                 sunset=datetime(2027, 7, 1, tzinfo=UTC),
                                 link="https://docs.example.com/migrate-orders")],
    )

Its successful answers then carry the headers, and the OpenAPI document of an app of
``create_service_app`` (or any app given to :func:`document_deprecations`) marks the operation
``deprecated`` and documents the headers on its successful responses.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Response
from fastapi.dependencies.models import Dependant
from fastapi.params import Depends as DependsParam
from fastapi.routing import RouteContext, iter_route_contexts

__all__ = ["Deprecation", "deprecated", "document_deprecations"]

# Set on the dependency's function: how the document finds the routes being retired.
_MARK = "__fleet_deprecation__"
_FORBIDDEN_IN_LINK = frozenset('<>"\\ \t\r\n')


@dataclass(frozen=True, slots=True)
class Deprecation:
    """A route deprecated at ``since`` (past or future), gone at ``sunset`` (if known), with
    ``link`` to what replaces it (an ``http(s)`` URL, if any)."""

    since: datetime
    sunset: datetime | None = None
    link: str | None = None

    def __post_init__(self) -> None:
        for moment in (self.since, self.sunset):
            if moment is not None and moment.utcoffset() is None:
                raise ValueError("deprecation moments need a time zone (UTC, say)")
        if self.sunset is not None and self.sunset < self.since:
            raise ValueError("a route's sunset cannot come before its deprecation (RFC 9745, 3)")
        if self.link is not None:
            parts = urlsplit(self.link)
            if parts.scheme not in {"http", "https"} or not parts.netloc:
                raise ValueError(f"a deprecation link is an absolute http(s) URL: {self.link!r}")
            if _FORBIDDEN_IN_LINK.intersection(self.link):
                raise ValueError("a deprecation link cannot hold <, >, quotes or spaces")

    def headers(self) -> dict[str, str]:
        """The response headers: ``Deprecation: @<unix seconds>``, ``Sunset: <HTTP-date>`` and
        ``Link: <url>; rel="deprecation"; type="text/html"`` (the last two when known)."""
        headers = {"Deprecation": f"@{int(self.since.timestamp())}"}
        if self.sunset is not None:
            headers["Sunset"] = format_datetime(self.sunset.astimezone(UTC), usegmt=True)
        if self.link is not None:
            headers["Link"] = f'<{self.link}>; rel="deprecation"; type="text/html"'
        return headers


def deprecated(
    *, since: datetime, sunset: datetime | None = None, link: str | None = None
) -> DependsParam:
    """A route dependency (for ``dependencies=[...]``) that adds the :class:`Deprecation`
    headers to the route's successful answers and marks it deprecated in OpenAPI."""
    deprecation = Deprecation(since=since, sunset=sunset, link=link)
    headers = deprecation.headers()

    async def add_deprecation_headers(response: Response) -> None:
        response.headers.update(headers)

    setattr(add_deprecation_headers, _MARK, deprecation)
    return DependsParam(add_deprecation_headers)


def _deprecations(dependant: Dependant) -> Iterator[Deprecation]:
    for dependency in dependant.dependencies:
        mark = getattr(dependency.call, _MARK, None)
        if isinstance(mark, Deprecation):
            yield mark
        yield from _deprecations(dependency)


_HEADER_DOCS = {
    "Deprecation": "When the operation was (or will be) deprecated: `@` and Unix seconds "
    "(RFC 9745).",
    "Sunset": "When the operation will stop answering, an HTTP-date (RFC 8594).",
    "Link": 'Where to read about the deprecation (`rel="deprecation"`).',
}


def _document(document: dict[str, Any], route: RouteContext, deprecation: Deprecation) -> None:
    """Mark ``route``'s operations deprecated, with the headers on their successful responses."""
    names = deprecation.headers()
    path_item = document.get("paths", {}).get(route.path_format, {})
    for method in route.methods or ():
        operation = path_item.get(method.lower())
        if operation is None:  # not in the document (include_in_schema=False)
            continue
        operation["deprecated"] = True
        for status, response in operation.get("responses", {}).items():
            if str(status)[:1] in {"2", "3"}:
                headers = response.setdefault("headers", {})
                for name in names:
                    headers[name] = {
                        "description": _HEADER_DOCS[name],
                        "schema": {"type": "string"},
                    }


def document_deprecations(app: FastAPI) -> None:
    """Make ``app.openapi()`` mark each route with a :func:`deprecated` dependency
    ``deprecated: true``, with the headers on its successful responses."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for route in iter_route_contexts(app.routes):
                dependant = getattr(route, "dependant", None)
                deprecation = next(_deprecations(dependant), None) if dependant else None
                if deprecation is not None:
                    _document(document, route, deprecation)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
