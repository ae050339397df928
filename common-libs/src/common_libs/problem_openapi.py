"""How problem+json answers appear in OpenAPI: the ``Problem`` schema, the error responses and
the problem types each may carry.

The document gets a top-level ``x-problem-types`` catalogue (``{type, status, title,
description}`` of every type some operation answers, sorted by type) and, on each error
response, ``x-problem-types``: the sorted types that operation answers with that status. A route
names them with :func:`problem_responses`: a status alone stands for every type of the app's
catalogue with that status (the shared ones the app handlers answer, the app's own, and those
other routes name), a :class:`ProblemType` or :class:`ProblemError` class for exactly that type.
A status answered with ``about:blank`` alone (405, 500) has no list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from common_libs.errors import ProblemError
from common_libs.problem_types import (
    ABOUT_BLANK,
    IDEMPOTENCY_KEY_IN_FLIGHT,
    SERVICE_APP_PROBLEM_TYPES,
    ProblemType,
)

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "PROBLEM_TYPES_KEY",
    "Problem",
    "ProblemFieldError",
    "ProblemSpec",
    "document_problems",
    "problem_responses",
    "problem_type_of",
]

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPES_KEY = "x-problem-types"
"""The OpenAPI extension that lists problem types: the catalogue at the top, types per response."""

ProblemSpec = int | ProblemType | type[ProblemError]
"""What :func:`problem_responses` documents: a status, or one problem type (or its error class)."""

# Where problem_responses leaves its declaration for document_problems (which removes it).
_DECLARATION_KEY = "x-fleet-problem-declaration"
# Statuses that stay about:blank: a plain status with nothing more to say.
_BLANK_STATUSES = frozenset({405, 500})

_SCHEMAS = "#/components/schemas/"
# FastAPI documents its own 422 body with these; the problem handlers never send that body.
# HTTPValidationError first: it is what refers to ValidationError.
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")

_DESCRIPTIONS = {
    400: "The request cannot be read (for example, the body is not JSON).",
    401: "Missing, invalid or expired access token (`WWW-Authenticate: Bearer`).",
    403: "The caller's role may not perform this operation.",
    404: "No such resource.",
    409: "The request conflicts with the current state.",
    413: "The request is too large.",
    422: "The request is not valid (`errors` lists what is wrong).",
    429: "Too many requests (`Retry-After` says when to try again).",
    502: "A service this one depends on failed.",
    503: "A dependency is unavailable right now (`Retry-After` says when to try again).",
    504: "A service this one depends on did not answer in time.",
}
# What the WWW-Authenticate of a 401 or 403 says (RFC 6750; common_libs.errors.bearer_challenge).
_CHALLENGES = {
    401: "The Bearer challenge (RFC 6750): bare `Bearer` when no access token was sent (or, as "
    "on a login, none is involved), else "
    '`Bearer error="invalid_token", error_description="..."` (`The access token expired`: '
    "refresh it).",
    403: 'On an `insufficient-scope` answer, `Bearer error="insufficient_scope", '
    'error_description="..."`.',
}
# The statuses whose problems carry Retry-After (see common_libs.errors.RetryableProblem).
_RETRY_AFTER_STATUSES = frozenset({429, 503})


class ProblemFieldError(BaseModel):
    """One validation error: where and what (the rejected input is never echoed)."""

    loc: list[str | int]
    msg: str
    type: str | None = None


class Problem(BaseModel):
    """An RFC 9457 problem; some add fields (``errors`` on a 422, ``product_id``, ...)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    request_id: str | None
    errors: list[ProblemFieldError] | None = None


def problem_type_of(spec: ProblemType | type[ProblemError]) -> ProblemType:
    """The problem type ``spec`` is or carries."""
    if isinstance(spec, ProblemType):
        return spec
    if isinstance(spec, type) and issubclass(spec, ProblemError):
        return spec.problem_type
    raise TypeError(f"not a ProblemType or a ProblemError class: {spec!r}")


def problem_responses(
    *problems: ProblemSpec, descriptions: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` entries documenting ``problems`` as problem+json answers.

    Each of ``problems`` is a status (every type of the app's catalogue with that status), or a
    :class:`ProblemType` or :class:`ProblemError` subclass (that type, under its status).
    ``descriptions`` replace the default description of a status.
    """
    overrides = descriptions or {}
    declared: dict[int, tuple[bool, dict[str, ProblemType]]] = {}
    for spec in problems:
        if isinstance(spec, int):
            by_status, types = declared.get(spec, (False, {}))
            declared[spec] = (True, types)
            continue
        problem_type = problem_type_of(spec)
        if problem_type.type == ABOUT_BLANK:
            raise ValueError(
                f"{spec!r} has no problem type of its own: document its status instead"
            )
        by_status, types = declared.get(problem_type.status, (False, {}))
        types[problem_type.type] = problem_type
        declared[problem_type.status] = (by_status, types)
    return {
        status: _problem_entry(
            status, overrides.get(status), by_status=by_status, types=list(types.values())
        )
        for status, (by_status, types) in declared.items()
    }


def _problem_entry(
    status: int, description: str | None, *, by_status: bool, types: list[ProblemType]
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "description": description or _DESCRIPTIONS.get(status) or HTTPStatus(status).phrase,
        "content": {PROBLEM_CONTENT_TYPE: _problem_media_type()},
        _DECLARATION_KEY: {
            "by_status": by_status,
            "types": [problem_type.as_openapi() for problem_type in types],
        },
    }
    headers: dict[str, Any] = {}
    if status in _RETRY_AFTER_STATUSES or IDEMPOTENCY_KEY_IN_FLIGHT in types:
        headers["Retry-After"] = {
            "description": "Seconds to wait before trying again.",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    if status in _CHALLENGES:
        headers["WWW-Authenticate"] = {
            "description": _CHALLENGES[status],
            "schema": {"type": "string"},
        }
    if headers:
        entry["headers"] = headers
    return entry


def _problem_media_type() -> dict[str, Any]:
    # A new dict each time: FastAPI copies these into the document by reference, and whoever
    # edits one document must not edit every other.
    return {"schema": {"$ref": f"{_SCHEMAS}Problem"}}


def _problem_schemas() -> dict[str, Any]:
    """``Problem`` and the models it refers to, as OpenAPI component schemas."""
    schema = Problem.model_json_schema(ref_template=_SCHEMAS + "{model}")
    return {**schema.pop("$defs", {}), "Problem": schema}


def _is_error(status: str) -> bool:
    # "4XX" and "5XX" are valid response keys too; "default" is not an error.
    return status[:1] in {"4", "5"}


def _error_responses(document: dict[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    """Each error response of each operation, with its status key."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                if _is_error(str(status)):
                    yield str(status), response


class _Catalogue:
    """The problem types a document may list, by type; one type has one status and title."""

    def __init__(self) -> None:
        self.types: dict[str, ProblemType] = {}

    def add(self, problem_type: ProblemType) -> None:
        known = self.types.setdefault(problem_type.type, problem_type)
        if known != problem_type:
            raise ValueError(f"two different problem types are named {problem_type.type}")

    def of_status(self, status: int) -> set[str]:
        return {name for name, known in self.types.items() if known.status == status}


def _as_problem_types(document: dict[str, Any], app_types: Iterable[ProblemType]) -> dict[str, Any]:
    """Replace the declarations of :func:`problem_responses` with ``x-problem-types`` lists, and
    put the catalogue of the types they list at the top of ``document``."""
    if PROBLEM_TYPES_KEY in document:  # rewritten already (the handlers installed twice)
        return document
    catalogue = _Catalogue()
    for problem_type in (*SERVICE_APP_PROBLEM_TYPES, *app_types):
        catalogue.add(problem_type)
    declarations: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    for status, response in _error_responses(document):
        declaration = response.pop(_DECLARATION_KEY, None)
        for entry in declaration["types"] if declaration else ():
            catalogue.add(ProblemType(**entry))
        declarations.append((status, response, declaration))
    used: set[str] = set()
    for status, response, declaration in declarations:
        if not status.isdigit() or int(status) in _BLANK_STATUSES:
            response.pop(PROBLEM_TYPES_KEY, None)
            continue
        listed = {entry["type"] for entry in declaration["types"]} if declaration else set()
        if declaration is None or declaration["by_status"]:
            listed |= catalogue.of_status(int(status))
        if listed:
            response[PROBLEM_TYPES_KEY] = sorted(listed)
            used |= listed
    document[PROBLEM_TYPES_KEY] = [catalogue.types[name].as_openapi() for name in sorted(used)]
    return document


def _as_problems(document: dict[str, Any], app_types: Iterable[ProblemType]) -> dict[str, Any]:
    """Rewrite an OpenAPI document in place so that every error answer is problem+json, with the
    problem types it may carry."""
    for _, response in _error_responses(document):
        content = response.setdefault("content", {})
        content.pop("application/json", None)
        content.setdefault(PROBLEM_CONTENT_TYPE, _problem_media_type())
    _as_problem_types(document, app_types)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        # Only when nothing refers to it any more: a document never keeps a dangling $ref.
        if f'"{_SCHEMAS}{name}"' not in json.dumps(document):
            schemas.pop(name, None)
    for name, schema in _problem_schemas().items():
        schemas.setdefault(name, schema)
    return document


def document_problems(
    app: FastAPI, *, problem_types: Iterable[ProblemType | type[ProblemError]] = ()
) -> None:
    """Make ``app.openapi()`` document every error answer as problem+json with its problem
    types (built once, cached).

    The catalogue a status stands for holds the shared types the problem handlers answer,
    ``problem_types`` (the app's own, and the shared ones it answers besides), and every type a
    route names.
    """
    generate = app.openapi
    app_types = tuple(problem_type_of(spec) for spec in problem_types)
    blank = [problem_type for problem_type in app_types if problem_type.type == ABOUT_BLANK]
    if blank:
        raise ValueError(f"about:blank is no type for a catalogue: {blank}")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _as_problems(generate(), app_types)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
