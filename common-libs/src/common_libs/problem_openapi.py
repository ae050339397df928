"""How problem+json answers appear in OpenAPI: the ``Problem`` schema and the error responses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "Problem",
    "ProblemFieldError",
    "document_problems",
    "problem_responses",
]

PROBLEM_CONTENT_TYPE = "application/problem+json"

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


def problem_responses(
    *statuses: int, descriptions: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` entries documenting ``statuses`` as problem+json answers."""
    overrides = descriptions or {}
    entries: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "description": overrides.get(status)
            or _DESCRIPTIONS.get(status)
            or HTTPStatus(status).phrase,
            "content": {PROBLEM_CONTENT_TYPE: _problem_media_type()},
        }
        if status in _RETRY_AFTER_STATUSES:
            entry["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before trying again.",
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                }
            }
        entries[status] = entry
    return entries


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


def _as_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Rewrite an OpenAPI document in place so that every error answer is problem+json."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                if _is_error(str(status)):
                    content = response.setdefault("content", {})
                    content.pop("application/json", None)
                    content.setdefault(PROBLEM_CONTENT_TYPE, _problem_media_type())
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        # Only when nothing refers to it any more: a document never keeps a dangling $ref.
        if f'"{_SCHEMAS}{name}"' not in json.dumps(document):
            schemas.pop(name, None)
    for name, schema in _problem_schemas().items():
        schemas.setdefault(name, schema)
    return document


def document_problems(app: FastAPI) -> None:
    """Make ``app.openapi()`` document every error answer as problem+json (built once, cached)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _as_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
